"""loss_curve.png shows what the overfitting detector judged: its smoothed curves, the best step, the
early stop, and the verdict in the title."""

from __future__ import annotations

import numpy as np
from matplotlib.image import imread

from components.train.loss_curve import build_loss_figure, plot_loss_curves
from components.train.overfit import detect_overfitting, loss_curves
from tests.train.histories import decay, failed_v1_run, hf_log_history, run


def line(fig, label_start: str):
    ax = fig.axes[0]
    matches = [ln for ln in ax.lines if ln.get_label().startswith(label_start)]
    assert len(matches) == 1, [ln.get_label() for ln in ax.lines]
    return matches[0]


def test_plot_draws_the_detectors_aligned_and_smoothed_curves():
    history = failed_v1_run(train_noise=0.2)
    curves = loss_curves(history)

    fig = build_loss_figure(history)

    val = line(fig, "validation loss, smoothed over")
    train = line(fig, "train loss, smoothed over")
    assert np.allclose(val.get_xdata(), curves.eval_x) and np.allclose(val.get_ydata(), curves.val_smooth)
    assert np.allclose(train.get_ydata(), curves.train_smooth)


def test_raw_losses_are_drawn_thinner_and_fainter_than_the_smoothed_ones():
    fig = build_loss_figure(failed_v1_run(train_noise=0.2))

    raw, smoothed = line(fig, "train loss (logged)"), line(fig, "train loss, smoothed over")
    assert len(raw.get_xdata()) == 48  # every logged value, 3 epochs of 80 steps logged every 5
    assert raw.get_linewidth() < smoothed.get_linewidth()
    assert raw.get_alpha() < 0.5 and smoothed.get_alpha() in (None, 1)
    assert line(fig, "validation loss (evaluated)").get_alpha() < 0.5


def test_title_carries_the_verdict_and_the_signals_that_fired():
    overfit = build_loss_figure(failed_v1_run()).get_suptitle()
    healthy = build_loss_figure(run(decay(2.5, 1.2), decay(2.6, 1.45))).get_suptitle()

    assert overfit.startswith("Overfitting check: OVERFIT")
    assert "val rising while train falls" in overfit and "train under the floor, val high" in overfit
    assert healthy == "Overfitting check: ok"


def test_best_step_and_early_stop_are_marked():
    history = failed_v1_run()

    fig = build_loss_figure(history, best_step=80, early_stop_step=200)

    best = line(fig, "best: step 80")
    assert list(best.get_xdata()) == [80] and best.get_ydata()[0] == min(e["eval_loss"] for e in history if "eval_loss" in e)
    stop = line(fig, "early stop at step 200")
    assert list(stop.get_xdata()) == [200, 200]


def test_best_step_defaults_to_the_verdicts():
    history = failed_v1_run()
    verdict = detect_overfitting(history)

    fig = build_loss_figure(history, verdict)

    assert list(line(fig, "best:").get_xdata()) == [verdict.metrics["best_step"]]


def test_evaluations_left_out_for_early_stopping_are_shaded():
    val = [2.4, 2.1, 1.9, 1.78, 1.7, 1.65, 1.62, 1.6, 1.59, 1.61, 1.63, 1.655]
    train = [(s, 1.1 + 1.3 * np.exp(-3 * s / 240)) for s in range(5, 241, 5)]
    history = hf_log_history(train, [(20 * (i + 1), v) for i, v in enumerate(val)])

    fig = build_loss_figure(history, early_stop_step=240)

    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "left out: the evaluations early stopping needs" in labels
    assert fig.get_suptitle() == "Overfitting check: ok (early stopping caught the rise)"


def test_epochs_are_shown_on_the_top_axis_with_their_boundaries():
    fig = build_loss_figure(failed_v1_run())  # 80 steps an epoch

    boundaries = [ln.get_xdata()[0] for ln in fig.axes[0].lines if ln.get_label().startswith("_") and ln.get_color() == "#bbbbbb"]
    assert np.allclose(sorted(boundaries), [80, 160])
    assert any(getattr(child, "get_xlabel", lambda: "")() == "epoch" for child in fig.axes[0].child_axes)


def test_png_is_written_and_reads_back(tmp_path):
    out = tmp_path / "train" / "loss_curve.png"

    returned = plot_loss_curves(failed_v1_run(), out, early_stop_step=240)

    assert returned == out
    image = imread(out)
    assert image.shape[0] > 500 and image.shape[1] > 1000
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_history_without_evaluations_still_draws_the_training_loss(tmp_path):
    history = hf_log_history([(s, 2.0 - s / 100) for s in range(10, 101, 10)], [])

    fig = build_loss_figure(history)
    plot_loss_curves(history, tmp_path / "curve.png")

    assert [ln.get_label() for ln in fig.axes[0].lines if not ln.get_label().startswith("_")] == ["train loss (logged)"]
    assert fig.get_suptitle() == "Overfitting check: ok (not enough points to judge)"
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_empty_history_draws_a_figure_that_says_so(tmp_path):
    fig = build_loss_figure([])
    plot_loss_curves([], tmp_path / "empty.png")

    assert [t.get_text() for t in fig.axes[0].texts] == ["no loss values in the log history"]
    assert (tmp_path / "empty.png").stat().st_size > 0
