"""One rule for every gate: the stage measures, the gate compares with a threshold from the run config, and
a comparison that cannot be made fails.

    gate = Gate("B", "hf_check", cfg)
    gate.at_most("gates.max_degenerate_rate", 0.03, "degenerate-output rate")
    gate.at_least("gates.min_rouge_l", 0.12, "ROUGE-L against the references")
    gate.apply(report)   # every check into report.details["gate_checks"], every failure into report.reasons

A measured value that is missing, NaN or infinite fails its check (NaN compares false both ways, so a plain
`value > limit` would let it through). Every check row names the gate, the stage, the setting it reads, the
value, the comparison and the threshold, and whether that threshold is looser than its production default
(with the reason the config gives, `gates.loosened`): the run summary, the HTML report and MLflow show these
rows, so no one mistakes a demo threshold for a production one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from components.common.config import RunConfig, loosened_thresholds, setting
from components.common.report import StageReport

GATE_CHECKS = "gate_checks"
# What each gate stands for, in chain order (the run summary lists them in this order).
GATE_NAMES = {
    "0": "data: contamination left, rows kept",
    "split": "leak-free split",
    "policy": "training policy (before any compute)",
    "A": "training: validation loss, overfitting",
    "B": "inference before conversion",
    "C": "F16 conversion fidelity",
    "D": "quantization fidelity",
    "E": "test-set evaluation",
}


@dataclass
class Check:
    gate: str
    stage: str
    label: str
    value: Any
    op: str  # "<=", ">=", "==" (a rule that must hold)
    threshold: Any
    passed: bool
    setting: str | None = None  # None: a structural check with no setting (e.g. no leak pairs)
    loosened: str | None = None  # the config's reason, when the threshold is looser than production
    production: Any = None  # the production default of a loosened threshold


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def show(value: Any) -> str:
    if isinstance(value, float) and finite(value):
        return f"{value:.4g}"
    return "not measured" if value is None or (isinstance(value, float) and not math.isfinite(value)) else str(value)


class Gate:
    """The checks of one gate of one stage; `apply` writes them into the stage's report."""

    def __init__(self, gate: str, stage: str, cfg: RunConfig):
        self.gate, self.stage, self.cfg = gate, stage, cfg
        self.checks: list[Check] = []
        self.reasons: list[str] = []
        self._loose = loosened_thresholds(cfg)

    @property
    def passed(self) -> bool:
        return not self.reasons

    def at_most(self, name: str, value: Any, label: str, reason: str | None = None, fix: str | None = None) -> bool:
        return self._compare(name, value, label, "<=", reason, fix)

    def at_least(self, name: str, value: Any, label: str, reason: str | None = None, fix: str | None = None) -> bool:
        return self._compare(name, value, label, ">=", reason, fix)

    def fixed(self, label: str, value: Any, op: str, threshold: float, reason: str) -> bool:
        """A structural check with no setting behind it (e.g. no duplicate pair may straddle splits)."""
        ok = finite(value) and (value <= threshold if op == "<=" else value >= threshold)
        return self._record(Check(self.gate, self.stage, label, value, op, threshold, ok), reason)

    def allowed(self, label: str, value: Any, allowed: str, ok: bool, reason: str, name: str | None = None) -> bool:
        """A setting against the values a rule allows (the training policy: `train.lora.rank=8` in range 16-64)."""
        return self._record(Check(self.gate, self.stage, label, value, "in", allowed, ok, name), reason)

    def rule(self, name: str, broken: bool, label: str, reason: str) -> bool:
        """An on/off rule (`gates.fail_on_overfit`): it fails the gate when it is on and broken."""
        on = bool(setting(self.cfg, name))
        ok = not (on and broken)
        value = "broken" if broken else "holds"
        return self._record(Check(self.gate, self.stage, label, value, "==", "holds" if on else "off (not gated)",
                                  ok, name, *self._loosened(name)), reason)

    def _compare(self, name: str, value: Any, label: str, op: str, reason: str | None, fix: str | None) -> bool:
        threshold = setting(self.cfg, name)
        ok = finite(value) and (value <= threshold if op == "<=" else value >= threshold)
        if reason is None:
            if not finite(value):
                reason = f"gate {self.gate}: {label} could not be measured ({show(value)}); a gate fails without a value"
            else:
                reason = f"gate {self.gate}: {label} {show(value)} {'>' if op == '<=' else '<'} {name}={threshold:g}"
            if fix:
                reason += f"; {fix}"
        return self._record(Check(self.gate, self.stage, label, value, op, threshold, ok, name, *self._loosened(name)),
                            reason)

    def _loosened(self, name: str) -> tuple[str | None, Any]:
        found = self._loose.get(name)
        return (found["reason"], found["default"]) if found else (None, None)

    def _record(self, check: Check, reason: str) -> bool:
        self.checks.append(check)
        if not check.passed:
            self.reasons.append(reason)
        return check.passed

    def rows(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.checks]

    def apply(self, report: StageReport) -> None:
        report.details.setdefault(GATE_CHECKS, []).extend(self.rows())
        for reason in self.reasons:
            report.fail(reason)


def gate_checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list(report.get(GATE_CHECKS) or [])
