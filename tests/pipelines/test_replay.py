"""Every fault of the failed v1 run, replayed alone on the v1 data (configs/v1-scenarios.yaml), is stopped by
its own gate, for the reason that fault gives, and nothing is registered."""

from __future__ import annotations

import pytest

from pipelines.replay import load_scenarios, run_scenario, table

BASE, SCENARIOS = load_scenarios("configs/v1-scenarios.yaml")
# No training: the policy stops one before any compute, gate 0 the other right after clean.
QUICK = {"contaminated-data", "no-validation-split"}


PARAMS = [pytest.param(s, id=s.name, marks=() if s.name in QUICK else (pytest.mark.slow,)) for s in SCENARIOS]


@pytest.mark.parametrize("scenario", PARAMS)
def test_each_v1_fault_is_caught_by_its_gate_and_nothing_is_registered(scenario, tmp_path, demo_base, local_mlflow):
    outcome = run_scenario(BASE, scenario, tmp_path, extra=[f"train.base_model={demo_base}"])
    assert outcome.stopped_at == scenario.caught_by, "\n".join(table([outcome]))
    assert scenario.reason_contains in outcome.reason
    assert outcome.registered is None and outcome.caught
    assert not (tmp_path / scenario.name / "register").exists()


def test_every_fault_the_v1_story_names_has_a_scenario():
    assert {s.caught_by for s in SCENARIOS} >= {"0", "policy", "A", "B", "D"}
