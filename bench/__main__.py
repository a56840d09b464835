"""Runs every benchmark present (`bench/<name>/__main__.py`), each in its own process, one after another.

    .venv/bin/python -m bench              # all of them
    .venv/bin/python -m bench clean gguf   # only these
    .venv/bin/python -m bench --list

Each benchmark prints its own figures and ratios; this runner prints which ones ran and their exit codes,
and exits non-zero when any of them did.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.parent.name for p in HERE.glob("*/__main__.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    names = available()
    if args.list:
        print("\n".join(names))
        return 0
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)} (have: {', '.join(names)})")
    results = {}
    for name in args.names or names:
        print(f"== bench.{name}", flush=True)
        started = time.monotonic()
        results[name] = (subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=HERE.parent),
                         time.monotonic() - started)
    print("== summary")
    for name, (code, seconds) in results.items():
        print(f"  bench.{name}: exit {code} ({seconds:.0f} s)")
    return int(any(code for code, _ in results.values()))


if __name__ == "__main__":
    sys.exit(main())
