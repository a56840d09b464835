"""What every KFP component body shares: the run config travels as one JSON string parameter, and a stage
report's numbers, verdict and reasons go to the task's Metrics artifact so the KFP UI shows them.

The gate rule every component follows: the stage measures and writes its report; the component returns
1.0 when the stage's gate passed and 0.0 when it did not (never raising for a failed gate), and the pipeline
branches on that float: the `Else` branch runs the gate's own `gate_failed` task, which fails the run there
with the reasons it reads from this Metrics artifact.
"""

from __future__ import annotations

import json
from typing import Any

from components.common.config import RunConfig, dump_config
from components.common.report import StageReport
from components.common.storage import configure


def config_to_json(cfg: RunConfig) -> str:
    return json.dumps(dump_config(cfg), ensure_ascii=False)


def config_from_json(text: str) -> RunConfig:
    cfg = RunConfig.model_validate(json.loads(text) if text else {})
    configure(cfg.storage)
    return cfg


def numeric_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Flattens nested report metrics to `a.b` keys, keeping finite numbers and booleans only."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool):
            flat[name] = float(value)
        elif isinstance(value, (int, float)):
            try:
                number = float(value)
            except OverflowError:  # an integer too large for a float is no metric
                continue
            if number == number and abs(number) != float("inf"):
                flat[name] = number
        elif isinstance(value, dict):
            flat.update(numeric_metrics(value, prefix=f"{name}."))
    return flat


def log_report(metrics_artifact, report: StageReport, gate_markdown=None) -> float:
    """Logs the report's numbers, its verdict and its reasons to a KFP `Output[Metrics]`, and its gate as a
    Markdown table to `gate_markdown` (an `Output[Markdown]`, shown on the task's page); returns the
    component's gate output (1.0 passed, 0.0 failed)."""
    for name, value in numeric_metrics(report.metrics).items():
        metrics_artifact.log_metric(name, value)
    metrics_artifact.log_metric("passed", float(report.passed))
    metrics_artifact.metadata["reasons"] = report.reasons
    metrics_artifact.metadata["stage"] = report.stage
    if gate_markdown is not None:
        from pipelines.summary import stage_markdown

        with open(gate_markdown.path, "w", encoding="utf-8") as f:
            f.write(stage_markdown(report.to_dict()))
    return float(report.passed)


def write_image_html(path: str, png: str, title: str) -> None:
    """A one-file HTML page with the PNG inlined (the KFP UI renders an HTML artifact only when it is one file)."""
    import base64
    import html
    import os

    body = "<p>(no image: the stage stopped before drawing it)</p>"
    if os.path.isfile(png):
        with open(png, "rb") as f:
            body = f'<img alt="{html.escape(title)}" src="data:image/png;base64,{base64.b64encode(f.read()).decode()}">'
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title><h3>{html.escape(title)}</h3>"
                f"{body}")
