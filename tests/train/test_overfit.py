"""The overfitting verdict on hand-made loss histories: each signal, the failed v1 run, and the healthy
shapes that must not be called overfitting (noisy, plateau, early-stopped)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from components.common.config import load_config
from components.common.errors import InputError
from components.train.overfit import (
    detect_overfitting,
    early_stop_step,
    load_log_history,
    load_trainer_state,
    loss_curves,
)
from components.train.settings import OverfitSection
from tests.train.histories import decay, failed_v1_run, hf_log_history, run, u_shape


def fired(verdict) -> set[str]:
    return {k.removeprefix("signal_") for k, v in verdict.metrics.items() if k.startswith("signal_") and v}


def linear(start: float, end: float):
    return lambda t: start + (end - start) * t


# --- the failed run and each signal -------------------------------------------------------------------


def test_failed_v1_run_is_overfit_with_its_val_minimum_as_best_step():
    verdict = detect_overfitting(failed_v1_run())

    assert verdict.verdict == "overfit"
    assert {"val_rising", "low_train_high_val"} <= fired(verdict)
    assert verdict.metrics["best_step"] == 80  # end of epoch 1
    assert verdict.metrics["best_val_loss"] == pytest.approx(1.95, abs=0.01)
    assert verdict.metrics["final_train_loss"] < 0.3
    assert verdict.metrics["val_rise_rel"] > 0.2
    assert verdict.metrics["gap_at_end"] > 2 * verdict.metrics["gap_at_best"]
    assert any("memorization rule" in r for r in verdict.reasons)


@pytest.mark.parametrize("seed", range(5))
def test_failed_v1_run_with_noisy_training_loss_is_overfit(seed):
    assert detect_overfitting(failed_v1_run(train_noise=0.2, seed=seed)).verdict == "overfit"


def test_failed_v1_run_evaluated_once_per_epoch_is_overfit():
    verdict = detect_overfitting(failed_v1_run(eval_every=80))

    assert verdict.metrics["eval_points"] == 3
    assert verdict.verdict == "overfit"
    assert "val_rising" in fired(verdict)


def test_val_rise_while_train_falls_is_overfit_at_any_loss_scale():
    """The same shape at a big model's loss (~1.2) and a tiny model's (~5): the same verdict and signals."""
    def shape(scale):
        return run(lambda t: scale * decay(2.0, 1.0, 3)(t), lambda t: scale * u_shape(1.25, 0.5, 0.6, 0.15)(t))

    big, tiny = detect_overfitting(shape(1.0)), detect_overfitting(shape(4.0))

    assert big.verdict == tiny.verdict == "overfit"
    assert fired(big) == fired(tiny) >= {"val_rising"}
    assert "low_train_high_val" not in fired(big)
    assert big.metrics["val_rise_rel"] == pytest.approx(tiny.metrics["val_rise_rel"])
    assert big.metrics["val_rise_rel"] > 0.05


def test_train_under_the_floor_with_high_val_is_overfit_without_any_val_rise():
    history = run(decay(1.8, 0.2, 5), decay(2.0, 0.9, 5))

    verdict = detect_overfitting(history)

    assert verdict.verdict == "overfit"
    assert fired(verdict) == {"low_train_high_val"}
    assert verdict.metrics["val_rise_rel"] == pytest.approx(0.0, abs=1e-3)


def test_train_plunging_while_val_stays_flat_is_overfit_through_gap_and_correlation():
    flat_after_half = lambda t: 1.5 + 0.5 * np.maximum(0.5 - t, 0) ** 2  # noqa: E731
    history = run(lambda t: np.where(t < 0.5, 2.0 - 1.6 * t, 1.2 - 1.2 * (t - 0.5)), flat_after_half)

    verdict = detect_overfitting(history)

    assert verdict.verdict == "overfit"
    assert fired(verdict) == {"gap_widening", "weak_correlation"}
    assert verdict.metrics["gap_growth_rel"] > 0.15


def test_gap_widening_alone_is_not_overfitting_when_val_still_follows_train():
    history = run(linear(2.2, 0.6), linear(2.1, 1.8))

    verdict = detect_overfitting(history)

    assert fired(verdict) == {"gap_widening"}
    assert verdict.metrics["tail_correlation"] > 0.9
    assert verdict.verdict == "ok"


# --- healthy shapes ----------------------------------------------------------------------------------


def test_healthy_decreasing_run_is_ok():
    verdict = detect_overfitting(run(decay(2.5, 1.2), decay(2.6, 1.45)))

    assert verdict.verdict == "ok"
    assert fired(verdict) == set()
    assert verdict.metrics["best_step"] == 400
    assert verdict.metrics["correlation"] > 0.95
    assert verdict.reasons == ["no overfitting signal: validation loss follows training loss"]


@pytest.mark.parametrize("seed", range(20))
def test_noisy_healthy_run_is_ok(seed):
    history = run(decay(2.5, 1.2), decay(2.6, 1.45), train_noise=0.15, val_noise=0.01, seed=seed)

    assert detect_overfitting(history).verdict == "ok"


@pytest.mark.parametrize("seed", range(20))
def test_noisy_overfitting_run_is_overfit(seed):
    history = run(decay(2.0, 0.8, 3), u_shape(1.5, 0.5, 0.6, 0.15), train_noise=0.15, val_noise=0.01, seed=seed)

    assert detect_overfitting(history).verdict == "overfit"


@pytest.mark.parametrize("seed", range(10))
def test_plateau_is_not_overfitting(seed):
    history = run(decay(2.5, 1.35, 8), decay(2.6, 1.5, 8), train_noise=0.15, val_noise=0.015, seed=seed)

    verdict = detect_overfitting(history)

    assert verdict.verdict == "ok"
    assert "val_rising" not in fired(verdict)


def test_tiny_model_at_loss_five_is_judged_like_a_big_one_at_loss_one():
    big = detect_overfitting(run(decay(1.5, 1.0, 3), decay(1.6, 1.2, 3), train_noise=0.1, val_noise=0.01))
    tiny = detect_overfitting(run(decay(6.2, 4.2, 3), decay(6.4, 5.0, 3), train_noise=0.1, val_noise=0.01))

    assert big.verdict == tiny.verdict == "ok"


# --- early stopping ----------------------------------------------------------------------------------

EARLY_STOP_TRAIN = decay(2.4, 1.1, 3)
VAL_DOWN_TO_MIN = [2.4, 2.1, 1.9, 1.78, 1.7, 1.65, 1.62, 1.6, 1.59]


def early_stopped(val_after_min: list[float]) -> list[dict]:
    val = VAL_DOWN_TO_MIN + val_after_min
    train_steps = range(5, 20 * len(val) + 1, 5)
    train = [(s, float(EARLY_STOP_TRAIN(np.array(s / 400)))) for s in train_steps]
    return hf_log_history(train, [(20 * (i + 1), v) for i, v in enumerate(val)])


def test_early_stop_right_after_the_minimum_is_ok_and_still_reports_the_rise():
    verdict = detect_overfitting(early_stopped([1.61, 1.63, 1.655]))

    assert verdict.verdict == "ok"
    assert verdict.metrics["early_stop_grace"] is True
    assert verdict.metrics["best_step"] == 180
    assert verdict.metrics["val_rise_rel"] > 0.02
    assert verdict.metrics["judged_until_step"] < 240
    assert "early stopping" in verdict.reasons[0]


def test_steep_rise_before_early_stopping_fires_is_overfit():
    verdict = detect_overfitting(early_stopped([1.68, 1.8, 1.9]))

    assert verdict.verdict == "overfit"
    assert verdict.metrics["early_stop_grace"] is False
    assert "val_rising" in fired(verdict)


def test_rise_lasting_longer_than_early_stopping_patience_is_overfit():
    verdict = detect_overfitting(early_stopped([1.6, 1.61, 1.62, 1.635, 1.65, 1.665, 1.68]))

    assert verdict.verdict == "overfit"
    assert verdict.metrics["evals_rising"] > OverfitSection().grace_evals


def test_val_that_never_improves_is_overfit_not_early_stopping():
    history = hf_log_history([(s, 2.0 - s / 200) for s in range(10, 201, 10)],
                             [(50, 1.50), (100, 1.55), (150, 1.62), (200, 1.70)])

    verdict = detect_overfitting(history)

    assert verdict.verdict == "overfit"
    assert verdict.metrics["early_stop_grace"] is False


def test_val_rising_with_train_rising_is_instability_not_overfitting():
    verdict = detect_overfitting(run(linear(1.5, 1.9), linear(1.6, 2.0)))

    assert verdict.verdict == "ok"
    assert "val_rising" not in fired(verdict)


# --- what a history may look like --------------------------------------------------------------------


@pytest.mark.parametrize("evals", [0, 1, 2])
def test_too_few_evaluations_is_ok_with_a_note(evals):
    history = hf_log_history([(s, 2.0 - s / 100) for s in range(10, 101, 10)], [(100 * (i + 1), 1.5) for i in range(evals)])

    verdict = detect_overfitting(history)

    assert verdict.verdict == "ok"
    assert "not enough evaluation points to judge" in verdict.metrics["note"]
    assert verdict.reasons == [verdict.metrics["note"]]


def test_history_without_training_loss_is_ok_with_a_note():
    history = [{"eval_loss": v, "epoch": i, "step": 10 * i} for i, v in enumerate([2.0, 1.8, 1.9, 2.2], 1)]

    verdict = detect_overfitting(history)

    assert verdict.verdict == "ok"
    assert "no 'loss' entries" in verdict.metrics["note"]


def test_nan_missing_and_non_numeric_values_are_skipped():
    clean = failed_v1_run()
    dirty = [dict(e) for e in clean]
    dirty.insert(3, {"loss": float("nan"), "epoch": 0.2, "step": 16})
    dirty.insert(7, {"eval_loss": None, "epoch": 0.3, "step": 21})
    dirty.insert(9, {"loss": "n/a", "step": 22})
    dirty.insert(11, {"eval_loss": float("inf"), "step": 23})
    dirty.append({"eval_loss": True, "step": 999})

    a, b = detect_overfitting(clean), detect_overfitting(dirty)

    assert b.metrics == a.metrics
    assert b.verdict == "overfit"


def test_summary_train_loss_entry_is_not_a_training_point():
    history = failed_v1_run()
    logged = sum("loss" in e for e in history)

    verdict = detect_overfitting(history)

    assert history[-1]["train_loss"] > 0
    assert verdict.metrics["train_points"] == logged
    assert verdict.metrics["last_train_loss"] == pytest.approx(0.254)


def test_history_without_steps_is_read_by_epoch():
    history = [{k: v for k, v in e.items() if k != "step"} for e in failed_v1_run()]

    verdict = detect_overfitting(history)

    assert verdict.metrics["x_axis"] == "epoch"
    assert verdict.metrics["best_step"] == 1  # epoch 1
    assert verdict.verdict == "overfit"


def test_history_without_steps_or_epochs_is_read_in_logged_order():
    history = [{k: v for k, v in e.items() if k not in ("step", "epoch")} for e in failed_v1_run()]

    verdict = detect_overfitting(history)

    assert verdict.metrics["x_axis"] == "log entry"
    assert verdict.verdict == "overfit"


def test_resumed_run_that_logs_a_step_twice_keeps_the_later_value():
    history = hf_log_history([(s, 2.0 - s / 200) for s in range(10, 201, 10)],
                             [(40, 1.9), (80, 1.7), (120, 1.6), (160, 1.55), (200, 1.5)])
    died = history.index({"eval_loss": 1.7, "eval_runtime": 2.1, "eval_samples_per_second": 30.4,
                          "eval_steps_per_second": 3.8, "epoch": 1.0, "step": 80})
    history.insert(died, {"eval_loss": 9.9, "epoch": 1.0, "step": 80})  # logged by the run that died, then redone

    curves = loss_curves(history)

    assert list(curves.eval_x) == [40, 80, 120, 160, 200]
    assert curves.val_loss[1] == 1.7


@pytest.mark.parametrize("log_every", [1, 10, 40])
def test_train_loss_is_aligned_to_evaluations_at_any_logging_frequency(log_every):
    """Logged every step, every 10, or less often than evaluations (every 40 vs every 20): the train
    loss at each evaluation is the same curve, averaged or interpolated."""
    history = run(decay(2.5, 1.0, 3), u_shape(1.4, 0.5, 0.8, 0.2), log_every=log_every)

    curves = loss_curves(history)
    verdict = detect_overfitting(history)

    logged_from = curves.eval_x >= curves.train_x[0]  # before the first log there is nothing to interpolate
    expected = decay(2.5, 1.0, 3)(curves.eval_x / 400)
    assert np.allclose(curves.train_at_eval[logged_from], expected[logged_from], rtol=0.05)
    assert verdict.verdict == "overfit"


def test_uneven_evaluation_spacing_is_judged_on_steps():
    train = [(s, float(decay(2.6, 0.9, 3)(np.array(s / 300)))) for s in range(5, 301, 5)]
    val = [(10, 2.5), (25, 2.2), (50, 1.9), (100, 1.7), (150, 1.68), (200, 1.75), (300, 1.95)]

    verdict = detect_overfitting(hf_log_history(train, val))

    assert verdict.metrics["best_step"] == 150
    assert verdict.verdict == "overfit"


def test_thresholds_come_from_the_config():
    history = run(decay(1.8, 0.2, 5), decay(2.0, 0.9, 5))
    stricter_floor = load_config(overrides=["train.overfit.low_train_loss=0.15"]).train.overfit

    assert detect_overfitting(history).verdict == "overfit"
    assert detect_overfitting(history, stricter_floor).verdict == "ok"


def test_verdict_is_plain_json():
    verdict = detect_overfitting(failed_v1_run())
    data = verdict.to_dict()

    text = json.dumps(data, allow_nan=False)
    json.dumps(verdict.metrics, allow_nan=False)  # as the train stage puts them into report.json

    assert set(json.loads(text)) == {"verdict", "reasons", "metrics"}
    assert data["metrics"]["signal_val_rising"] is True
    assert all(not isinstance(v, float) or math.isfinite(v) for v in data["metrics"].values())


# --- reading trainer_state.json ----------------------------------------------------------------------


def test_load_log_history_reads_a_trainer_state_file_or_its_folder(tmp_path):
    state = {"global_step": 240, "max_steps": 240, "best_global_step": 80, "log_history": failed_v1_run()}
    (tmp_path / "trainer_state.json").write_text(json.dumps(state))

    assert load_log_history(tmp_path / "trainer_state.json") == state["log_history"]
    assert load_log_history(tmp_path) == state["log_history"]


def test_missing_trainer_state_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_log_history(tmp_path / "nope.json")


def test_broken_trainer_state_names_the_line(tmp_path):
    path = tmp_path / "trainer_state.json"
    path.write_text('{\n  "log_history": [\n    {"loss": 1.0,\n')

    with pytest.raises(InputError, match=r"trainer_state.json:\d+: invalid JSON"):
        load_log_history(path)


def test_json_without_log_history_is_an_input_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "llama"}')

    with pytest.raises(InputError, match="no 'log_history'"):
        load_log_history(path)


def test_early_stop_step_is_where_a_run_stopped_before_its_planned_steps(tmp_path):
    (tmp_path / "trainer_state.json").write_text(json.dumps({"global_step": 140, "max_steps": 400, "log_history": []}))

    assert early_stop_step(load_trainer_state(tmp_path)) == 140
    assert early_stop_step({"global_step": 400, "max_steps": 400}) is None


# --- a real Trainer's trainer_state.json, and the CLI on it ------------------------------------------


def train_regression(out_dir, n_features: int, n_train: int):
    """A real transformers Trainer run on a linear regression (noise variance 1.0): with fewer rows than
    features it memorizes its training set (train loss -> 0, val loss stuck high); with many rows it
    learns the function (both losses -> 1.0)."""
    import torch
    from transformers import Trainer, TrainingArguments

    class Regressor(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(n_features, 1)

        def forward(self, x, labels=None):
            prediction = self.linear(x).squeeze(-1)
            return {"loss": torch.nn.functional.mse_loss(prediction, labels), "logits": prediction}

    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(n_features, generator=generator) * 3 / n_features ** 0.5

    def rows(n):
        x = torch.randn(n, n_features, generator=generator)
        y = x @ weights + torch.randn(n, generator=generator)
        return [{"x": x[i], "labels": y[i]} for i in range(n)]

    args = TrainingArguments(output_dir=str(out_dir), eval_strategy="steps", eval_steps=8, logging_steps=2,
                             max_steps=160, per_device_train_batch_size=8, learning_rate=0.1 if n_train < n_features else 0.05,
                             lr_scheduler_type="constant", optim="sgd", report_to="none", save_strategy="no",
                             use_cpu=True, seed=0, disable_tqdm=True)
    trainer = Trainer(model=Regressor(), args=args, train_dataset=rows(n_train), eval_dataset=rows(256))
    trainer.train()
    trainer.save_state()
    return out_dir / "trainer_state.json"


@pytest.fixture(scope="module")
def real_states(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    return {"memorizing": train_regression(root / "memorizing", n_features=64, n_train=32),
            "healthy": train_regression(root / "healthy", n_features=16, n_train=1024)}


@pytest.mark.slow
def test_real_trainer_state_of_a_memorizing_run_is_overfit(real_states):
    history = load_log_history(real_states["memorizing"])

    verdict = detect_overfitting(history)

    assert history[-1]["train_loss"] > 0  # the Trainer's summary entry is there and ignored
    assert verdict.metrics["eval_points"] == 20 and verdict.metrics["train_points"] == 80
    assert verdict.verdict == "overfit"
    assert "low_train_high_val" in fired(verdict)


@pytest.mark.slow
def test_real_trainer_state_of_a_healthy_run_is_ok(real_states):
    verdict = detect_overfitting(load_log_history(real_states["healthy"]))

    assert verdict.verdict == "ok"
    assert verdict.metrics["final_val_loss"] < 1.3  # near the noise floor of 1.0


@pytest.fixture
def state_files(tmp_path):
    """trainer_state.json files as the train stage writes them: the failed v1 run and a healthy one."""
    files = {}
    for name, history in [("overfit", failed_v1_run()), ("healthy", run(decay(2.5, 1.2), decay(2.6, 1.45)))]:
        files[name] = tmp_path / name / "trainer_state.json"
        files[name].parent.mkdir()
        files[name].write_text(json.dumps({"global_step": 240, "max_steps": 400, "log_history": history}))
    return files


def run_cli(*argv) -> int:
    from pipelines.cli import main

    return main(["check-overfit", *map(str, argv)])


def test_cli_exits_1_with_reasons_for_an_overfit_run(state_files, capsys):
    code = run_cli(state_files["overfit"])

    out, err = capsys.readouterr()
    assert code == 1
    printed = json.loads(out)
    assert printed["verdict"] == "overfit" and printed["metrics"]["signal_low_train_high_val"] is True
    assert "memorization rule" in err


def test_cli_exits_0_for_a_healthy_run_and_draws_the_plot(state_files, tmp_path, capsys):
    png = tmp_path / "plots" / "loss_curve.png"

    code = run_cli(state_files["healthy"].parent, "--plot", png)

    assert code == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "ok"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_thresholds_are_set_from_the_command_line(state_files, capsys):
    code = run_cli(state_files["overfit"], "--set", "train.overfit.low_train_loss=0.001",
                   "--set", "train.overfit.min_val_rise=0.9", "--set", "train.overfit.min_gap_growth=0.9")

    assert code == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["signal_low_train_high_val"] is False


def test_cli_exits_2_with_one_line_for_a_missing_file(tmp_path, capsys):
    code = run_cli(tmp_path / "trainer_state.json")

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "no such file" in err


def test_cli_exits_2_for_an_unreadable_file(tmp_path, capsys):
    broken = tmp_path / "trainer_state.json"
    broken.write_text("{not json")

    assert run_cli(broken) == 2
    assert "invalid JSON" in capsys.readouterr().err
