"""What every KFP component body shares: the run config travels as one JSON string parameter, and a
stage report's numbers are logged to the task's Metrics artifact so the KFP UI shows them."""

from __future__ import annotations

import json
from typing import Any

from components.common import storage
from components.common.config import RunConfig, dump_config
from components.common.report import StageReport


def config_to_json(cfg: RunConfig) -> str:
    return json.dumps(dump_config(cfg), ensure_ascii=False)


def config_from_json(text: str) -> RunConfig:
    """The run config, whose storage settings (timeouts, retries, endpoint) this process then uses."""
    cfg = RunConfig.model_validate(json.loads(text) if text else {})
    storage.configure(cfg.storage)
    return cfg


def numeric_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Flattens nested report metrics to `a.b` keys, keeping finite numbers and booleans only."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool):
            flat[name] = float(value)
        elif isinstance(value, (int, float)) and value == value and abs(value) != float("inf"):
            flat[name] = float(value)
        elif isinstance(value, dict):
            flat.update(numeric_metrics(value, prefix=f"{name}."))
    return flat


def log_report(metrics_artifact, report: StageReport) -> None:
    """Logs the report's numbers and its verdict to a KFP `Output[Metrics]`."""
    for name, value in numeric_metrics(report.metrics).items():
        metrics_artifact.log_metric(name, value)
    metrics_artifact.log_metric("passed", float(report.passed))
    metrics_artifact.metadata["reasons"] = report.reasons
