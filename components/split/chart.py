"""split_categories.png: each split's rows per category beside the target, for a person to glance at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHART_NAME = "split_categories.png"


def write_category_chart(report_details: dict[str, Any], output_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals: dict[str, int] = report_details["stratification"]["categories"]
    splits = {name: info for name, info in report_details["splits"].items() if info["target_ratio"] > 0}
    categories = list(totals)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(categories) + 2), 4))
    width = 0.8 / len(splits)
    for k, (name, info) in enumerate(splits.items()):
        xs = [c + (k - (len(splits) - 1) / 2) * width for c in range(len(categories))]
        shares = [info["categories"].get(cat, 0) / totals[cat] for cat in categories]
        ax.bar(xs, shares, width, label=f"{name} ({info['rows']} rows)")
        ax.axhline(info["target_ratio"], linestyle="--", linewidth=0.8, color=f"C{k}")
    ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
    ax.set_ylabel("share of the category's rows")
    worst = report_details["stratification"]["max_deviation"]
    ax.set_title(f"split by category (dashed: target); largest deviation {worst['value']:+.3f}"
                 f" ({worst['split']}, {worst['category']})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = output_dir / CHART_NAME
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
