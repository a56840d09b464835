"""The report every stage writes: `{"stage", "passed", "reasons", "metrics", ...}` (DESIGN.md, contracts)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        out.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
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


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
