"""Hand-made loss histories in the shape a Hugging Face Trainer writes into trainer_state.json.

Each builder takes the curves as functions of training progress t in [0, 1], so the shape of a case is
readable in one line. Logged the way transformers 5 logs: {"loss", "grad_norm", "learning_rate", "epoch",
"step"} every `log_every` steps, {"eval_loss", "eval_runtime", ..., "epoch", "step"} every `eval_every`
steps, and a final {"train_loss", "train_runtime", ...} summary.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Curve = Callable[[np.ndarray], np.ndarray]


def hf_log_history(train: list[tuple[int, float]], val: list[tuple[int, float]],
                   steps_per_epoch: float = 80) -> list[dict]:
    history: list[dict] = []
    val_at = dict(val)
    train_at = dict(train)
    steps = sorted(set(train_at) | set(val_at))
    for step in steps:
        epoch = step / steps_per_epoch
        if step in train_at:
            history.append({"loss": train_at[step], "grad_norm": 1.3, "learning_rate": 2e-4,
                            "epoch": epoch, "step": step})
        if step in val_at:
            history.append({"eval_loss": val_at[step], "eval_runtime": 2.1, "eval_samples_per_second": 30.4,
                            "eval_steps_per_second": 3.8, "epoch": epoch, "step": step})
    if train:
        history.append({"train_runtime": 300.0, "train_samples_per_second": 6.4, "train_steps_per_second": 0.8,
                        "total_flos": 1.0e15, "train_loss": float(np.mean([v for _, v in train])),
                        "epoch": steps[-1] / steps_per_epoch, "step": steps[-1]})
    return history


def run(train: Curve, val: Curve, total_steps: int = 400, log_every: int = 5, eval_every: int = 20,
        train_noise: float = 0.0, val_noise: float = 0.0, seed: int = 0, stop_at: int | None = None,
        steps_per_epoch: float | None = None) -> list[dict]:
    """A run of `total_steps` planned steps (stopped early at `stop_at`); noise is relative, per logged value."""
    rng = np.random.default_rng(seed)
    last = stop_at or total_steps
    train_steps = np.arange(log_every, last + 1, log_every)
    eval_steps = np.arange(eval_every, last + 1, eval_every)
    train_loss = train(train_steps / total_steps) * (1 + train_noise * rng.standard_normal(len(train_steps)))
    val_loss = val(eval_steps / total_steps) * (1 + val_noise * rng.standard_normal(len(eval_steps)))
    return hf_log_history(list(zip(train_steps.tolist(), train_loss.tolist(), strict=True)),
                          list(zip(eval_steps.tolist(), val_loss.tolist(), strict=True)),
                          steps_per_epoch or total_steps / 2)


def decay(start: float, end: float, rate: float = 4.0) -> Curve:
    """An exponential approach from `start` to `end`: how a healthy loss curve flattens."""
    return lambda t: end + (start - end) * (np.exp(-rate * t) - np.exp(-rate)) / (1 - np.exp(-rate))


def u_shape(minimum: float, at: float, fall: float, rise: float) -> Curve:
    """Falls by `fall` to `minimum` at progress `at`, then climbs by `rise` by the end: overfitting's val curve."""
    return lambda t: minimum + np.where(t < at, fall * (np.maximum(at - t, 0) / at) ** 2, rise * (np.maximum(t - at, 0) / (1 - at)) ** 1.3)


def failed_v1_run(train_noise: float = 0.0, seed: int = 0, eval_every: int = 20) -> list[dict]:
    """The run the standard was written after: 3 epochs on 638 rows (batch 8: 80 steps an epoch), training
    loss 2.847 -> 0.254, validation loss bottoming out near the end of epoch 1 and climbing after it."""
    return run(decay(2.847, 0.254, 3.5), u_shape(1.95, 1 / 3, 0.35, 0.55), total_steps=240,
               eval_every=eval_every, train_noise=train_noise, seed=seed, steps_per_epoch=80)
