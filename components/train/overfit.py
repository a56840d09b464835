"""Is the run overfitting? A verdict read from the loss history a Hugging Face Trainer writes.

    verdict = detect_overfitting(load_log_history("runs/demo/train/trainer_state.json"), cfg.train.overfit)
    verdict.verdict  # "ok" | "overfit";  verdict.reasons, verdict.metrics

The curves
    Training loss is logged every `logging_steps` from noisy mini-batches; validation loss every `eval_steps`
    on the whole validation set. Both are compared at the evaluation steps: each evaluation gets the mean
    training loss logged over its share of the step axis (halfway to the evaluations before and after it),
    or the interpolated training loss when no log falls there. That works for any ratio of logging to
    evaluation frequency, for uneven evaluation spacing, and it averages away most mini-batch noise.
    Then both series get the same centered moving average (`smooth`), which has no lag, so a rise at the
    end is not hidden; on short histories the window shrinks so 3-8 evaluations are judged raw.

The signals (every threshold is relative to the loss level, so a 1.2 and a 5.0 loss are judged alike,
and every trend must stand out of the curve's own noise, so a noisy run is not read as a trend)
    1. val_rising: the smoothed validation loss ends clearly above its minimum (by min_val_rise of it, and
       by noise_sigmas times the noise of that difference, estimated from the evaluations' second
       differences) while training loss kept falling since that minimum (by min_train_drop, unless the
       train log is too noisy to tell; a train loss that clearly rises too is instability, not overfitting).
    2. gap_widening: over the last part of training (tail_fraction of the steps, at least 3 evaluations)
       the val-minus-train gap grows by min_gap_growth of the val loss while training loss falls; the
       growth comes from least-squares trends through every logged value in the tail and must exceed
       gap_noise_sigmas standard errors.
    3. weak_correlation: over that same tail the smoothed curves' Pearson correlation is under
       min_correlation (the train/validation correlation signal of arXiv 2401.10359): they stopped moving
       together. A val curve that does not move beyond its noise counts as r = 0: Pearson r ignores scale
       and would otherwise find a perfect correlation in noise wiggles.
    4. low_train_high_val: the standard's memorization rule, training loss under low_train_loss (0.3,
       absolute as the standard states it) while validation loss stays high_val_loss_ratio times above it
       and above low_train_loss itself.

How they combine: overfit = 1 or 4 or (2 and 3)
    1 is the definition of overfitting (fitting the training set better while generalizing worse) and 4 is
    the standard's rule, each enough alone. 2 and 3 are weak alone: the gap widens in most healthy runs
    because training loss falls faster than validation loss, and the correlation of two flat curves is
    noise, so every plateau has a "weak correlation". Together they mean training loss keeps dropping
    substantially while validation loss no longer follows, which is overfitting even before val rises.
    A noisy healthy run does not fire 1 (noise guard) and keeps 2 and 3 apart; a plateau, where both
    curves flatten, has no gap growth.

Early stopping (the choice for a rise after the best step)
    With early stopping the run ends `patience` evaluations after the minimum and the train stage
    restores the best checkpoint, so a short rise at the very end is the system working, not overfitting.
    When the validation loss fell to a minimum and the rise after it spans at most grace_evals evaluations,
    is below strong_val_rise, and at least min_points evaluations come before it, those final evaluations
    are left out: every signal is judged on the history up to the rise's onset, and the metrics still
    report the rise (val_rise_abs, val_rise_rel, evals_rising, early_stop_grace). A steeper rise, a
    longer one, or a run whose val loss never improved counts as overfitting: early stopping caught it
    late, or the training set is being memorized from the start.

Too little data (fewer than min_points evaluations, or no training loss logged) gives "ok" with a note in
the reasons and in metrics["note"]: a gate cannot fail a run on a shape it cannot see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from components.common.errors import InputError
from components.common.report import read_json
from components.train.settings import OverfitSection

TRAINER_STATE_NAME = "trainer_state.json"
_EPS = 1e-12


@dataclass
class OverfitVerdict:
    verdict: Literal["ok", "overfit"]
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def overfit(self) -> bool:
        return self.verdict == "overfit"

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": list(self.reasons), "metrics": _json_safe(self.metrics)}


@dataclass
class LossCurves:
    """Both loss curves, raw and as the detector sees them: aligned on the evaluation steps and smoothed."""

    x_label: str  # "step", or "epoch" / "log entry" when the history has no steps
    train_x: np.ndarray
    train_loss: np.ndarray
    eval_x: np.ndarray
    val_loss: np.ndarray
    train_at_eval: np.ndarray  # mean training loss over each evaluation's share of the steps
    train_smooth: np.ndarray
    val_smooth: np.ndarray
    smoothing_window: int
    epoch_at: list[tuple[float, float]]  # (x, epoch) pairs, to label epochs on a plot


def load_trainer_state(trainer_state_path: str | Path) -> dict[str, Any]:
    """A trainer_state.json (or the one inside a run or checkpoint folder); a bare log_history list is
    accepted too, as {"log_history": [...]}."""
    path = Path(trainer_state_path)
    if path.is_dir():
        path = path / TRAINER_STATE_NAME
    if not path.is_file():
        raise InputError(f"{path}: no such file; pass the trainer_state.json the train stage wrote")
    state = read_json(path, "a trainer_state.json")
    if isinstance(state, list):
        state = {"log_history": state}
    if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
        raise InputError(f"{path}: no 'log_history' list; is this a Hugging Face trainer_state.json?")
    state["log_history"] = [entry for entry in state["log_history"] if isinstance(entry, dict)]
    return state


def load_log_history(trainer_state_path: str | Path) -> list[dict[str, Any]]:
    return load_trainer_state(trainer_state_path)["log_history"]


def early_stop_step(state: dict[str, Any]) -> int | None:
    """The step a run stopped at before its planned max_steps (early stopping), or None."""
    global_step, max_steps = _number(state.get("global_step")), _number(state.get("max_steps"))
    if global_step is not None and max_steps is not None and 0 < global_step < max_steps:
        return int(global_step)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _x_key(history: list[dict[str, Any]]) -> str:
    """The step axis, or epoch (or the entries' order) for histories written without steps."""
    logged = [e for e in history if _number(e.get("loss")) is not None or _number(e.get("eval_loss")) is not None]
    for key in ("step", "epoch"):
        if logged and all(_number(e.get(key)) is not None for e in logged):
            return key
    return "log entry"


def _series(history: list[dict[str, Any]], loss_key: str, x_key: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, loss) sorted by x; NaN or missing values skipped; a step logged twice (a resumed run) keeps its last value."""
    by_x: dict[float, float] = {}
    for position, entry in enumerate(history):
        loss = _number(entry.get(loss_key))
        if loss is None:
            continue
        x = float(position) if x_key == "log entry" else _number(entry.get(x_key))
        by_x[x] = loss
    xs = np.array(sorted(by_x), dtype=float)
    return xs, np.array([by_x[x] for x in xs], dtype=float)


def _effective_window(n: int, window: int) -> int:
    """The largest odd window <= `window` that still leaves three windows' worth of points."""
    w = min(window, max(1, n // 3))
    return max(1, w if w % 2 else w - 1)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centered moving average; near the ends it averages what is there, so it never lags behind a trend."""
    values = np.asarray(values, dtype=float)
    half = window // 2
    if half == 0 or len(values) < 2:
        return values.copy()
    return np.array([values[max(0, i - half): i + half + 1].mean() for i in range(len(values))])


def _span(i: int, n: int, window: int) -> int:
    """How many points `smooth` averages at index i."""
    half = window // 2
    return min(n, i + half + 1) - max(0, i - half)


def _train_at_eval(train_x: np.ndarray, train_loss: np.ndarray, eval_x: np.ndarray) -> np.ndarray:
    if len(train_x) == 0:
        return np.full(len(eval_x), np.nan)
    out = np.empty(len(eval_x))
    for i, x in enumerate(eval_x):
        lo = x - (x - eval_x[i - 1]) / 2 if i > 0 else (x - (eval_x[1] - x) / 2 if len(eval_x) > 1 else -np.inf)
        hi = x + (eval_x[i + 1] - x) / 2 if i + 1 < len(eval_x) else (x + (x - eval_x[i - 1]) / 2 if i > 0 else np.inf)
        inside = (train_x > lo) & (train_x <= hi)
        out[i] = train_loss[inside].mean() if inside.any() else np.interp(x, train_x, train_loss)
    return out


def loss_curves(log_history: list[dict[str, Any]], cfg: OverfitSection | None = None) -> LossCurves:
    cfg = cfg or OverfitSection()
    x_key = _x_key(log_history)
    train_x, train_loss = _series(log_history, "loss", x_key)
    eval_x, val_loss = _series(log_history, "eval_loss", x_key)
    train_at_eval = _train_at_eval(train_x, train_loss, eval_x)
    window = _effective_window(len(eval_x), cfg.smoothing_window)
    epoch_at = []
    if x_key == "step":
        epoch_at = sorted({(float(e["step"]), float(e["epoch"])) for e in log_history
                           if _number(e.get("step")) is not None and _number(e.get("epoch")) is not None})
    return LossCurves(x_label=x_key, train_x=train_x, train_loss=train_loss, eval_x=eval_x, val_loss=val_loss,
                      train_at_eval=train_at_eval, train_smooth=smooth(train_at_eval, window),
                      val_smooth=smooth(val_loss, window), smoothing_window=window, epoch_at=epoch_at)


def _noise(values: np.ndarray) -> float:
    """Eval-to-eval noise (a standard deviation) from second differences, which cancel a linear trend;
    the median makes it robust to the few points where the curve bends."""
    if len(values) < 6:
        return 0.0
    second = np.diff(values, 2)
    return float(1.4826 * np.median(np.abs(second)) / math.sqrt(6))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r; a flat curve moves with nothing, so r is 0 when either curve is constant."""
    if len(a) < 2 or np.std(a) < _EPS or np.std(b) < _EPS:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _change(xs: np.ndarray, ys: np.ndarray, x0: float, x1: float) -> tuple[float, float]:
    """How much a raw curve moved from x0 to x1, and the standard error of that, by the least-squares
    line through its points there: every logged point votes, so one noisy log at either end does not decide."""
    inside = (xs >= x0) & (xs <= x1)
    px, py = xs[inside], ys[inside]
    if len(px) < 2 or x1 <= x0:
        return (float(np.interp(x1, xs, ys) - np.interp(x0, xs, ys)) if len(xs) else 0.0), 0.0
    sxx = float(((px - px.mean()) ** 2).sum())
    slope = float(((px - px.mean()) * (py - py.mean())).sum()) / sxx
    residual = py - (py.mean() + slope * (px - px.mean()))
    se = math.sqrt(float((residual ** 2).sum()) / (len(px) - 2) / sxx) if len(px) > 2 else 0.0
    return slope * (x1 - x0), se * (x1 - x0)


def _tail(x: np.ndarray, end: int, fraction: float) -> np.ndarray:
    """Indices of the last `fraction` of the steps up to `end` (inclusive), at least 3 evaluations."""
    start_x = x[end] - fraction * (x[end] - x[0])
    idx = np.flatnonzero(x[: end + 1] >= start_x)
    return idx if len(idx) >= 3 else np.arange(max(0, end - 2), end + 1)


def _insufficient(note: str, metrics: dict[str, Any]) -> OverfitVerdict:
    metrics["note"] = note
    return OverfitVerdict("ok", [note], _json_safe(metrics))


def detect_overfitting(log_history: list[dict[str, Any]], cfg: OverfitSection | None = None) -> OverfitVerdict:
    cfg = cfg or OverfitSection()
    c = loss_curves(log_history, cfg)
    n = len(c.eval_x)
    m: dict[str, Any] = {"eval_points": n, "train_points": len(c.train_x), "x_axis": c.x_label,
                         "smoothing_window": c.smoothing_window}
    if n:
        best = int(np.argmin(c.val_loss))
        m.update(best_val_loss=float(c.val_loss[best]), best_step=_x_value(c.eval_x[best]),
                 last_val_loss=float(c.val_loss[-1]))
    if len(c.train_x):
        m["last_train_loss"] = float(c.train_loss[-1])
    if n < cfg.min_points:
        return _insufficient(f"not enough evaluation points to judge: {n} evaluation(s) of the validation loss, "
                             f"need {cfg.min_points}; log eval_loss more often (train.eval_steps)", m)
    if len(c.train_x) == 0:
        return _insufficient("not enough training loss points to judge: no 'loss' entries in the log history", m)

    x, val, train = c.eval_x, c.val_smooth, c.train_smooth
    gap = val - train
    m.update(final_train_loss=float(train[-1]), final_val_loss=float(val[-1]),
             gap_at_best=float(gap[best]), gap_at_end=float(gap[-1]),
             correlation=_correlation(train, val), val_noise=_noise(c.val_loss))

    # Signal 1: a rise of the smoothed val loss from its minimum to the end.
    low = int(np.argmin(val))
    val_min = max(float(val[low]), _EPS)
    onset = low + int(np.flatnonzero(val[low:] <= val_min * (1 + cfg.rise_onset_tolerance))[-1])
    rise_abs = float(val[-1] - val[low])
    rise_rel = rise_abs / val_min
    train_change, train_se = _change(c.train_x, c.train_loss, x[low], x[-1])
    train_drop_rel = -train_change / max(float(train[low]), _EPS)
    # "While training loss still falls", as far as its noise lets us tell: a train curve too noisy to show
    # its trend does not veto a val rise measured on the whole validation set; a rising one does.
    train_falls = train_drop_rel >= cfg.min_train_drop or abs(train_change) <= cfg.noise_sigmas * train_se
    evals_rising = n - 1 - onset
    # The noise of a difference of two smoothed points: each averages `_span` raw evaluations.
    rise_noise = m["val_noise"] * math.sqrt(1 / _span(low, n, c.smoothing_window) + 1 / _span(n - 1, n, c.smoothing_window))
    rise_seen = rise_rel >= cfg.min_val_rise and rise_abs > cfg.noise_sigmas * rise_noise
    improved_first = float(val[0]) > val_min * (1 + cfg.rise_onset_tolerance)
    grace = (improved_first and 0 < evals_rising <= cfg.grace_evals
             and rise_rel < cfg.strong_val_rise and onset + 1 >= cfg.min_points)
    val_rising = rise_seen and not grace and train_falls
    end = onset if grace else n - 1
    m.update(val_min_smoothed=val_min, val_min_step=_x_value(x[low]), val_rise_abs=rise_abs, val_rise_rel=rise_rel,
             evals_rising=evals_rising, train_drop_since_val_min_rel=train_drop_rel, train_falls_since_val_min=train_falls,
             early_stop_grace=grace, judged_until_step=_x_value(x[end]))

    # Signals 2 and 3 over the tail of the judged window.
    tail = _tail(x, end, cfg.tail_fraction)
    tx = x[tail]
    val_ref = max(float(val[: end + 1].min()), _EPS)
    train_change, train_se = _change(c.train_x, c.train_loss, tx[0], tx[-1])
    val_change, val_se = _change(x, c.val_loss, tx[0], tx[-1])
    gap_growth = val_change - train_change
    gap_growth_rel = gap_growth / val_ref
    tail_correlation = _correlation(train[tail], val[tail])
    # Pearson r ignores scale: a val curve flat within its noise would "correlate" perfectly with a falling
    # train curve by chance. A curve that does not move beyond its noise moves with nothing: r counts as 0.
    val_moves = abs(val_change) > cfg.noise_sigmas * max(val_se, m["val_noise"])
    judged_tail = len(tail) >= 3
    gap_widening = (judged_tail and gap_growth_rel >= cfg.min_gap_growth and train_change < 0
                    and gap_growth > cfg.gap_noise_sigmas * math.hypot(train_se, val_se))
    weak_correlation = judged_tail and (tail_correlation if val_moves else 0.0) < cfg.min_correlation
    m.update(tail_start_step=_x_value(tx[0]), gap_at_tail_start=float(gap[tail[0]]),
             gap_growth_rel=gap_growth_rel, tail_correlation=tail_correlation, val_moves_in_tail=val_moves)

    # Signal 4 at the end of the judged window.
    train_end, val_end = float(train[end]), float(val[end])
    low_train_high_val = (train_end < cfg.low_train_loss
                          and val_end >= max(cfg.high_val_loss_ratio * train_end, cfg.low_train_loss))
    m.update(val_train_ratio=val_end / max(train_end, _EPS))

    signals = {"val_rising": val_rising, "gap_widening": gap_widening, "weak_correlation": weak_correlation,
               "low_train_high_val": low_train_high_val}
    m.update({f"signal_{name}": value for name, value in signals.items()})
    overfit = val_rising or low_train_high_val or (gap_widening and weak_correlation)

    reasons = []
    if val_rising:
        reasons.append(
            f"smoothed validation loss rose {rise_rel:.1%} from its minimum {val_min:.3f} ({c.x_label} {_x_value(x[low])}) "
            f"to {val[-1]:.3f} ({c.x_label} {_x_value(x[-1])}) while training loss kept falling "
            f"({train[low]:.3f} -> {train[-1]:.3f}): the model memorizes the training set; train fewer epochs, "
            "lower the learning rate, or clean and enlarge the data")
    if low_train_high_val:
        reasons.append(
            f"training loss {train_end:.3f} is under {cfg.low_train_loss} while validation loss stays at "
            f"{val_end:.3f} ({val_end / max(train_end, _EPS):.1f}x): the standard's memorization rule")
    if gap_widening and weak_correlation:
        reasons.append(
            f"over the last {cfg.tail_fraction:.0%} of training the train/validation gap widened from "
            f"{gap[tail[0]]:.3f} to {gap[tail[-1]]:.3f} ({gap_growth_rel:.1%} of the validation loss) and the "
            f"curves stopped moving together (correlation {tail_correlation:.2f} < {cfg.min_correlation})")
    if grace:
        reasons.append(
            f"validation loss rose {rise_rel:.1%} over the last {evals_rising} evaluation(s) after its minimum at "
            f"{c.x_label} {_x_value(x[low])}: within the {cfg.grace_evals} evaluations early stopping needs, so the "
            f"run is judged up to {c.x_label} {_x_value(x[end])} (the restored best checkpoint)")
    if not overfit and not grace:
        reasons.append("no overfitting signal: validation loss follows training loss")
    # Plain Python values, so the train stage can put the metrics into its report.json and MLflow as they are.
    return OverfitVerdict("overfit" if overfit else "ok", reasons, _json_safe(m))


def _x_value(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def _json_safe(value: Any) -> Any:
    """JSON has no NaN, infinity or numpy scalars."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
