"""Stage outputs are atomic and verified (components/common/stage_output.py): a stage never overwrites its
own input, a killed stage leaves no stale "passed" report, and a consumer refuses files that do not match
the report describing them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.common import storage
from components.common.errors import InputError, IntegrityError
from components.common.stage_output import read_output
from tests.fixtures.stage_outputs import write_stage_output

QUICK = ["--set", "clean.write_chart=false", "--set", "data.min_samples=1",
         "--set", "gates.loosened.data.min_samples=a small test input"]


def finegate(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *map(str, args)], capture_output=True, text=True,
                          **kwargs)


def big_raw_input(path: Path, rows: int) -> Path:
    from bench.clean.synthetic import generate

    generate(path, rows, seed=1)
    return path


def test_clean_refuses_an_output_dir_that_holds_its_own_input(tmp_path, sample_path):
    first = finegate("clean", "--input", sample_path, "--output-dir", tmp_path / "d", *QUICK)
    assert first.returncode == 0, first.stderr
    kept = tmp_path / "d" / "kept.jsonl"
    before = kept.read_bytes()
    again = finegate("clean", "--input", kept, "--output-dir", tmp_path / "d", *QUICK)
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert "overlaps the input" in again.stderr and "Traceback" not in again.stderr
    assert kept.read_bytes() == before  # nothing lost


def test_an_output_path_that_is_a_file_is_one_line(tmp_path, sample_path):
    (tmp_path / "taken").write_text("a file")
    result = finegate("clean", "--input", sample_path, "--output-dir", tmp_path / "taken", *QUICK)
    assert result.returncode == 2 and "is a file; the output is a directory" in result.stderr


def _kill_mid_run(args: list, staging_parent: Path, timeout: float = 300) -> None:
    """Starts a finegate command, waits until it is writing its staging directory, then kill -9."""
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while not any(p.name.startswith(".") and ".staging-" in p.name for p in staging_parent.iterdir()):
            assert proc.poll() is None, "the stage finished before it could be killed: give it more rows"
            assert time.monotonic() < deadline, "the stage never started writing"
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_clean_killed_mid_run_leaves_no_stale_passed_report_and_split_refuses_it(tmp_path):
    raw = big_raw_input(tmp_path / "raw.jsonl", 60_000)
    out = tmp_path / "clean"
    small = tmp_path / "small.jsonl"
    small.write_text("".join(raw.read_text(encoding="utf-8").splitlines(keepends=True)[:400]), encoding="utf-8")
    assert finegate("clean", "--input", small, "--output-dir", out, *QUICK).returncode in (0, 1)
    assert json.loads((out / "report.json").read_text())["stage"] == "clean"

    _kill_mid_run(["clean", "--input", raw, "--output-dir", out, *QUICK, "--set", "clean.workers=1"], tmp_path)

    assert not (out / "report.json").exists(), "the previous run's report must not vouch for a killed run"
    result = finegate("split", "--input", out / "kept.jsonl", "--output-dir", tmp_path / "split")
    assert result.returncode == 2 and "no report.json: not a finished 'clean' output" in result.stderr


@pytest.mark.slow
def test_split_killed_mid_run_leaves_no_stale_passed_report(tmp_path):
    raw = big_raw_input(tmp_path / "raw.jsonl", 40_000)
    clean = finegate("clean", "--input", raw, "--output-dir", tmp_path / "clean", *QUICK)
    assert clean.returncode in (0, 1), clean.stderr
    out = tmp_path / "split"
    write_stage_output(out, "split", {"train.jsonl": [], "val.jsonl": [], "test.jsonl": []})  # an earlier passed run

    _kill_mid_run(["split", "--input", tmp_path / "clean", "--output-dir", out], tmp_path)

    assert not (out / "report.json").exists()
    with pytest.raises(InputError, match="not a finished 'split' output"):
        read_output(out, "split", tmp_path / "cache")


def test_a_consumer_refuses_files_that_differ_from_their_report(tmp_path):
    out = write_stage_output(tmp_path / "clean", "clean", {"kept.jsonl": [{"id": 1}, {"id": 2}]})
    read_output(out, "clean", tmp_path / "cache")
    with (out / "kept.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"id": 3}\n')
    with pytest.raises(IntegrityError, match="kept.jsonl differs from the file the clean report describes"):
        read_output(out, "clean", tmp_path / "cache")


def test_a_failed_report_or_another_stage_is_refused(tmp_path):
    failed = write_stage_output(tmp_path / "f", "clean", {"kept.jsonl": []}, passed=False, reasons=["gate 0: 28%"])
    with pytest.raises(InputError, match=r"the clean stage's gate failed \(gate 0: 28%\)"):
        read_output(failed, "clean", tmp_path / "cache")
    other = write_stage_output(tmp_path / "o", "split", {"train.jsonl": []})
    with pytest.raises(InputError, match="holds the output of stage 'split', not of 'clean'"):
        read_output(other, "clean", tmp_path / "cache")


def test_a_rerun_replaces_the_files_of_the_previous_output(tmp_path):
    write_stage_output(tmp_path / "o", "split", {"train.jsonl": [{"a": 1}], "old.jsonl": [{"b": 2}]})
    write_stage_output(tmp_path / "o", "split", {"train.jsonl": [{"a": 2}]})
    assert not (tmp_path / "o" / "old.jsonl").exists()
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]
    _, report = read_output(tmp_path / "o", "split", tmp_path / "cache")
    assert list(report["manifest"]) == ["train.jsonl"]


def test_clean_writes_an_s3_output_with_its_report_last(tmp_path, sample_path, s3_bucket):
    out = f"s3://{s3_bucket}/run/clean"
    assert finegate("clean", "--input", sample_path, "--output-dir", out, *QUICK, cwd=tmp_path).returncode == 0
    assert not (tmp_path / "s3:").exists()
    directory, report = read_output(out, "clean", tmp_path / "cache")
    assert report["passed"] and (directory / "kept.jsonl").is_file()
    assert storage.exists(f"{out}/report.json")
