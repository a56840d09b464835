"""What the clean stage hands on, read the one way every consumer reads it: `kept.jsonl` of a verified clean
output (components/common/stage_output.py), each row a unified record with the id clean assigned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from components.common.errors import InputError, row_problem
from components.common.report import iter_jsonl
from components.common.stage_output import read_output

STAGE = "clean"
KEPT, REJECTED = "kept.jsonl", "rejected.jsonl"
REQUIRED_FIELDS = ("id", "source_line", "prompt", "completion")


def read_kept(output: str | Path, cache_dir: str | Path) -> tuple[Path, list[dict[str, Any]]]:
    """(path of kept.jsonl, its rows) from a clean output: its directory, its kept.jsonl, or an s3:// prefix."""
    directory, _ = read_output(output, STAGE, cache_dir)
    path = directory / KEPT
    return path, kept_rows(path)


def kept_rows(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    first_line_of_id: dict[Any, int] = {}
    for line_no, row in iter_jsonl(path, "a kept record"):
        for name in REQUIRED_FIELDS:
            if row.get(name) is None:
                raise InputError(row_problem(str(path), line_no, name, "missing; kept.jsonl rows need id, source_line, "
                                             "prompt, completion (the output of finegate clean)"))
        for name in ("prompt", "completion"):
            if not isinstance(row[name], str):
                raise InputError(row_problem(str(path), line_no, name, f"expected text, got {type(row[name]).__name__}"))
        key = json.dumps(row["id"], ensure_ascii=False)
        if key in first_line_of_id:
            raise InputError(row_problem(str(path), line_no, "id", f"duplicate id {row['id']!r} (first on line "
                                         f"{first_line_of_id[key]}); every row needs its own id to be traceable"))
        first_line_of_id[key] = line_no
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no rows to split")
    return rows
