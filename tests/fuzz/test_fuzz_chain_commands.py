"""Garbage through the commands around the stages (register, promote, run, compile): run directories with
broken reports, garbage configs and overrides. `run` only ever meets too few rows for gate 0, so it stops at
clean; register and promote keep their MLflow store inside the output folder."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.garbage import JSON_VALUES, SETS, alpaca_rows, config_yaml, dumps, jsonl
from tests.fuzz.sandbox import Sandbox

FEW = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
STAGES = ["clean", "split", "train", "hf_check", "gguf", "evaluate"]


def tracking(box: Sandbox) -> list[str]:
    return ["--set", f"register.local_tracking_uri=sqlite:///{box.out}/mlflow.db",
            "--set", f"register.local_artifact_location={box.out}/mlartifacts"]


@st.composite
def run_dir(draw) -> dict[str, bytes]:
    """<stage>/report.json files: passed or failed reports, garbage JSON, hostile bytes; maybe a trainer state."""
    report = st.one_of(st.builds(lambda stage, ok: dumps({"stage": stage, "passed": ok, "reasons": [], "metrics": {}}),
                                 st.sampled_from(STAGES), st.booleans()),
                       JSON_VALUES.map(dumps), st.binary(max_size=40), st.just(b"[" * 3000 + b"]" * 3000))
    files = {f"{stage}/report.json": draw(report) for stage in draw(st.lists(st.sampled_from(STAGES), unique=True))}
    if draw(st.booleans()):
        files["train/trainer_state.json"] = draw(st.one_of(JSON_VALUES.map(lambda v: dumps({"log_history": v})),
                                                           st.binary(max_size=30)))
    return files


@FEW
@given(files=run_dir(), sets=SETS)
def test_register_on_garbage_run_dirs(files, sets):
    with Sandbox() as box:
        for rel, data in files.items():
            box.write(f"run/{rel}", data)
        (box.inputs / "run").mkdir(exist_ok=True)
        box.run("register", "--run-dir", box.inputs / "run", "--output-dir", box.out / "register",
                "--set", "register.log_refused_runs=false", *tracking(box), *sets)


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(model=st.one_of(st.just("finegate"), st.text(max_size=12)), version=st.one_of(st.none(), st.text(max_size=6)),
       reason=st.text(max_size=20), sets=SETS)
def test_promote_with_garbage_arguments(model, version, reason, sets):
    with Sandbox() as box:
        box.run("promote", "--model", model, *(["--version", version] if version is not None else []),
                "--reason", reason, *tracking(box), *sets)


@FEW
@given(data=jsonl(alpaca_rows, max_rows=10), config=st.one_of(st.none(), config_yaml()), sets=SETS)
def test_run_stops_at_gate_0_or_refuses_garbage(data, config, sets):
    with Sandbox() as box:
        raw = box.write("raw.jsonl", data)
        args = ["--config", box.write("run.yaml", config)] if config is not None else []
        result = box.run("run", "--output-dir", box.out, "--set", f"data.input={raw}", "--set", "clean.write_chart=false",
                         *args, *sets)
        assert not (box.out / "train").exists(), result.stderr  # never past gate 0 with under 300 rows


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(config=st.one_of(st.none(), config_yaml()), sets=SETS)
def test_compile_with_garbage_configs(config, sets):
    with Sandbox() as box:
        args = ["--config", box.write("run.yaml", config)] if config is not None else []
        box.run("compile", "--output", box.out / "pipeline.yaml", *args, *sets)
