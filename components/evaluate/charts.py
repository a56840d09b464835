"""metrics.png: the fine-tuned model beside its baselines, one panel per scale (labels in ASCII: the
machines that render it may have no Japanese font)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

CHART_NAME = "metrics.png"
OVERLAP_METRICS = ("rouge_l", "bleu", "chrf")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def write_metrics_chart(systems: dict[str, dict[str, Any]], output_dir: Path, min_rouge_l: float | None = None,
                        max_degenerate_rate: float | None = None) -> Path:
    """systems: {name: {"rouge_l", "bleu", "chrf", "degenerate_rate", "perplexity"?}} in display order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(systems)
    with_ppl = [n for n in names if _finite(systems[n].get("perplexity"))]
    panels = 3 if with_ppl else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels + 1.5, 3.8),
                             gridspec_kw={"width_ratios": [2.2] + [1] * (panels - 1)})
    width = 0.8 / len(names)

    ax = axes[0]
    for k, name in enumerate(names):
        xs = [m + (k - (len(names) - 1) / 2) * width for m in range(len(OVERLAP_METRICS))]
        values = [systems[name].get(m) or 0.0 for m in OVERLAP_METRICS]
        bars = ax.bar(xs, values, width, label=name, color=f"C{k}")
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    if min_rouge_l is not None:
        ax.plot([-0.45, 0.45], [min_rouge_l] * 2, "k--", linewidth=0.9, label=f"gate: rouge_l >= {min_rouge_l:g}")
    ax.set_xticks(range(len(OVERLAP_METRICS)), ["ROUGE-L", "BLEU", "chrF"])
    ax.set_ylim(0, max(1e-6, max((systems[n].get(m) or 0.0) for n in names for m in OVERLAP_METRICS)) * 1.25)
    ax.set_title("overlap with the reference titles (higher is better)", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1]
    rates = [systems[n].get("degenerate_rate") or 0.0 for n in names]
    bars = ax.bar(names, rates, color=[f"C{k}" for k in range(len(names))])
    ax.bar_label(bars, labels=[f"{r:.0%}" for r in rates], fontsize=7)
    if max_degenerate_rate is not None:
        ax.axhline(max_degenerate_rate, color="k", linestyle="--", linewidth=0.9,
                   label=f"gate: <= {max_degenerate_rate:.0%}")
        ax.legend(fontsize=7)
    ax.set_ylim(0, max(0.05, max(rates) * 1.25, (max_degenerate_rate or 0) * 1.25))
    ax.set_title("degenerate outputs (lower is better)", fontsize=9)

    if with_ppl:
        ax = axes[2]
        values = [systems[n]["perplexity"] for n in with_ppl]
        bars = ax.bar(with_ppl, values, color=[f"C{names.index(n)}" for n in with_ppl])
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_ylim(0, max(values) * 1.25)
        ax.set_title("perplexity of the references (lower is better)", fontsize=9)

    fig.tight_layout()
    path = Path(output_dir) / CHART_NAME
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
