"""The clean stage: raw rows in, `kept.jsonl` + `rejected.jsonl` + `report.json` out; gate 0 in the report.

    run_clean("data/sample/note_titles.jsonl", "runs/demo/clean", cfg)

Every input row lands exactly once in kept.jsonl or rejected.jsonl with its `source_line`. Rules run in
this order and the first that fires is the row's `reason` ("rule: detail"):

    empty_line       a blank JSONL line / CSV row (kept in the accounting, never silently skipped)
    bad_input        invalid JSON or UTF-8, a non-object line, a missing field, a wrong type, a control
                     character (clean.control_chars), a repeated id -- with file, line and field
    url_or_html      } content detectors on the completion (components/common/detectors.py);
    tag_list         } `incomplete` also covers an empty or placeholder prompt
    repetition       }
    incomplete       }
    length           prompt or completion outside clean.{min,max}_{prompt,completion}_chars
    exact_duplicate  same normalized text (clean.dedup_on) as an earlier kept row
    near_duplicate   MinHash-LSH Jaccard >= clean.near_duplicates.threshold with an earlier kept row

Quality rules run before deduplication, so a survivor is never a contaminated twin: the first clean row of
each cluster is kept. Kept text is normalized (components/common/text.py). The stream is processed in one
pass (memory grows with the number of kept rows' signatures, not with the file).

Gate 0 fails when the contamination rate measured on kept.jsonl itself (re-read and re-checked by the
same detectors) exceeds gates.max_contamination_rate, or when fewer than data.min_samples rows survive.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, TextIO

from components.clean.contamination import CONTAMINATION_RULES
from components.clean.parallel import workers
from components.clean.prepare import Outcome, Prepared, Recheck, RowPreparer
from components.clean.readers import RawLine, SourceRow, choose_schema, detect_format, iter_rows, parse_row
from components.common import storage
from components.common.config import RunConfig
from components.common.errors import InputError, row_problem
from components.common.gates import Gate
from components.common.near_duplicates import NearDuplicateIndex
from components.common.report import StageReport
from components.common.stage_output import StageOutput

STAGE = "clean"
KEPT, REJECTED = "kept.jsonl", "rejected.jsonl"
RULES = ("empty_line", "bad_input", *CONTAMINATION_RULES, "length", "exact_duplicate", "near_duplicate")
# Rules that measure contamination: what gate 0 says must be gone from kept.jsonl.
CONTENT_RULES = CONTAMINATION_RULES


# Line separators that are not "\n" (NEL, LS, PS) are legal raw inside JSON strings but split lines for
# readers that use str.splitlines(); escaped, every record stays on its one line.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def json_line(record: dict[str, Any]) -> str:
    line = json.dumps(record, ensure_ascii=False, default=str)
    if "\x85" in line or "\u2028" in line or "\u2029" in line:
        line = line.translate(_LINE_BREAKS)
    return line + "\n"


@dataclass
class Survivor:
    id: str
    source_line: int


@dataclass
class Cluster:
    survivor: Survivor
    dropped: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Tally:
    rows_in: int = 0
    kept: int = 0
    parsed: int = 0  # rows that became a record (the denominator of the contamination rate)
    rejected: Counter = field(default_factory=Counter)
    contaminated_before: int = 0
    contaminated_by_rule: Counter = field(default_factory=Counter)
    prompts_truncated: int = 0  # kept rows whose prompt was cut to clean.truncate_prompt_chars


def run_clean(input_uri: str | Path, output_dir: str | Path, cfg: RunConfig) -> StageReport:
    input_uri, output_dir = str(input_uri), str(output_dir)
    started = time.monotonic()
    with StageOutput(output_dir, STAGE, inputs=[input_uri]) as output, \
            tempfile.TemporaryDirectory(prefix="finegate-clean-") as tmp:
        fetched = _localize_input(input_uri, Path(tmp) / "in", cfg)
        local_in = fetched.path
        out = output.path
        fmt = detect_format(local_in, cfg.data.format)
        report = StageReport(STAGE)
        rows, schema = _peek_schema(iter_rows(local_in, fmt, cfg.data, raw_jsonl=True), cfg, input_uri)
        with workers(RowPreparer(schema, cfg, input_uri), cfg.clean.workers) as pool:
            with _open_outputs(out) as (kept_f, rejected_f):
                tally, clusters = _clean_rows(pool.prepare(rows), cfg, input_uri, kept_f, rejected_f)
            after = _recheck_kept(out / KEPT, pool)
        elapsed = time.monotonic() - started
        _fill_report(report, tally, clusters, after, cfg, elapsed)
        report.metrics["worker_processes"] = pool.started
        report.details["input"] = {"uri": input_uri, "format": fmt, "schema": schema,
                                   "sha256": fetched.sha256()}
        report.details["outputs"] = {name: storage.sha256_file(out / name) for name in (KEPT, REJECTED)}
        _gate(report, tally, after, cfg)
        if cfg.clean.write_chart:
            report.details["chart"] = _chart(report, out)
        output.finish(report)
    print(f"clean: {tally.rows_in} rows -> {tally.kept} kept, {tally.rows_in - tally.kept} rejected "
          f"in {elapsed:.1f} s; gate 0 {'passed' if report.passed else 'FAILED'}", file=sys.stderr)
    return report


def _localize_input(uri: str, cache: Path, cfg: RunConfig) -> storage.Localized:
    fetched = storage.fetch(uri, cache, verify=cfg.storage.verify_sha256, external=cfg.storage.external_raw_inputs)
    if fetched.path.is_dir():
        raise InputError(f"{uri}: is a directory or prefix; give one JSONL, CSV or Parquet file")
    return fetched


@contextmanager
def _open_outputs(out: Path) -> Iterator[tuple[TextIO, TextIO]]:
    # errors=backslashreplace: a raw row may hold invalid UTF-8 (as escaped bytes) or a lone surrogate;
    # written as \udcff it stays valid JSON and shows the bad bytes.
    with (out / KEPT).open("w", encoding="utf-8") as kept, \
            (out / REJECTED).open("w", encoding="utf-8", errors="backslashreplace") as rejected:
        yield kept, rejected


def _clean_rows(batches: Iterator[Prepared], cfg: RunConfig, where: str, kept_f: TextIO,
                rejected_f: TextIO) -> tuple[Tally, dict[int, Cluster]]:
    """Consumes prepared rows in input order: tallies and writes rejections, then deduplicates the rest
    against the rows kept so far (first exact, then near) and writes the survivors."""
    clean = cfg.clean
    tally = Tally()
    exact: dict[bytes, Survivor] = {}
    near = NearDuplicateIndex(clean.near_duplicates)
    survivors_by_line: dict[int, Survivor] = {}
    clusters: dict[int, Cluster] = {}
    ids: dict[str, int] = {}
    started = time.monotonic()

    def reject(row: Outcome, rule: str, detail: str) -> None:
        tally.rejected[rule] += 1
        rejected_f.write(json_line({"source_line": row.source_line, "rule": rule, "reason": f"{rule}: {detail}",
                                    "raw": row.raw}))

    for row, signature, bands in chain.from_iterable(batch.rows() for batch in batches):
        tally.rows_in += 1
        if clean.progress_every and tally.rows_in % clean.progress_every == 0:
            print(f"clean: {tally.rows_in} rows read, {tally.kept} kept "
                  f"({time.monotonic() - started:.1f} s)", file=sys.stderr, flush=True)
        tally.parsed += row.parsed
        if row.contaminated:
            tally.contaminated_before += 1
            tally.contaminated_by_rule[row.contaminated] += 1
        if row.rule is not None:
            reject(row, row.rule, row.detail)
            continue

        record_id, line = row.kept["id"], row.source_line
        first = exact.get(row.exact_key) if clean.enabled else None
        if first is not None:
            _add_to_cluster(clusters, first, record_id, line, "exact", 1.0)
            reject(row, "exact_duplicate", f"same text as line {first.source_line} (id {first.id})")
            continue
        matches = near.query_and_add(line, "", signature, add_if_new=record_id not in ids, bands=bands) \
            if clean.enabled else []
        if matches:
            match_line, similarity = matches[0]
            first = survivors_by_line[match_line]
            _add_to_cluster(clusters, first, record_id, line, "near", similarity)
            reject(row, "near_duplicate", f"Jaccard ~{similarity:.2f} with line {first.source_line} (id {first.id})")
            continue
        if record_id in ids:  # after deduplication: a copied row is a duplicate first
            reject(row, "bad_input", row_problem(where, line, "id", f"id {record_id!r} already used on line {ids[record_id]}"))
            continue

        survivor = Survivor(record_id, line)
        exact[row.exact_key] = survivor
        survivors_by_line[line] = survivor
        ids[record_id] = line
        tally.kept += 1
        tally.prompts_truncated += row.prompt_truncated
        kept_f.write(json_line(row.kept))
    return tally, clusters


def _peek_schema(rows: Iterator[SourceRow | RawLine], cfg: RunConfig,
                 where: str) -> tuple[Iterator[SourceRow | RawLine], str | None]:
    """Reads ahead far enough to choose the schema, then replays those rows (parsed: not parsed again)."""
    head: list[SourceRow] = []
    sample: list[dict[str, Any]] = []
    for row in rows:
        parsed = parse_row(row)
        head.append(parsed)
        if parsed.problem is None:
            sample.append(parsed.raw)
            if len(sample) >= 200:
                break
    schema = choose_schema(sample, cfg.data, where) if sample else None

    def replay() -> Iterator[SourceRow | RawLine]:
        yield from head
        yield from rows

    return replay(), schema


def _add_to_cluster(clusters: dict[int, Cluster], survivor: Survivor, record_id: str, source_line: int,
                    kind: str, similarity: float) -> None:
    cluster = clusters.setdefault(survivor.source_line, Cluster(survivor))
    cluster.dropped.append({"id": record_id, "source_line": source_line, "kind": kind,
                            "similarity": round(float(similarity), 4)})


def _recheck_kept(path: Path, pool) -> Recheck:
    """Re-reads kept.jsonl as the next stage will and runs the same detectors on it: the gate measures the
    file that ships, not the loop's intentions."""
    rows, contaminated, by_rule, examples = 0, 0, Counter(), []
    with path.open(encoding="utf-8") as f:
        for part in pool.recheck(f):
            rows += part.rows
            contaminated += part.contaminated
            by_rule.update(part.by_rule)
            examples += part.examples[: 20 - len(examples)]
    return Recheck(rows, contaminated, by_rule, examples)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _fill_report(report: StageReport, tally: Tally, clusters: dict[int, Cluster], after: Recheck,
                 cfg: RunConfig, elapsed: float) -> None:
    rejected = sum(tally.rejected.values())
    listed = sorted(clusters.values(), key=lambda c: (-len(c.dropped), c.survivor.source_line))
    duplicates = tally.rejected["exact_duplicate"] + tally.rejected["near_duplicate"]
    report.metrics.update({
        "rows_in": tally.rows_in,
        "kept": tally.kept,
        "rejected": rejected,
        "accounting_ok": tally.rows_in == tally.kept + rejected and after.rows == tally.kept,
        "contamination_rate_before": _rate(tally.contaminated_before, tally.parsed),
        "contamination_rate_after": _rate(after.contaminated, after.rows),
        "duplicate_rate_before": _rate(duplicates, tally.parsed),
        "duplicate_clusters": len(clusters),
        "prompts_truncated": tally.prompts_truncated,
        "rows_per_second": round(tally.rows_in / elapsed, 1) if elapsed > 0 else None,
        "seconds": round(elapsed, 2),
    })
    report.details["rules"] = {rule: tally.rejected.get(rule, 0) for rule in RULES}
    report.details["contamination"] = {
        "rules": list(CONTENT_RULES),
        "before": {"rows": tally.parsed, "contaminated": tally.contaminated_before,
                   "rate": _rate(tally.contaminated_before, tally.parsed),
                   "by_rule": {r: tally.contaminated_by_rule.get(r, 0) for r in CONTENT_RULES}},
        "after": {"rows": after.rows, "contaminated": after.contaminated, "rate": _rate(after.contaminated, after.rows),
                  "by_rule": {r: after.by_rule.get(r, 0) for r in CONTENT_RULES}, "examples": after.examples},
    }
    limit = cfg.clean.report_max_clusters
    report.details["duplicates"] = {
        "dedup_on": cfg.clean.dedup_on,
        "near_duplicate_rule": cfg.clean.near_duplicates.model_dump(),
        "exact": tally.rejected["exact_duplicate"],
        "near": tally.rejected["near_duplicate"],
        "clusters_total": len(clusters),
        "clusters_listed": min(limit, len(clusters)),
        "clusters": [{"survivor": {"id": c.survivor.id, "source_line": c.survivor.source_line},
                      "dropped": c.dropped} for c in listed[:limit]],
    }
    report.details["config"] = {"clean": cfg.clean.model_dump(mode="json"),
                                "data": cfg.data.model_dump(mode="json", by_alias=True)}


