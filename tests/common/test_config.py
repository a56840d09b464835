from pathlib import Path

import pytest

from components.common.config import RunConfig, dump_config, load_config, loosened_thresholds
from components.common.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    if "scenarios:" in path.read_text(encoding="utf-8"):  # a replay file: each scenario is a run config
        from pipelines.replay import load_scenarios

        base, scenarios = load_scenarios(path)
        assert scenarios and all(isinstance(load_config(base, s.overrides), RunConfig) for s in scenarios)
        return
    assert isinstance(load_config(path), RunConfig)


def test_dotted_override_keeps_yaml_types(tmp_path):
    cfg = load_config(None, ["split.seed=7", "train.lora.use_rslora=false", "gguf.ladder=[Q8_0, Q4_K_M]"])
    assert cfg.split.seed == 7
    assert cfg.train.lora.use_rslora is False
    assert cfg.gguf.ladder == ["Q8_0", "Q4_K_M"]


def test_override_wins_over_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("split:\n  seed: 1\n")
    assert load_config(f, ["split.seed=2"]).split.seed == 2


def test_unknown_key_in_file_is_named_with_its_path(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lora:\n    rnak: 16\n")
    with pytest.raises(ConfigError, match=r"train\.lora\.rnak: unknown key"):
        load_config(f)


def test_unknown_key_in_override_is_named():
    with pytest.raises(ConfigError, match=r"split\.sede: unknown key"):
        load_config(None, ["split.sede=3"])


def test_wrong_type_is_reported_with_path():
    with pytest.raises(ConfigError, match=r"train\.lora\.rank"):
        load_config(None, ["train.lora.rank=sixteen"])


def test_override_without_equals_is_rejected():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["split.seed"])


def test_missing_file_and_bad_yaml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("split: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)


def test_dump_round_trips():
    cfg = load_config(None, ["split.seed=9"])
    assert RunConfig.model_validate(dump_config(cfg)) == cfg


def test_a_nan_or_infinite_value_anywhere_is_refused():
    for override in ("gates.max_degenerate_rate=.nan", "split.ratios=[.nan,.5,.5]", "gates.max_val_loss=.inf",
                     "train.learning_rate=-.inf", "evaluate.min_gain=1e400"):
        with pytest.raises(ConfigError, match="finite number"):
            load_config(None, [override])


def test_a_threshold_looser_than_production_needs_a_written_reason():
    with pytest.raises(ConfigError, match=r"looser than the production default without a reason: gates.max_val_loss=6"):
        load_config(None, ["gates.max_val_loss=6"])
    cfg = load_config(None, ["gates.max_val_loss=6", "gates.loosened.gates.max_val_loss=a tiny demo model"])
    assert loosened_thresholds(cfg) == {"gates.max_val_loss": {"value": 6.0, "default": 2.5,
                                                               "reason": "a tiny demo model"}}
    # Stricter than production needs no reason, and a reason left over for it marks nothing.
    assert loosened_thresholds(load_config(None, ["gates.max_val_loss=1.5"])) == {}
    assert loosened_thresholds(load_config(None, ["gates.loosened.gates.min_chrf=why"])) == {}
    with pytest.raises(ConfigError, match="not gate thresholds"):
        load_config(None, ["gates.loosened.train.seed=why"])


def test_switching_a_rule_off_or_dropping_a_baseline_counts_as_loosening():
    with pytest.raises(ConfigError, match="gates.fail_on_overfit=False"):
        load_config(None, ["gates.fail_on_overfit=false"])
    with pytest.raises(ConfigError, match=r"evaluate.must_beat=\['base'\]"):
        load_config(None, ["evaluate.must_beat=[base]"])
