"""The run summary a person reads at the end of a run: every gate's checks in chain order (value, threshold,
passed, loosened thresholds marked with their reason), where the run stopped and why, and what shipped.

Written as `run_summary.json` and `gates.md` beside the stage folders, printed by `finegate run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.common.gates import GATE_NAMES, show

STAGE_ORDER = ("policy", "clean", "split", "train", "hf_check", "gguf", "evaluate", "register")


def gate_rows(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for stage in STAGE_ORDER:
        for check in (reports.get(stage) or {}).get("gate_checks") or []:
            if stage == "train" and check["gate"] == "policy" and "policy" in reports:
                continue  # the pre-flight already showed the policy
            rows.append(check)
    return rows


def _threshold(check: dict[str, Any]) -> str:
    op = check["op"]
    text = f"{op} {show(check['threshold'])}" if op in ("<=", ">=") else str(check["threshold"])
    text = f"in {text}" if op == "in" else text
    return text + (" *" if check.get("loosened") else "")


def gate_table(rows: list[dict[str, Any]]) -> list[str]:
    """A fixed-width text table: gate, stage, check, value, threshold, passed."""
    header = ("gate", "stage", "check", "value", "threshold", "passed")
    body = [(r["gate"], r["stage"], r["label"], show(r["value"]), _threshold(r),
             "superseded" if r.get("superseded") else ("yes" if r["passed"] else "NO")) for r in rows]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header), fmt.format(*("-" * w for w in widths)), *(fmt.format(*line) for line in body)]


def loosened_notes(loosened: dict[str, dict[str, Any]]) -> list[str]:
    """One line per threshold the config loosens (config.loosened_thresholds), with the config's reason."""
    return [f"* {path}={show(v['value'])} is looser than production ({show(v['default'])}): {v['reason']}"
            for path, v in loosened.items()]


def markdown(summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [f"# finegate run `{summary['run']}`", ""]
    if summary["passed"]:
        lines.append(f"**Every gate passed.** Registered: `{summary.get('model_uri')}`, GGUF sha256 "
                     f"`{summary.get('gguf_sha256')}`.")
    else:
        stage = summary.get("failed_stage")
        lines.append(f"**Stopped at {summary.get('failed_gate') or stage}** (stage `{stage}`): nothing registered.")
        lines += [f"- {r}" for r in summary["stages"].get(stage, {}).get("reasons", [])]
    lines += ["", "| gate | stage | check | value | threshold | passed |", "|---|---|---|---|---|---|"]
    for r in rows:
        passed = "superseded" if r.get("superseded") else ("yes" if r["passed"] else "**NO**")
        lines.append(f"| {r['gate']} | {r['stage']} | {r['label']} | {show(r['value'])} | {_threshold(r)} | {passed} |")
    notes = loosened_notes(summary.get("loosened") or {})
    if notes:
        lines += ["", "Loosened thresholds (demo values, not production ones):", *[f"- {n[2:]}" for n in notes]]
    return "\n".join(lines) + "\n"


def describe_gate(gate: str) -> str:
    return f"gate {gate} ({GATE_NAMES.get(gate, gate)})" if gate not in ("policy", "split") else GATE_NAMES[gate]


def write_summary_files(out: Path, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    (out / "gates.md").write_text(markdown(summary, rows), encoding="utf-8")


def stage_markdown(report: dict[str, Any]) -> str:
    """One stage's gate as Markdown (the KFP UI renders it on the task's page): verdict, reasons, checks."""
    stage = report.get("stage", "?")
    rows = [c for c in report.get("gate_checks") or []]
    verdict = "passed" if report.get("passed") else "**FAILED**"
    lines = [f"# {stage}: {verdict}", ""]
    lines += [f"- {r}" for r in report.get("reasons") or []]
    if rows:
        lines += ["", "| gate | check | value | threshold | passed |", "|---|---|---|---|---|"]
        for r in rows:
            passed = "superseded" if r.get("superseded") else ("yes" if r["passed"] else "**NO**")
            note = f" (loosened: {r['loosened']})" if r.get("loosened") else ""
            lines.append(f"| {r['gate']} | {r['label']} | {show(r['value'])} | {_threshold(r)}{note} | {passed} |")
    return "\n".join(lines) + "\n"


def write_run_summary(path: str | Path, run_dir: str | Path, cfg, register_report) -> None:
    """The whole run's gate table as Markdown (the register task's summary artifact on a cluster)."""
    from components.common.config import loosened_thresholds
    from components.common.report import read_report

    root = Path(run_dir)
    reports = {s: read_report(root / s) for s in STAGE_ORDER if (root / s / "report.json").is_file()}
    reports["register"] = register_report.to_dict()
    details = register_report.details
    summary = {"run": cfg.run.name, "passed": register_report.passed, "stages": {},
               "failed_stage": None if register_report.passed else "register",
               "model_uri": details.get("alias_uri") or details.get("model_uri"),
               "gguf_sha256": (details.get("gguf") or {}).get("sha256"), "loosened": loosened_thresholds(cfg)}
    summary["stages"]["register"] = {"reasons": register_report.reasons}
    Path(path).write_text(markdown(summary, gate_rows(reports)), encoding="utf-8")