def _gate(report: StageReport, tally: Tally, after: Recheck, cfg: RunConfig) -> None:
    gate = Gate("0", STAGE, cfg)
    rate = _rate(after.contaminated, after.rows)
    rules = ", ".join(f"{r} {n}" for r, n in after.by_rule.items())
    gate.at_most("gates.max_contamination_rate", rate, "contamination in kept.jsonl",
                 reason=f"contamination in kept.jsonl {rate:.2%} > gates.max_contamination_rate "
                        f"{cfg.gates.max_contamination_rate:.2%} ({rules}); see report.json contamination.after.examples"
                        + ("" if cfg.clean.enabled else "; clean.enabled is false: nothing was cleaned"))
    top = ", ".join(f"{r} {n}" for r, n in tally.rejected.most_common(3))
    gate.at_least("data.min_samples", tally.kept, "rows kept",
                  reason=f"only {tally.kept} rows survived cleaning, fewer than data.min_samples={cfg.data.min_samples} "
                         f"(of {tally.rows_in} input rows; most rejected by {top or 'nothing'}): add clean data "
                         f"or lower data.min_samples")
    gate.fixed("rows accounted for (kept + rejected = read)", float(report.metrics["accounting_ok"]), ">=", 1.0,
               reason=f"accounting broken: {tally.rows_in} rows in, {tally.kept} kept + "
                      f"{sum(tally.rejected.values())} rejected (a bug in the clean stage)")
    gate.apply(report)


def _chart(report: StageReport, out: Path) -> str:
    from components.clean.chart import write_rules_chart

    return write_rules_chart(report.details["rules"], report.metrics, out).name
