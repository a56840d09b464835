"""Bench: the clean stage on 100k and 200k synthetic Japanese rows (with injected duplicates and contamination).

    .venv/bin/python -m bench.clean                    # 100k and 200k rows, twice each, clean.workers default
    .venv/bin/python -m bench.clean --sizes 20000 40000 --repeats 1 --workers 0 --profile

Each run is `run_clean` in a fresh child process (so peak memory is that run's alone, read from ru_maxrss),
the two sizes alternating (N, 2N, N, 2N, ...) so that drift in the machine's load hits both alike; each
size's fastest run is the one least disturbed by other jobs, and the ratio T(2N)/T(N) compares those.
Prints per run: seconds, rows/s, CPU time of the main process and of its workers, peak RSS of each, the
load average before and after; then what the stage caught against what was injected. Targets on a 2-core
machine: 100k rows in under 60 s, ratio at most 2.2, peak memory under 2 GiB, and memory growing no
faster than the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS_100K = 60.0
TARGET_RATIO = 2.2
TARGET_PEAK_MIB = 2048


def child(input_path: str, out_dir: str, profile: bool, workers: int | None) -> None:
    """Runs in the child process: one clean run, its figures as JSON on the last stdout line."""
    from components.clean.core import run_clean
    from components.common.config import RunConfig

    cfg = RunConfig()
    cfg.data.min_samples = 1
    if workers is not None:
        cfg.clean.workers = workers
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    if profile:
        import cProfile
        import pstats

        with cProfile.Profile() as prof:
            report = run_clean(input_path, out_dir, cfg)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    else:
        report = run_clean(input_path, out_dir, cfg)
    seconds = time.perf_counter() - started
    me, workers_usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # ru_maxrss is KiB on Linux; for the (reaped) workers it is the largest one's peak.
    print(json.dumps({"seconds": seconds, "workers": report.metrics["worker_processes"],
                      "main_mib": me.ru_maxrss / 1024, "worker_mib": workers_usage.ru_maxrss / 1024,
                      "main_cpu": me.ru_utime + me.ru_stime,
                      "worker_cpu": workers_usage.ru_utime + workers_usage.ru_stime,
                      "load_before": load_before, "load_after": os.getloadavg()[0],
                      "metrics": report.metrics, "rules": report.details["rules"]}))


def measure(path: Path, n_rows: int, out: Path, profile: bool, workers: int | None) -> dict:
    command = [sys.executable, "-m", "bench.clean", "--child", str(path), str(out)]
    command += (["--workers", str(workers)] if workers is not None else []) + (["--profile"] if profile else [])
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench.clean: the clean run on {n_rows} rows failed:\n{proc.stderr[-3000:]}")
    if profile:
        print(proc.stderr, file=sys.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    shutil.rmtree(out)
    # An upper bound: forked workers share their unchanged pages with the main process.
    result["peak_mib"] = result["main_mib"] + result["workers"] * result["worker_mib"]
    result["rows"] = n_rows
    return result


def print_run(r: dict) -> None:
    print(f"{r['rows']:>8} {r['seconds']:>8.1f} {r['rows'] / r['seconds']:>8.0f} {r['workers']:>8} "
          f"{r['main_cpu']:>9.1f} {r['worker_cpu']:>8.1f} {r['main_mib']:>9.0f} {r['worker_mib']:>8.0f} "
          f"{r['peak_mib']:>9.0f} {r['load_before']:>5.1f} {r['load_after']:>5.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clean", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[100_000, 200_000], metavar=("N", "2N"))
    parser.add_argument("--repeats", type=int, default=2, help="runs of each size, alternating (default 2)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each run on stderr")
    parser.add_argument("--workers", type=int, default=None, help="clean.workers (default: the config's default)")
    parser.add_argument("--child", nargs=2, metavar=("INPUT", "OUT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, profile=args.profile, workers=args.workers)
        return 0

    from bench.clean.synthetic import generate

    runs: dict[int, list[dict]] = {n: [] for n in args.sizes}
    injected = {}
    print(f"{'rows':>8} {'seconds':>8} {'rows/s':>8} {'workers':>8} {'cpu main':>9} {'cpu wrk':>8} {'MiB main':>9} "
          f"{'MiB wrk':>8} {'peak MiB':>9} {'load before/after':>11}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-clean-") as tmp:
        work = Path(tmp)
        for n in args.sizes:
            injected[n] = generate(work / f"raw-{n}.jsonl", n, seed=n)
        for i in range(args.repeats):
            for n in args.sizes:
                result = measure(work / f"raw-{n}.jsonl", n, work / f"out-{n}-{i}", args.profile, args.workers)
                print_run(result)
                sys.stdout.flush()
                runs[n].append(result)
    small, large = (min(runs[n], key=lambda r: r["seconds"]) for n in args.sizes)
    for r in (small, large):
        rules = ", ".join(f"{k} {v}" for k, v in r["rules"].items() if v)
        print(f"{r['rows']:>8} rows: kept {r['metrics']['kept']}; rejected per rule: {rules}")
        print(f"{'':>8} injected: " + ", ".join(f"{k} {v}" for k, v in sorted(injected[r["rows"]].items())))
    ratio = large["seconds"] / small["seconds"]
    scale = large["rows"] / small["rows"]
    t_100k = small["seconds"] * 100_000 / small["rows"]
    peak = max(r["peak_mib"] for r in (small, large))
    cpu_ratio = (large["main_cpu"] + large["worker_cpu"]) / (small["main_cpu"] + small["worker_cpu"])
    memory_ratio = large["peak_mib"] / small["peak_mib"]
    print(f"T({large['rows']})/T({small['rows']}) = {large['seconds']:.1f} s / {small['seconds']:.1f} s = {ratio:.2f} "
          f"for {scale:.0f}x the rows (fastest of {args.repeats} each; target <= {TARGET_RATIO}); CPU time ratio "
          f"{cpu_ratio:.2f}; peak memory ratio {memory_ratio:.2f}; {small['workers']} and {large['workers']} "
          f"worker process(es); {os.cpu_count()} cores")
    print(f"time for 100k rows: {t_100k:.1f} s (target < {TARGET_SECONDS_100K:.0f} s); "
          f"peak memory {peak:.0f} MiB (target < {TARGET_PEAK_MIB} MiB)")
    met = t_100k < TARGET_SECONDS_100K and ratio <= TARGET_RATIO and peak < TARGET_PEAK_MIB and memory_ratio <= scale
    print("targets met" if met else "TARGETS MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
