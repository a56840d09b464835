"""Garbage through the data stages and the small commands (clean, split, check-outputs, check-overfit): the
contract of tests/fuzz/sandbox.py, and for clean and split every input row accounted for."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.stage_outputs import write_stage_output
from tests.fuzz.garbage import JSON_VALUES, SETS, TEXT, alpaca_rows, config_yaml, jsonl, kept_rows
from tests.fuzz.sandbox import Sandbox

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
QUICK_CLEAN = ["--set", "clean.write_chart=false", "--set", "clean.workers=1", "--set", "clean.progress_every=0"]


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []


def physical_lines(data: bytes) -> int:
    return len(data.split(b"\n")) - (1 if data.endswith(b"\n") or not data else 0)


@FUZZ
@given(data=jsonl(alpaca_rows, max_rows=15), sets=SETS, min_samples=st.integers(1, 5))
def test_clean_accounts_for_every_jsonl_row(data, sets, min_samples):
    with Sandbox() as box:
        raw = box.write("raw.jsonl", data)
        result = box.run("clean", "--input", raw, "--output-dir", box.out, *QUICK_CLEAN,
                         "--set", f"data.min_samples={min_samples}", "--set", "gates.loosened.data.min_samples=fuzz", *sets)
        if result.code in (0, 1):
            kept, rejected = read_lines(box.out / "kept.jsonl"), read_lines(box.out / "rejected.jsonl")
            assert sorted(r["source_line"] for r in kept + rejected) == list(range(1, physical_lines(data) + 1))


@FUZZ
@given(cells=st.lists(st.tuples(TEXT, TEXT, st.one_of(TEXT, st.none())), max_size=10), cut=st.integers(0, 400),
       mode=st.sampled_from(["whole", "truncated", "flipped"]))
def test_clean_on_garbage_parquet(cells, cut, mode):
    buf = io.BytesIO()
    table = pa.table({"instruction": [c[0] for c in cells], "input": [c[1] for c in cells], "output": [c[2] for c in cells]})
    pq.write_table(table, buf)
    data = bytearray(buf.getvalue())
    if mode == "truncated":
        data = data[: cut % max(1, len(data))]
    elif mode == "flipped" and len(data) > 12:
        data[4 + cut % (len(data) - 12)] ^= 0xFF
    with Sandbox() as box:
        raw = box.write("raw.parquet", bytes(data))
        result = box.run("clean", "--input", raw, "--output-dir", box.out, *QUICK_CLEAN, "--set", "data.min_samples=1",
                         "--set", "gates.loosened.data.min_samples=fuzz")
        if result.code in (0, 1):
            report = json.loads((box.out / "report.json").read_text(encoding="utf-8"))
            kept, rejected = read_lines(box.out / "kept.jsonl"), read_lines(box.out / "rejected.jsonl")
            assert report["metrics"]["rows_in"] == len(kept) + len(rejected) == len(cells)


@FUZZ
@given(data=st.binary(max_size=200), name=st.sampled_from(["raw.csv", "raw.tsv", "raw.json", "raw", "raw.txt"]))
def test_clean_on_garbage_bytes_of_any_format(data, name):
    with Sandbox() as box:
        box.run("clean", "--input", box.write(name, data), "--output-dir", box.out, *QUICK_CLEAN)


@FUZZ
@given(data=jsonl(kept_rows, max_rows=40), sets=SETS,
       ratios=st.sampled_from(["34/33/33", "50/50", "60/20/20"]))
def test_split_puts_every_kept_row_in_one_split(data, sets, ratios):
    with Sandbox() as box:
        # A clean output as clean writes it (report and manifest), so split gets past the protocol to the rows.
        kept = write_stage_output(box.inputs / "clean", "clean", {"kept.jsonl": data}) / "kept.jsonl"
        result = box.run("split", "--input", kept, "--output-dir", box.out, "--set", f"split.ratios={ratios}",
                         "--set", "split.min_train=1", "--set", "split.min_val=1", "--set", "split.min_test=1", *sets)
        if result.code in (0, 1):
            placed = sum(len(read_lines(box.out / f"{name}.jsonl")) for name in ("train", "val", "test"))
            assert placed == len([line for line in data.splitlines() if line.strip()])


@FUZZ
@given(data=jsonl(lambda i: st.fixed_dictionaries({"output": st.one_of(TEXT, st.none())},
                                                  optional={"prompt": TEXT, "reference": TEXT, "finished": st.booleans()})),
       sets=SETS)
def test_check_outputs_on_garbage_rows(data, sets):
    with Sandbox() as box:
        box.run("check-outputs", "--input", box.write("outputs.jsonl", data), "--output", box.out / "flagged.jsonl", *sets)


def log_history() -> st.SearchStrategy:
    entry = st.fixed_dictionaries({"step": st.one_of(st.integers(0, 200), JSON_VALUES)},
                                  optional={"loss": JSON_VALUES, "eval_loss": st.floats(), "epoch": st.floats(0, 5)})
    good = st.builds(lambda n: [{"step": s, "loss": 2 - s / 100, "eval_loss": 2 - s / 150 + (s > 60) * s / 200,
                                 "epoch": s / 40} for s in range(10, 10 * n, 10)], st.integers(1, 15))
    return st.one_of(good, st.lists(entry, max_size=12), JSON_VALUES)


@FUZZ
@given(history=log_history(), raw=st.one_of(st.none(), st.binary(max_size=80), st.sampled_from(
    [b'{"log_history": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"log_history": [{"step": 1, "loss": ' + b"9" * 401 + b"}]}"])),
    plot=st.booleans(), sets=SETS)
def test_check_overfit_on_garbage_trainer_states(history, raw, plot, sets):
    with Sandbox() as box:
        state = box.write("trainer_state.json", raw if raw is not None else json.dumps({"log_history": history}))
        box.run("check-overfit", state, *(["--plot", box.out / "loss.png"] if plot else []), *sets)


@FUZZ
@given(config=config_yaml(), sets=SETS,
       command=st.sampled_from(["clean", "split", "check-outputs", "check-overfit"]))
def test_garbage_configs_and_overrides(config, sets, command):
    with Sandbox() as box:
        rows = box.write("rows.jsonl", b'{"output": "x", "id": "a", "source_line": 1, "prompt": "p", "completion": "c"}\n')
        args = {"clean": ["--input", rows, "--output-dir", box.out, *QUICK_CLEAN],
                "split": ["--input", rows, "--output-dir", box.out],
                "check-outputs": ["--input", rows, "--output", box.out / "o.jsonl"],
                "check-overfit": [rows]}[command]
        box.run(command, *args, "--config", box.write("run.yaml", config), *sets)
