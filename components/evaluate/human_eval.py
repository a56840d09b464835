"""Blind A/B pairs for human raters: `human_eval.csv` for them, `human_eval_key.csv` for whoever scores.

The rater's file shows an article and two titles, A and B, in a shuffled order, with nothing that tells
which system wrote which: no system names, no sample ids, and which side is the fine-tuned model is a coin
flip per pair. The key file maps each pair back to its test row and to the system behind A and B. Both the
order and the coin flips come from one seeded generator, so the same run writes the same files.
Pairs whose two titles are identical are left out: a rater cannot prefer one of two equal titles.
Written as UTF-8 with a byte-order mark, so spreadsheet programs open the Japanese text correctly.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

RATER_FILE = "human_eval.csv"
KEY_FILE = "human_eval_key.csv"
RATER_COLUMNS = ["pair_id", "article", "title_A", "title_B", "preferred (A/B/tie)", "comment"]
KEY_COLUMNS = ["pair_id", "id", "source_line", "A", "B"]


def write_human_eval(samples: list[dict[str, Any]], system_a: str, system_b: str, n_pairs: int, seed: int,
                     output_dir: str | Path) -> dict[str, Any]:
    """samples: rows with id, source_line, prompt (or article: the prompt without its instruction) and
    outputs[system]. Returns what the report records."""
    out = Path(output_dir)
    eligible = [s for s in samples if s["outputs"].get(system_a) is not None
                and s["outputs"].get(system_b) is not None
                and s["outputs"][system_a].strip() != s["outputs"][system_b].strip()]
    rng = random.Random(f"human-eval:{seed}")
    order = list(range(len(eligible)))
    rng.shuffle(order)
    chosen = order[:n_pairs]
    rater_rows, key_rows = [], []
    for n, idx in enumerate(chosen, 1):
        sample = eligible[idx]
        first, second = (system_a, system_b) if rng.random() < 0.5 else (system_b, system_a)
        pair_id = f"P{n:03d}"
        article = sample.get("article") or sample["prompt"]
        rater_rows.append([pair_id, article, sample["outputs"][first], sample["outputs"][second], "", ""])
        key_rows.append([pair_id, sample["id"], sample.get("source_line", ""), first, second])
    _write_csv(out / RATER_FILE, RATER_COLUMNS, rater_rows)
    _write_csv(out / KEY_FILE, KEY_COLUMNS, key_rows)
    return {"pairs": len(rater_rows), "systems": [system_a, system_b],
            "identical_pairs_left_out": len(samples) - len(eligible),
            "a_is": {system_a: sum(1 for r in key_rows if r[3] == system_a),
                     system_b: sum(1 for r in key_rows if r[3] == system_b)},
            "rater_file": RATER_FILE, "key_file": KEY_FILE}


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
