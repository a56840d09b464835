"""The standard's rules for a LoRA SFT run, checked before any compute.

Each rule names the setting it reads, the range `train.policy` allows and where the rule comes from, so a
violation message says exactly what to change. `train.policy_override_reason` lets a run go ahead anyway;
the reason and the overridden violations are written to the train report (and from there to MLflow).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from components.common.config import RunConfig

# The source every rule quotes: the team's fine-tuning standard (LoRA SFT section).
STANDARD = "fine-tuning standard, LoRA SFT"


@dataclass
class Violation:
    setting: str
    value: Any
    allowed: str
    rule: str

    @property
    def message(self) -> str:
        return f"{self.setting}={self.value!r} is outside the allowed {self.allowed} ({STANDARD}: {self.rule})"


@dataclass
class PolicyCheck:
    violations: list[Violation] = field(default_factory=list)
    override_reason: str | None = None

    @property
    def passed(self) -> bool:
        """True when nothing is violated, or everything violated is overridden with a written reason."""
        return not self.violations or bool(self.override_reason)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "overridden": bool(self.violations and self.override_reason),
                "override_reason": self.override_reason,
                "violations": [{**asdict(v), "message": v.message} for v in self.violations]}


def _range(lo: float, hi: float) -> str:
    return f"range {lo:g} to {hi:g}"


def check_policy(cfg: RunConfig, val_rows: int | None = None) -> PolicyCheck:
    """Every rule of the standard against the train config and the validation split: its rows when the split
    exists (the train stage), else its planned share (`finegate run` and the pipeline, before any compute)."""
    train = cfg.train
    p, lora = train.policy, train.lora
    found: list[Violation] = []

    def outside(setting: str, value: float, bounds: tuple[float, float], rule: str) -> None:
        if not bounds[0] <= value <= bounds[1]:
            found.append(Violation(setting, value, _range(*bounds), rule))

    outside("train.lora.rank", lora.rank, p.rank_range,
            "LoRA rank 16-64: lower ranks underfit a new output style, higher ones add parameters without gain")
    allowed_alphas = sorted({lora.rank * m for m in p.alpha_multipliers})
    if lora.alpha not in allowed_alphas:
        multiples = " or ".join(f"{m}x rank" if m != 1 else "rank" for m in p.alpha_multipliers)
        found.append(Violation("train.lora.alpha", lora.alpha, f"values {allowed_alphas} ({multiples})",
                               "alpha = rank or 2x rank, so the update scale stays in the tested regime"))
    if not lora.use_rslora:
        found.append(Violation("train.lora.use_rslora", lora.use_rslora, "value true",
                               "rsLoRA on: scaling by alpha/sqrt(rank) keeps higher ranks learning"))
    outside("train.lora.dropout", lora.dropout, p.dropout_range, "LoRA dropout 0-0.1")
    missing = [m for m in p.required_target_modules if m not in lora.target_modules]
    if missing:
        found.append(Violation("train.lora.target_modules", lora.target_modules,
                               f"set including all of {p.required_target_modules} (missing {missing})",
                               "target every linear projection of attention and MLP (q, k, v, o, gate, up, down)"))
    outside("train.learning_rate", train.learning_rate, p.learning_rate_range, "learning rate near 2e-4 for LoRA")
    if train.lr_scheduler not in p.schedulers:
        found.append(Violation("train.lr_scheduler", train.lr_scheduler, f"values {p.schedulers}",
                               "cosine (or linear / constant) decay after warmup"))
    outside("train.warmup_ratio", train.warmup_ratio, p.warmup_ratio_range, "warmup over 3-10% of the steps")
    outside("train.num_epochs", train.num_epochs, p.epochs_range,
            "1-3 epochs: more passes over a small set memorise it (the failed v1 run went 2.847 -> 0.254)")
    if not train.early_stopping:
        found.append(Violation("train.early_stopping", train.early_stopping, "value true",
                               "early stopping on the validation loss ends a run that starts to memorise"))
    else:
        outside("train.early_stopping_patience", train.early_stopping_patience, p.early_stopping_patience_range,
                "early-stopping patience 10-20 evaluations: fewer stops on noise, more lets memorising run on")
    if not train.load_best_at_end:
        found.append(Violation("train.load_best_at_end", train.load_best_at_end, "value true",
                               "ship the checkpoint with the best validation loss, not the last step"))
    no_val = "a validation split must exist: without one nobody sees overfitting"
    if val_rows is None and cfg.split.ratios[1] <= 0:
        found.append(Violation("split.ratios[1] (validation share)", cfg.split.ratios[1], "above 0", no_val))
    elif val_rows is not None and val_rows < 1:
        found.append(Violation("split val.jsonl rows", val_rows, "at least 1 row", no_val))
    return PolicyCheck(found, train.policy_override_reason)


def policy_gate(check: PolicyCheck, stage: str, cfg: RunConfig):
    """The policy as a gate (common/gates.py): one check per violated rule; overridden ones pass with a note."""
    from components.common.gates import Gate

    gate = Gate("policy", stage, cfg)
    for v in check.violations:
        overridden = f" (overridden: {check.override_reason})" if check.passed else ""
        gate.allowed(v.setting + overridden, v.value, v.allowed, check.passed, name=v.setting,
                     reason=f"policy: {v.message}; set train.policy_override_reason to go ahead anyway")
    if not check.violations:
        gate.allowed("every rule of the standard", "holds", "the standard's ranges", True, reason="")
    return gate


def run_policy_check(output_dir, cfg: RunConfig):
    """The pre-flight stage `policy`: the standard's rules against the run config, before any data is read
    or any compute spent (`finegate run` and the pipeline's first task). Writes report.json."""
    from components.common.report import StageReport
    from components.common.stage_output import StageOutput

    report = StageReport("policy")
    check = check_policy(cfg)
    report.details["policy"] = check.to_dict()
    policy_gate(check, "policy", cfg).apply(report)
    with StageOutput(output_dir, "policy") as output:
        output.finish(report)
    return report
