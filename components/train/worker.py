"""One process of a data-parallel train run, started by torchrun (components/train/data_parallel.py):

    torchrun --standalone --nproc-per-node 2 -m components.train.worker \\
        --data-dir SPLITS --base-model MODEL --output-dir OUT --config-json "$(cat run.json)"

`finegate train --set train.num_processes=N` runs this for you; a multi-node TrainJob runs it on every
node. Exit 0 when the stage's report is written (whether gate A passed is in the report), 2 for bad input
or configuration (one line on stderr), anything else for a crash, with its traceback (torchrun shows it).
"""

from __future__ import annotations

import argparse
import sys

from components.common.errors import FinegateError, one_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.train.worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the split stage's folder or s3:// prefix")
    parser.add_argument("--base-model", help="hub id, folder or s3:// prefix (default: train.base_model)")
    parser.add_argument("--output-dir", required=True, help="where rank 0 writes the stage output (or s3://)")
    parser.add_argument("--config-json", required=True, help="the run config as one JSON document")
    args = parser.parse_args(argv)

    from components.common.kfp_glue import config_from_json
    from components.train.data_parallel import record_rank_error, run_rank
    from components.train.ranks import start_ranks, stop_ranks

    cfg = config_from_json(args.config_json)
    ranks = start_ranks(cfg.train.process_group_timeout_s)
    try:
        run_rank(ranks, args.data_dir, args.base_model, args.output_dir, cfg)
    except FinegateError as exc:
        print(f"finegate train (rank {ranks.rank}): error: {one_line(str(exc))}", file=sys.stderr)
        record_rank_error(ranks.rank, exc)
        return exc.exit_code
    finally:
        stop_ranks(ranks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
