"""Small kept.jsonl files for the split tests: distinct Japanese-like texts that no detector confuses."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.fixtures.stage_outputs import write_stage_output

KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわ"


def distinct_text(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(KANA) for _ in range(length))


def kept_row(i: int, category: str | None = None, group: str | None = None, seed: int = 0) -> dict:
    rng = random.Random(f"{seed}-{i}")
    row = {"id": f"r{i:04d}", "source_line": i + 1,
           "prompt": f"記事{i}の本文。" + distinct_text(rng, 60), "completion": f"題{i}" + distinct_text(rng, 14)}
    if category is not None:
        row["category"] = category
    if group is not None:
        row["group"] = group
    return row


def write_kept(path: Path, rows: list[dict]) -> Path:
    """kept.jsonl inside a clean stage output (with the report split verifies it against)."""
    write_stage_output(path.parent, "clean", {path.name: rows})
    return path


def read_split(out: Path, name: str) -> list[dict]:
    p = out / f"{name}.jsonl"
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def ids(rows: list[dict]) -> set[str]:
    return {r["id"] for r in rows}
