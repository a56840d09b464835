"""split.ratios: the shapes accepted and the ones rejected with a message that says why."""

from __future__ import annotations

import pytest

from components.common.config import load_config
from components.common.errors import ConfigError


@pytest.mark.parametrize("given, expected", [
    ("80/10/10", (0.8, 0.1, 0.1)),
    ("70/15/15", (0.7, 0.15, 0.15)),
    ("[70, 15, 15]", (0.7, 0.15, 0.15)),
    ("80/20", (0.8, 0.2, 0.0)),
    ("[0.8, 0.2]", (0.8, 0.2, 0.0)),
    ("[0.6, 0.2, 0.2]", (0.6, 0.2, 0.2)),
])
def test_accepted_ratio_shapes_become_three_fractions(given, expected):
    ratios = load_config(None, [f"split.ratios={given}"]).split.ratios
    assert ratios == pytest.approx(expected)


def test_ratios_in_a_yaml_file_accept_two_values(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("split:\n  ratios: [0.8, 0.2]\n")
    assert load_config(path).split.ratios == (0.8, 0.2, 0.0)


@pytest.mark.parametrize("given, message", [
    ("[0.7, 0.1, 0.1, 0.1]", "give 2 (train/val) or 3 (train/val/test) ratios, got 4"),
    ("[0.8, 0.1, 0.05]", "must be non-negative and sum to 1 (or 100)"),
    ("[0.9, -0.1, 0.2]", "must be non-negative"),
    ("[0.0, 0.9, 0.1]", "the train ratio must be > 0"),
    ("[1.0]", "got 1"),
    ("eighty/twenty", "ratios as text look like '80/10/10' or '80/20'"),
])
def test_other_ratio_shapes_are_rejected_with_the_reason(given, message):
    with pytest.raises(ConfigError, match="split.ratios") as err:
        load_config(None, [f"split.ratios={given}"])
    assert message in str(err.value)
