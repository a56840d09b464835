"""Runs `finegate` in-process in a throw-away folder and checks what every command owes its caller, whatever
the input: an exit code of 0, 1 or 2; no traceback; a bad input (exit 2) told in one line, the last on stderr
(progress lines and library logs may come before it, a second error may not); nothing written outside the
output folder (inputs untouched, no temporary files left behind)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import event

from pipelines.cli import main

OUT = "out"  # the one folder a command may write into, inside the sandbox
LIBRARY_CACHES = ("torchinductor_",)  # torch makes its compile cache in the temp folder on first import
FRAME = re.compile(r'^\s+File "|^\w*(Error|Exception): ')  # a traceback's frame or its last line


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


class Sandbox:
    """`root/in` holds the inputs, `root/out` is the output folder, `root/tmp` is the system temp folder
    while a command runs; the working directory is `root`, so relative default paths land inside it."""

    def __enter__(self) -> Sandbox:
        self.root = Path(tempfile.mkdtemp(prefix="finegate-fuzz-"))
        self.inputs, self.out, self.tmp = self.root / "in", self.root / OUT, self.root / "tmp"
        for folder in (self.inputs, self.tmp):
            folder.mkdir()
        self._cwd, self._tempdir = os.getcwd(), tempfile.tempdir
        os.chdir(self.root)
        return self

    def __exit__(self, *exc) -> None:
        os.chdir(self._cwd)
        tempfile.tempdir = self._tempdir
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, rel: str, data: bytes | str) -> Path:
        path = self.inputs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return path

    def run(self, *argv: object) -> Result:
        before = self._snapshot()
        stdout, stderr = io.StringIO(), io.StringIO()
        tempfile.tempdir = str(self.tmp)
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                code = main([str(a) for a in argv])
        finally:
            tempfile.tempdir = self._tempdir
        result = Result(code, stdout.getvalue(), stderr.getvalue())
        event(f"exit {code}")
        check_result(argv, result)
        assert self._snapshot() == before, f"{argv}: wrote outside {OUT}/: {diff(before, self._snapshot())}"
        left = sorted(p.name for p in self.tmp.iterdir() if not p.name.startswith(LIBRARY_CACHES))
        assert not left, f"{argv}: left temporary files: {left}"
        return result

    def _snapshot(self) -> dict[str, str]:
        """Every file and folder outside out/ and tmp/, with the sha256 of each file."""
        files = {}
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root)
            if rel.parts[0] in (OUT, "tmp"):
                continue
            files[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        return files


def check_result(argv: tuple, result: Result) -> None:
    where = f"finegate {' '.join(str(a) for a in argv)[:300]}"
    assert result.code in (0, 1, 2), f"{where}: exit {result.code}: {result.stderr[-2000:]}{bug_log(result.stderr)}"
    assert "Traceback" not in result.stderr, f"{where}: {result.stderr[-3000:]}"
    if result.code == 2:
        # The error is one line, the last. Lines before it are a stage's progress ("split: 40 rows from ...")
        # or a library's log (transformers' warnings), never a second error or a traceback's frames.
        *before, error = result.stderr.splitlines() or [""]
        assert error.startswith(f"finegate {argv[0]}: error: "), f"{where}: last line on stderr: {error!r}"
        strays = [line for line in before if line.startswith("finegate ") or FRAME.match(line)]
        assert not strays, f"{where}: exit 2 with more than one error on stderr: {result.stderr[-2000:]}"


def diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def bug_log(stderr: str) -> str:
    """The traceback main() logged for an internal error, to show with the failure."""
    if "traceback in " not in stderr:
        return ""
    path = Path(stderr.rsplit("traceback in ", 1)[1].strip())
    return "\n" + path.read_text(encoding="utf-8") if path.is_file() else ""
