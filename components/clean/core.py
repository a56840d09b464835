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

import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from components.clean.readers import (
    FieldProblem,
    Record,
    SourceRow,
    choose_schema,
    detect_format,
    iter_rows,
    to_record,
)
from components.common import storage
from components.common.config import RunConfig
from components.common.detectors import CONTAMINATION_RULES, detect_placeholder, find_contamination
from components.common.errors import InputError, row_problem
from components.common.near_duplicates import NearDuplicateIndex
from components.common.report import StageReport
from components.common.text import dedup_key, normalize

STAGE = "clean"
KEPT, REJECTED = "kept.jsonl", "rejected.jsonl"
RULES = ("empty_line", "bad_input", *CONTAMINATION_RULES, "length", "exact_duplicate", "near_duplicate")
# Rules that measure contamination: what gate 0 says must be gone from kept.jsonl.
CONTENT_RULES = CONTAMINATION_RULES


# Line separators that are not "\n" (NEL, LS, PS) are legal raw inside JSON strings but split lines for
# readers that use str.splitlines(); escaped, every record stays on its one line.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=str).translate(_LINE_BREAKS) + "\n"


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


def run_clean(input_uri: str | Path, output_dir: str | Path, cfg: RunConfig) -> StageReport:
    input_uri, output_dir = str(input_uri), str(output_dir)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="finegate-clean-") as tmp:
        local_in = _localize_input(input_uri, Path(tmp) / "in", cfg)
        out = Path(tmp) / "out" if storage.is_s3(output_dir) else Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        fmt = detect_format(local_in, cfg.data.format)
        report = StageReport(STAGE)
        with _open_outputs(out) as (kept_f, rejected_f):
            tally, clusters, schema = _clean_rows(iter_rows(local_in, fmt, cfg.data), input_uri, cfg, kept_f, rejected_f)
        after = _recheck_kept(out / KEPT, cfg)
        elapsed = time.monotonic() - started
        _fill_report(report, tally, clusters, after, cfg, elapsed)
        report.details["input"] = {"uri": input_uri, "format": fmt, "schema": schema,
                                   "sha256": storage.sha256_file(local_in)}
        report.details["outputs"] = {name: storage.sha256_file(out / name) for name in (KEPT, REJECTED)}
        _gate(report, tally, after, cfg)
        if cfg.clean.write_chart:
            report.details["chart"] = _chart(report, out)
        report.write(out)
        if storage.is_s3(output_dir):
            storage.publish(out, output_dir)
    print(f"clean: {tally.rows_in} rows -> {tally.kept} kept, {tally.rows_in - tally.kept} rejected "
          f"in {elapsed:.1f} s; gate 0 {'passed' if report.passed else 'FAILED'}", file=sys.stderr)
    return report


def _localize_input(uri: str, cache: Path, cfg: RunConfig) -> Path:
    local = storage.localize(uri, cache, verify=cfg.storage.verify_sha256)
    if local.is_dir():
        raise InputError(f"{uri}: is a directory or prefix; give one JSONL, CSV or Parquet file")
    return local


@contextmanager
def _open_outputs(out: Path) -> Iterator[tuple[TextIO, TextIO]]:
    # errors=backslashreplace: a raw row may hold invalid UTF-8 (as escaped bytes) or a lone surrogate;
    # written as \udcff it stays valid JSON and shows the bad bytes.
    with (out / KEPT).open("w", encoding="utf-8") as kept, \
            (out / REJECTED).open("w", encoding="utf-8", errors="backslashreplace") as rejected:
        yield kept, rejected


