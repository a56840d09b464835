from pathlib import Path

import pytest

from components.common.config import RunConfig, dump_config, load_config
from components.common.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    assert isinstance(load_config(path), RunConfig)


def test_dotted_override_keeps_yaml_types(tmp_path):
    cfg = load_config(None, ["split.seed=7", "train.lora.use_rslora=false", "gguf.quant_types=[Q8_0, Q4_K_M]"])
    assert cfg.split.seed == 7
    assert cfg.train.lora.use_rslora is False
    assert cfg.gguf.quant_types == ["Q8_0", "Q4_K_M"]


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
