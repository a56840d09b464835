"""loss_curve.png: the train and validation loss curves exactly as the overfitting detector judged them.

Thin, faint lines are the logged values; thick lines are the curves after the detector's alignment and
smoothing (`overfit.loss_curves`), so what the plot shows is what the verdict was computed from. The best
step, the early stop and the verdict with its signals are marked, so the picture reads at a glance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from components.train.overfit import OverfitVerdict, detect_overfitting, loss_curves
from components.train.settings import OverfitSection

TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#ff7f0e"
VERDICT_COLORS = {"ok": "#2ca02c", "overfit": "#d62728"}
SIGNAL_WORDS = {
    "val_rising": "val rising while train falls",
    "gap_widening": "gap widening",
    "weak_correlation": "curves decoupled",
    "low_train_high_val": "train under the floor, val high",
}


def build_loss_figure(log_history: list[dict[str, Any]], verdict: OverfitVerdict | None = None,
                      best_step: float | None = None, early_stop_step: float | None = None,
                      cfg: OverfitSection | None = None) -> Figure:
    cfg = cfg or OverfitSection()
    verdict = verdict or detect_overfitting(log_history, cfg)
    c = loss_curves(log_history, cfg)
    if best_step is None:
        best_step = verdict.metrics.get("best_step")

    fig = Figure(figsize=(10, 6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(alpha=0.3)
    ax.set_xlabel(c.x_label)
    ax.set_ylabel("loss")

    if len(c.train_x):
        ax.plot(c.train_x, c.train_loss, color=TRAIN_COLOR, lw=0.8, alpha=0.35, label="train loss (logged)")
    judged = (f"smoothed over {c.smoothing_window} evaluations" if c.smoothing_window > 1
              else "at each evaluation (too few to smooth)")
    if len(c.eval_x):
        ax.plot(c.eval_x, c.val_loss, color=VAL_COLOR, lw=0.8, alpha=0.45, marker="o", ms=3,
                label="validation loss (evaluated)")
        if np.isfinite(c.train_smooth).all():
            ax.plot(c.eval_x, c.train_smooth, color=TRAIN_COLOR, lw=2.4, label=f"train loss, {judged}")
        ax.plot(c.eval_x, c.val_smooth, color=VAL_COLOR, lw=2.4, label=f"validation loss, {judged}")
    if not len(c.train_x) and not len(c.eval_x):
        ax.text(0.5, 0.5, "no loss values in the log history", transform=ax.transAxes, ha="center", va="center")

    if best_step is not None and len(c.eval_x):
        best_val = float(np.interp(best_step, c.eval_x, c.val_loss))
        ax.axvline(best_step, color=VERDICT_COLORS["ok"], ls="--", lw=1.2)
        ax.plot([best_step], [best_val], marker="*", ms=16, color=VERDICT_COLORS["ok"], ls="none",
                label=f"best: {c.x_label} {best_step}, val {best_val:.3f}")
    if early_stop_step is not None:
        ax.axvline(early_stop_step, color="#555555", ls=":", lw=1.8, label=f"early stop at {c.x_label} {early_stop_step}")
    if verdict.metrics.get("early_stop_grace") and len(c.eval_x):
        ax.axvspan(verdict.metrics["judged_until_step"], c.eval_x[-1], color="#999999", alpha=0.12,
                   label="left out: the evaluations early stopping needs")
    if len(c.train_x) and c.train_loss.min() < 2 * cfg.low_train_loss:
        ax.axhline(cfg.low_train_loss, color="#777777", ls="-.", lw=1,
                   label=f"train loss {cfg.low_train_loss} (memorization floor)")
    _epoch_axis(ax, c.epoch_at)

    if ax.get_legend_handles_labels()[0]:
        fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    fig.suptitle(_title(verdict), color=VERDICT_COLORS[verdict.verdict], fontsize=14, fontweight="bold")
    ax.set_title(_subtitle(verdict, c.x_label), fontsize=9, color="#333333")
    return fig


def plot_loss_curves(log_history: list[dict[str, Any]], out_png: str | Path, verdict: OverfitVerdict | None = None,
                     best_step: float | None = None, early_stop_step: float | None = None,
                     cfg: OverfitSection | None = None) -> Path:
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    build_loss_figure(log_history, verdict, best_step, early_stop_step, cfg).savefig(out, format="png")
    return out


def _title(verdict: OverfitVerdict) -> str:
    fired = [SIGNAL_WORDS[name] for name in SIGNAL_WORDS if verdict.metrics.get(f"signal_{name}")]
    if verdict.overfit:
        return "Overfitting check: OVERFIT\n" + " · ".join(fired)
    if "note" in verdict.metrics:
        return "Overfitting check: ok (not enough points to judge)"
    if verdict.metrics.get("early_stop_grace"):
        return "Overfitting check: ok (early stopping caught the rise)"
    return "Overfitting check: ok"


def _subtitle(verdict: OverfitVerdict, x_label: str) -> str:
    m = verdict.metrics
    parts = []
    if m.get("best_val_loss") is not None:
        parts.append(f"best val {m['best_val_loss']:.3f} at {x_label} {m['best_step']}")
    if m.get("final_train_loss") is not None:
        parts.append(f"final train {m['final_train_loss']:.3f} / val {m['final_val_loss']:.3f} (smoothed)")
    if m.get("val_rise_rel"):
        parts.append(f"val rise from min {m['val_rise_rel']:+.1%}")
    if m.get("tail_correlation") is not None:
        parts.append(f"tail correlation {m['tail_correlation']:.2f}")
    return " · ".join(parts)


def _epoch_axis(ax, epoch_at: list[tuple[float, float]]) -> None:
    """Epochs on the top axis: a multi-epoch run often overfits at the epoch boundaries.
    The Trainer's epoch is linear in the step (step / steps per epoch), so a fitted line maps both ways."""
    if len(epoch_at) < 2:
        return
    steps, epochs = (np.array(v, dtype=float) for v in zip(*epoch_at, strict=True))
    per_step, offset = np.polyfit(steps, epochs, 1)
    if not per_step > 0:
        return
    top = ax.secondary_xaxis("top", functions=(lambda s: s * per_step + offset, lambda e: (e - offset) / per_step))
    top.set_xlabel("epoch")
    last_epoch = float(epochs.max())
    for boundary in range(1, min(int(last_epoch), 20) + 1):
        if boundary < last_epoch:
            ax.axvline((boundary - offset) / per_step, color="#bbbbbb", lw=0.8, zorder=0)