def _clean_rows(rows: Iterator[SourceRow], where: str, cfg: RunConfig, kept_f: TextIO,
                rejected_f: TextIO) -> tuple[Tally, dict[int, Cluster], str | None]:
    clean = cfg.clean
    tally = Tally()
    rows, schema = _peek_schema(rows, cfg, where)
    exact: dict[bytes, Survivor] = {}
    near = NearDuplicateIndex(clean.near_duplicates)
    survivors_by_line: dict[int, Survivor] = {}
    clusters: dict[int, Cluster] = {}
    ids: dict[str, int] = {}
    started = time.monotonic()

    def reject(row: SourceRow, rule: str, detail: str) -> None:
        tally.rejected[rule] += 1
        rejected_f.write(json_line({"source_line": row.source_line, "rule": rule, "reason": f"{rule}: {detail}",
                                    "raw": row.raw}))

    for row in rows:
        tally.rows_in += 1
        if clean.progress_every and tally.rows_in % clean.progress_every == 0:
            print(f"clean: {tally.rows_in} rows read, {tally.kept} kept "
                  f"({time.monotonic() - started:.1f} s)", file=sys.stderr, flush=True)
        if row.problem is not None:
            rule, message = row.problem
            reject(row, rule, row_problem(where, row.source_line, None, message))
            continue
        try:
            record = to_record(row.raw, schema, cfg.data, clean.control_chars)
        except FieldProblem as exc:
            reject(row, "bad_input", row_problem(where, row.source_line, exc.field, exc.message))
            continue
        tally.parsed += 1
        prompt, completion = normalize(record.prompt), normalize(record.completion)

        found = ("incomplete", record.null_field) if record.null_field else _content_problem(prompt, completion, cfg)
        if found:
            tally.contaminated_before += 1
            tally.contaminated_by_rule[found[0]] += 1
            reject(row, *found)
            continue
        too_long_or_short = _length_problem(prompt, completion, cfg)
        if too_long_or_short:
            reject(row, "length", too_long_or_short)
            continue

        record_id = record.id if record.id is not None else f"row-{row.source_line}"
        text = _dedup_text(prompt, completion, clean.dedup_on)
        key = hashlib.blake2b(dedup_key(text).encode("utf-8"), digest_size=16).digest()
        if key in exact:
            first = exact[key]
            _add_to_cluster(clusters, first, record_id, row.source_line, "exact", 1.0)
            reject(row, "exact_duplicate", f"same text as line {first.source_line} (id {first.id})")
            continue
        signature = near.signature(text)
        matches = near.query(text, signature)
        if matches:
            line, similarity = matches[0]
            first = survivors_by_line[line]
            _add_to_cluster(clusters, first, record_id, row.source_line, "near", similarity)
            reject(row, "near_duplicate", f"Jaccard ~{similarity:.2f} with line {first.source_line} (id {first.id})")
            continue
        if record_id in ids:  # after deduplication: a copied row is a duplicate first
            reject(row, "bad_input", row_problem(where, row.source_line, "id",
                                                 f"id {record_id!r} already used on line {ids[record_id]}"))
            continue

        survivor = Survivor(record_id, row.source_line)
        exact[key] = survivor
        near.add(row.source_line, text, signature)
        survivors_by_line[row.source_line] = survivor
        ids[record_id] = row.source_line
        tally.kept += 1
        kept_f.write(json_line(_kept_record(record, record_id, row.source_line, prompt, completion)))
    return tally, clusters, schema


def _peek_schema(rows: Iterator[SourceRow], cfg: RunConfig, where: str) -> tuple[Iterator[SourceRow], str | None]:
    """Reads ahead far enough to choose the schema, then replays those rows."""
    head: list[SourceRow] = []
    sample: list[dict[str, Any]] = []
    for row in rows:
        head.append(row)
        if row.problem is None:
            sample.append(row.raw)
            if len(sample) >= 200:
                break
    schema = choose_schema(sample, cfg.data, where) if sample else None

    def replay() -> Iterator[SourceRow]:
        yield from head
        yield from rows

    return replay(), schema


def _content_problem(prompt: str, completion: str, cfg: RunConfig) -> tuple[str, str] | None:
    """The contamination rule a row breaks: the completion's detectors first, then an empty or
    placeholder prompt (the issue's 'empty or whitespace input'). A body cut mid-sentence is fine."""
    found = find_contamination(completion, cfg.clean)
    if found:
        return found[0], f"completion: {found[1]}"
    if not prompt.strip():
        return "incomplete", "prompt: empty"
    placeholder = detect_placeholder(prompt, cfg.clean.placeholders)
    if placeholder:
        return "incomplete", f"prompt: {placeholder}"
    return None


