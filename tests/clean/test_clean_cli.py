"""`finegate clean` in a subprocess: exit codes, the report on stdout, one-line errors, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clean.rows import alpaca, write_jsonl
from tests.fixtures.servers import free_port

REPO = Path(__file__).resolve().parents[2]


def finegate(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "clean", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def assert_one_line_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("finegate clean: error: ") and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.fixture
def small_input(tmp_path):
    return write_jsonl(tmp_path / "in.jsonl", [alpaca(1), alpaca(2), alpaca(3, "#副業 #在宅ワーク")])


def test_passing_gate_exits_0_with_the_report_on_stdout(small_input, tmp_path):
    proc = finegate("--input", str(small_input), "--output-dir", str(tmp_path / "out"), "--set", "data.min_samples=2",
                    "--set", "gates.loosened.data.min_samples=a two-row test input")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed["stage"] == "clean" and printed["passed"] is True and printed["metrics"]["kept"] == 2
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == printed
    assert "clean: 3 rows -> 2 kept, 1 rejected" in proc.stderr


def test_failing_gate_exits_1_with_reasons_on_stderr(small_input, tmp_path):
    proc = finegate("--input", str(small_input), "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "gate failed: clean: only 2 rows survived cleaning, fewer than data.min_samples=300" in proc.stderr
    assert json.loads(proc.stdout)["passed"] is False and (tmp_path / "out" / "kept.jsonl").is_file()


def test_missing_file_is_one_line_and_exit_2(tmp_path):
    assert_one_line_error(finegate("--input", str(tmp_path / "nope.jsonl"), "--output-dir", str(tmp_path / "o")),
                          "nope.jsonl: no such file")


def test_unknown_format_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "data.xml"
    path.write_text("<rows/>", encoding="utf-8")
    assert_one_line_error(finegate("--input", str(path), "--output-dir", str(tmp_path / "o")), "unknown format '.xml'")


def test_unreachable_s3_is_one_line_and_exit_2(tmp_path):
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    proc = finegate("--input", "s3://raw/notes.jsonl", "--output-dir", str(tmp_path / "o"), env=env)
    assert_one_line_error(proc, "s3://raw/notes.jsonl: S3 unreachable")


def test_missing_s3_object_is_one_line_and_exit_2(tmp_path, s3_bucket, s3_endpoint):
    proc = finegate("--input", f"s3://{s3_bucket}/nope.jsonl", "--output-dir", str(tmp_path / "o"),
                    env={"AWS_ENDPOINT_URL": s3_endpoint})
    assert_one_line_error(proc, "no such object")


def test_bad_override_is_one_line_and_exit_2(small_input, tmp_path):
    proc = finegate("--input", str(small_input), "--output-dir", str(tmp_path / "o"), "--set", "clean.tag_list.min_segments=1")
    assert_one_line_error(proc, "clean.tag_list.min_segments")
