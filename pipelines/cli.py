"""`finegate`: one subcommand per stage plus the commands that chain them.

    finegate clean --input data/sample/note_titles.jsonl --output-dir runs/demo/clean
    finegate split --input runs/demo/clean/kept.jsonl --output-dir runs/demo/split
    finegate run --config configs/demo.yaml

Each subcommand takes --config FILE and --set key=value; `finegate <command> --help` lists the rest.
Exit codes: 0 passed, 1 a gate failed (reasons on stderr), 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from components.common.errors import FinegateError

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
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finegate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FinegateError as exc:
        print(f"finegate {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"finegate {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