def _length_problem(prompt: str, completion: str, cfg: RunConfig) -> str | None:
    c = cfg.clean
    for name, text, lo, hi in (("prompt", prompt, c.min_prompt_chars, c.max_prompt_chars),
                               ("completion", completion, c.min_completion_chars, c.max_completion_chars)):
        if len(text) < lo:
            return f"{name}: {len(text)} characters < clean.min_{name}_chars={lo}"
        if len(text) > hi:
            return f"{name}: {len(text)} characters > clean.max_{name}_chars={hi}"
    return None


def _dedup_text(prompt: str, completion: str, dedup_on: str) -> str:
    if dedup_on == "prompt":
        return prompt
    if dedup_on == "completion":
        return completion
    return f"{prompt}\n{completion}"


def _add_to_cluster(clusters: dict[int, Cluster], survivor: Survivor, record_id: str, source_line: int,
                    kind: str, similarity: float) -> None:
    cluster = clusters.setdefault(survivor.source_line, Cluster(survivor))
    cluster.dropped.append({"id": record_id, "source_line": source_line, "kind": kind,
                            "similarity": round(float(similarity), 4)})


def _kept_record(record: Record, record_id: str, source_line: int, prompt: str, completion: str) -> dict[str, Any]:
    kept: dict[str, Any] = {"id": record_id, "source_line": source_line, "prompt": prompt, "completion": completion}
    if record.category is not None:
        kept["category"] = record.category
    if record.group is not None:
        kept["group"] = record.group
    return kept


@dataclass
class AfterCheck:
    rows: int
    contaminated: int
    by_rule: Counter
    examples: list[dict[str, Any]]


def _recheck_kept(path: Path, cfg: RunConfig) -> AfterCheck:
    """Re-reads kept.jsonl as the next stage will and runs the same detectors on it: the gate measures the
    file that ships, not the loop's intentions."""
    rows, contaminated, by_rule, examples = 0, 0, Counter(), []
    with path.open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            rows += 1
            found = _content_problem(rec["prompt"], rec["completion"], cfg)
            if found:
                contaminated += 1
                by_rule[found[0]] += 1
                if len(examples) < 20:
                    examples.append({"id": rec["id"], "source_line": rec["source_line"], "reason": f"{found[0]}: {found[1]}"})
    return AfterCheck(rows, contaminated, by_rule, examples)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _fill_report(report: StageReport, tally: Tally, clusters: dict[int, Cluster], after: AfterCheck,
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
    report.details["gate"] = {"max_contamination_rate": cfg.gates.max_contamination_rate,
                              "min_samples": cfg.data.min_samples}
    report.details["config"] = {"clean": cfg.clean.model_dump(mode="json"),
                                "data": cfg.data.model_dump(mode="json", by_alias=True)}


def _gate(report: StageReport, tally: Tally, after: AfterCheck, cfg: RunConfig) -> None:
    rate = _rate(after.contaminated, after.rows)
    if rate > cfg.gates.max_contamination_rate:
        rules = ", ".join(f"{r} {n}" for r, n in after.by_rule.items())
        report.fail(f"contamination in kept.jsonl {rate:.2%} > gates.max_contamination_rate "
                    f"{cfg.gates.max_contamination_rate:.2%} ({rules}); see report.json contamination.after.examples")
    if tally.kept < cfg.data.min_samples:
        top = ", ".join(f"{r} {n}" for r, n in tally.rejected.most_common(3))
        report.fail(f"only {tally.kept} rows survived cleaning, fewer than data.min_samples={cfg.data.min_samples} "
                    f"(of {tally.rows_in} input rows; most rejected by {top or 'nothing'}): add clean data "
                    f"or lower data.min_samples")
    if not report.metrics["accounting_ok"]:
        report.fail(f"accounting broken: {tally.rows_in} rows in, {tally.kept} kept + "
                    f"{sum(tally.rejected.values())} rejected (a bug in the clean stage)")


def _chart(report: StageReport, out: Path) -> str:
    from components.clean.chart import write_rules_chart

    return write_rules_chart(report.details["rules"], report.metrics, out).name
