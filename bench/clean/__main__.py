"""Bench: the clean stage on 100k and 200k synthetic Japanese rows (with injected duplicates and contamination).

    .venv/bin/python -m bench.clean                    # 100k and 200k rows
    .venv/bin/python -m bench.clean --sizes 20000 40000 --profile

Each size runs `run_clean` in a fresh child process (so peak memory is that run's alone, read from
ru_maxrss). Prints rows/s, seconds, peak RSS, what the stage caught against what was injected, and the
ratio T(200k)/T(100k). Targets on a 2-core machine: 100k rows in under 60 s, ratio at most 2.2, peak
memory under 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS_100K = 60.0
TARGET_RATIO = 2.2
TARGET_PEAK_MIB = 2048


def child(input_path: str, out_dir: str, profile: bool, workers: int) -> None:
    """Runs in the child process: one clean run, its figures as JSON on the last stdout line."""
    from components.clean.core import run_clean
    from components.clean.parallel import worker_count
    from components.common.config import RunConfig

    cfg = RunConfig()
    cfg.data.min_samples = 1
    cfg.clean.workers = workers
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
    me, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    n_workers = worker_count(cfg.clean.workers)
    # ru_maxrss is KiB on Linux. Workers: the largest one's peak, counted once per worker (an upper bound).
    peak_mib = (me.ru_maxrss + (n_workers * workers.ru_maxrss if n_workers > 1 else 0)) / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib, "workers": n_workers,
                      "main_cpu": me.ru_utime + me.ru_stime, "worker_cpu": workers.ru_utime + workers.ru_stime,
                      "metrics": report.metrics, "rules": report.details["rules"]}))


def measure(n_rows: int, work: Path, profile: bool, workers: int) -> dict:
    from bench.clean.synthetic import generate

    path = work / f"raw-{n_rows}.jsonl"
    injected = generate(path, n_rows, seed=n_rows)
    proc = subprocess.run([sys.executable, "-m", "bench.clean", "--child", str(path), str(work / f"out-{n_rows}"),
                           "--workers", str(workers)] + (["--profile"] if profile else []), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench.clean: the clean run on {n_rows} rows failed:\n{proc.stderr[-3000:]}")
    if profile:
        print(proc.stderr, file=sys.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["rows"], result["injected"] = n_rows, dict(injected)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clean", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[100_000, 200_000], metavar=("N", "2N"))
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each run on stderr")
    parser.add_argument("--workers", type=int, default=0, help="clean.workers (0: one per core)")
    parser.add_argument("--child", nargs=2, metavar=("INPUT", "OUT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, profile=args.profile, workers=args.workers)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-clean-") as tmp:
        results = [measure(n, Path(tmp), args.profile, args.workers) for n in args.sizes]
    print(f"{'rows':>8} {'seconds':>8} {'rows/s':>8} {'cpu main':>9} {'cpu wrk':>8} {'peak MiB':>9} {'kept':>8}"
          f"  rejected per rule")
    for r in results:
        rules = ", ".join(f"{k} {v}" for k, v in r["rules"].items() if v)
        print(f"{r['rows']:>8} {r['seconds']:>8.1f} {r['rows'] / r['seconds']:>8.0f} {r['main_cpu']:>9.1f} "
              f"{r['worker_cpu']:>8.1f} {r['peak_mib']:>9.0f} {r['metrics']['kept']:>8}  {rules}")
        print(f"{'':>8} injected: " + ", ".join(f"{k} {v}" for k, v in sorted(r["injected"].items())))
    small, large = results
    ratio = large["seconds"] / small["seconds"]
    scale = large["rows"] / small["rows"]
    t_100k = small["seconds"] * 100_000 / small["rows"]
    peak = max(r["peak_mib"] for r in results)
    cpu_ratio = (large["main_cpu"] + large["worker_cpu"]) / (small["main_cpu"] + small["worker_cpu"])
    print(f"T({large['rows']})/T({small['rows']}) = {ratio:.2f} for {scale:.0f}x the rows (target <= {TARGET_RATIO}); "
          f"CPU time ratio {cpu_ratio:.2f}; {small['workers']} worker process(es); load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"time for 100k rows: {t_100k:.1f} s (target < {TARGET_SECONDS_100K:.0f} s); "
          f"peak memory {peak:.0f} MiB (target < {TARGET_PEAK_MIB} MiB)")
    met = t_100k < TARGET_SECONDS_100K and ratio <= TARGET_RATIO and peak < TARGET_PEAK_MIB
    print("targets met" if met else "TARGETS MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
