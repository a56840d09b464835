"""What the split stage hands on, read the one way every consumer reads it.

    splits = read_splits("runs/demo/split", cache_dir)      # verified against split's report
    splits.rows("val")                                       # typed rows, in file order
    splits.rows("val", "test", limit=64)                     # the first 64 of each named split

Every row keeps the `id` and `source_line` the clean stage gave it; nothing downstream invents ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.common.errors import InputError, row_problem
from components.common.report import iter_jsonl
from components.common.stage_output import read_output

STAGE = "split"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitRow:
    id: str
    source_line: int
    split: str
    prompt: str
    completion: str
    category: str | None = None
    group: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class Splits:
    directory: Path
    report: dict[str, Any]

    def path(self, name: str) -> Path:
        if name not in SPLITS:
            raise InputError(f"no split named '{name}' (the split stage writes {', '.join(SPLITS)})")
        return self.directory / f"{name}.jsonl"

    def rows(self, *names: str, limit: int | None = None) -> list[SplitRow]:
        """Rows of the named splits in that order; `limit`: the first rows of each split."""
        out: list[SplitRow] = []
        for name in names:
            out.extend(_read(self.path(name), name, limit))
        return out


def _read(path: Path, split: str, limit: int | None) -> list[SplitRow]:
    rows: list[SplitRow] = []
    for line_no, row in iter_jsonl(path, "a split row"):
        if limit is not None and len(rows) >= limit:
            break
        for name in ("prompt", "completion"):
            if not isinstance(row.get(name), str):
                raise InputError(row_problem(str(path), line_no, name, "missing or not text; split rows need prompt "
                                             "and completion"))
        if row.get("id") is None or not isinstance(row.get("source_line"), int):
            raise InputError(row_problem(str(path), line_no, "id", "missing id or source_line; split rows keep the "
                                         "ids the clean stage gave them"))
        known = {"id", "source_line", "prompt", "completion", "category", "group"}
        rows.append(SplitRow(id=str(row["id"]), source_line=row["source_line"], split=split, prompt=row["prompt"],
                             completion=row["completion"], category=_text(row.get("category")),
                             group=_text(row.get("group")), extra={k: v for k, v in row.items() if k not in known}))
    return rows


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def read_splits(output: str | Path, cache_dir: str | Path) -> Splits:
    """The split stage's verified output: its directory, a file in it, or an s3:// prefix."""
    directory, report = read_output(output, STAGE, cache_dir)
    return Splits(directory, report)
