"""The contract holds for the real process too (the fuzz tests call main() in-process): a bad input and a
usage error, each through `python -m pipelines.cli` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def finegate(*argv: object, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(cwd)}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_bad_input_is_one_line_and_exit_2_in_a_real_process(tmp_path):
    state = tmp_path / "trainer_state.json"
    state.write_text('{"log_history": ' + "[" * 200_000 + "]" * 200_000 + "}")
    done = finegate("check-overfit", state, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"finegate check-overfit: error: {state}: JSON nested more than 64 levels deep"]


def test_usage_errors_are_one_line_in_a_real_process(tmp_path):
    done = finegate("clean", "--no-such-option", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("finegate clean: error: ")
