"""fidelity.png: each quantized file's gate D figures beside llama.cpp's published Q4_K_M figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.common.settings.gates import GatesSection

PLOT_NAME = "fidelity.png"


def plot_fidelity(fidelity: dict[str, Any], reference: dict[str, Any], gates: GatesSection, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    quantized = fidelity["quantized"]
    names = [*quantized, "llama.cpp 8B\nQ4_K_M"]
    panels = [("same_top_token_rate", "same top token (higher is better)", gates.min_same_top_token_rate),
              ("mean_kld", "mean KL divergence (lower is better)", gates.max_mean_kld),
              ("perplexity_ratio", "perplexity ratio vs F16 (lower is better)", gates.max_perplexity_ratio)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (key, title, threshold) in zip(axes, panels, strict=True):
        values = [quantized[q][key] for q in quantized] + [reference[key]]
        colors = ["tab:blue"] * len(quantized) + ["tab:gray"]
        ax.bar(names, values, color=colors)
        ax.axhline(threshold, color="tab:red", linestyle="--", label=f"gate D threshold {threshold:g}")
        for x, v in enumerate(values):
            ax.annotate(f"{v:.4g}", (x, v), ha="center", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        ax.legend(fontsize=7, loc="lower right")
    c = fidelity["f16_vs_hf"]
    fig.suptitle(f"gate C (F16 vs HF): greedy agreement {c['greedy_agreement']:.3g}, "
                 f"largest logit difference {c['max_logit_diff']:.3g}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
