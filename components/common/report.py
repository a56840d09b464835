"""The report every stage writes: `{"stage", "passed", "reasons", "metrics", ...}` (DESIGN.md, contracts)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.common.errors import InputError, row_problem

REPORT_NAME = "report.json"


@dataclass
class StageReport:
    stage: str
    passed: bool = True
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        """Records one reason the stage's gate says no; a report with any reason has not passed."""
        self.passed = False
        self.reasons.append(reason)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "passed": self.passed, "reasons": self.reasons,
                "metrics": _finite(self.metrics), **_finite(self.details)}

    def write(self, output_dir: str | Path) -> Path:
        out = Path(output_dir) / REPORT_NAME
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(REPORT_NAME + ".part")
        partial.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        partial.replace(out)  # a reader sees the old report or the new one, never half of one
        return out


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null rather than emit invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def read_report(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / REPORT_NAME
    return json.loads(p.read_text(encoding="utf-8"))


def write_jsonl(path: str | Path, rows) -> int:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def iter_jsonl(path: str | Path, what: str = "a record") -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) for every non-blank line. A line that is not a JSON object ends the
    read with an InputError naming the file and line: stage inputs are machine-written, so one bad line
    means the file is not what the stage expects."""
    p = Path(path)
    with p.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(row_problem(str(p), line_no, None, f"not valid JSON ({exc.msg})")) from None
            if not isinstance(row, dict):
                raise InputError(row_problem(str(p), line_no, None, f"expected a JSON object ({what})"))
            yield line_no, row


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [row for _, row in iter_jsonl(path)]
