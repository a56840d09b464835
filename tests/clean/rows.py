"""Small raw inputs for the clean tests: distinct Japanese articles whose titles no detector flags."""

from __future__ import annotations

import json
import random
from pathlib import Path

KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわ"
INSTRUCTION = "次の記事本文にふさわしいタイトルを付けてください。"


def body(i: int, length: int = 80) -> str:
    rng = random.Random(f"body-{i}")
    return f"記事{i}の本文です。" + "".join(rng.choice(KANA) for _ in range(length)) + "。"


def title(i: int) -> str:
    return f"{i}日目の朝に気づいたこと"


def alpaca(i: int, output: str | None = None, **extra) -> dict:
    return {"instruction": INSTRUCTION, "input": body(i), "output": title(i) if output is None else output, **extra}


def write_jsonl(path: Path, rows: list[dict | str | bytes]) -> Path:
    """Rows may be dicts (dumped), str (written as the line) or bytes (written raw, newline added)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for row in rows:
            if isinstance(row, dict):
                row = json.dumps(row, ensure_ascii=False)
            if isinstance(row, str):
                row = row.encode("utf-8")
            f.write(row + b"\n")
    return path


def read_out(out: Path) -> tuple[list[dict], list[dict], dict]:
    kept = [json.loads(line) for line in (out / "kept.jsonl").read_text(encoding="utf-8").splitlines()]
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return kept, rejected, report


def by_line(kept: list[dict], rejected: list[dict]) -> dict[int, dict]:
    rows = {r["source_line"]: {**r, "rule": "kept"} for r in kept}
    rows.update({r["source_line"]: r for r in rejected})
    return rows
