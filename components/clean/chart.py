"""clean_rules.png: rows rejected per rule next to the kept count, for a person to glance at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHART_NAME = "clean_rules.png"


def write_rules_chart(rules: dict[str, int], metrics: dict[str, Any], output_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["kept", *rules]
    counts = [metrics["kept"], *rules.values()]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    bars = ax.barh(names, counts, color=["C2"] + ["C3"] * len(rules))
    ax.bar_label(bars, padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("rows")
    ax.set_title(f"clean: {metrics['rows_in']} rows in, contamination {metrics['contamination_rate_before']:.1%}"
                 f" before, {metrics['contamination_rate_after']:.1%} after", fontsize=9)
    fig.tight_layout()
    path = output_dir / CHART_NAME
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
