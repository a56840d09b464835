"""`finegate`: one subcommand per stage plus the commands that chain them.

    finegate clean --input data/sample/note_titles.jsonl --output-dir runs/demo/clean
    finegate split --input runs/demo/clean/kept.jsonl --output-dir runs/demo/split
    finegate run --config configs/demo.yaml

Each subcommand takes --config FILE and --set key=value; `finegate <command> --help` lists the rest.
Exit codes: 0 passed, 1 a gate failed (reasons on stderr), 2 bad input or configuration, 70 a bug.

Every error is one line on stderr, `finegate <command>: error: ...`, never a traceback. The rule for what
is whose fault: a FinegateError is raised where the input is read, with the file, line and setting it is
about; an OSError is the system refusing a path or connection the user named (missing, unwritable, a file
where a folder belongs, disk full), so it is bad input too. Any other exception is a bug in finegate,
never a verdict on the input: one line saying so, with the traceback in a log file, exit 70 (EX_SOFTWARE).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from components.common.errors import FinegateError, one_line

INTERNAL_ERROR = 70  # sysexits.h EX_SOFTWARE: neither a gate's verdict (1) nor bad input (2)

# Each module exposes `register(subparsers)`, which adds its subcommands with `func` set.
# Kept light: heavy imports (torch, llama_cpp) happen inside the functions, so `--help` is instant.
COMMAND_MODULES = [
    "components.clean.cli",
    "components.split.cli",
    "components.train.cli",
    "components.train.overfit_cli",
    "components.base_models.cli",
    "components.hf_check.cli",
    "components.gguf.cli",
    "components.evaluate.cli",
    "components.register.cli",
    "pipelines.run_cli",
    "pipelines.compile_cli",
    "pipelines.replay",
    "pipelines.images_cli",
    "pipelines.submit_cli",
    "pipelines.settings_cli",
]


class UsageError(FinegateError):
    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog


class OneLineParser(argparse.ArgumentParser):
    """A usage error is bad input like any other: one line, exit 2 (argparse prints the whole usage)."""

    def error(self, message: str):
        raise UsageError(self.prog, f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="finegate", description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"{exc.prog}: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    command = f"finegate {args.command}"
    try:
        return int(args.func(args) or 0)
    except FinegateError as exc:
        print(f"{command}: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"{command}: error: {one_line(_os_error(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug, reported as one
        log = _log_traceback(args.command)
        print(f"{command}: internal error (a bug in finegate, not a verdict on your input): "
              f"{type(exc).__name__}: {one_line(str(exc))[:300]}; traceback in {log}", file=sys.stderr)
        return INTERNAL_ERROR


def _os_error(exc: OSError) -> str:
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{paths}: {reason}" if paths else reason


def _log_traceback(command: str) -> str:
    log = Path(tempfile.gettempdir()) / f"finegate-{command}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        log.write_text(traceback.format_exc(), encoding="utf-8")
    except OSError as exc:
        return f"no log ({log}: {exc.strerror})"
    return str(log)


if __name__ == "__main__":
    sys.exit(main())
