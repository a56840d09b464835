"""Per-row work of the clean stage, independent of every other row: parse into a record, normalize, run the
quality rules, compute the deduplication key and MinHash signature. Pure and picklable, so it runs in
worker processes (components/clean/parallel.py) while the main process deduplicates in input order.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from components.clean.contamination import find_contamination
from components.clean.readers import FieldProblem, RawLine, SourceRow, parse_row, to_record
from components.common.config import RunConfig
from components.common.detectors import is_placeholder
from components.common.errors import row_problem
from components.common.near_duplicates import NearDuplicateIndex
from components.common.text import normalize

_WHITESPACE = re.compile(r"\s+")


class Outcome(NamedTuple):
    """One row after the per-row work: rejected by a rule, or going on to deduplication."""

    source_line: int
    raw: Any  # the row as read, parsed once: its object, or the line's text if it is not JSON (rejected's `raw`)
    rule: str | None  # the rejecting rule, or None for a row that goes on to deduplication
    detail: str | None
    parsed: bool  # became a record (the denominator of the contamination rate)
    contaminated: str | None  # the content rule that fired, for the contamination-before tally
    kept: dict[str, Any] | None  # the unified record, for rows that go on
    exact_key: bytes | None  # digest of the normalized dedup text, for rows that go on
    signature_row: int | None  # for rows that go on: their row of the batch's `signatures` and `bands`
    prompt_truncated: bool = False  # cut to clean.truncate_prompt_chars


class Prepared(NamedTuple):
    """A batch's outcomes in input order, with the MinHash signatures of the rows that go on."""

    outcomes: list[Outcome]
    signatures: np.ndarray  # one row of MinHash values per outcome that goes on (its `signature_row`)
    bands: list[list[int]]  # the LSH band keys of each signature row

    def rows(self) -> Iterator[tuple[Outcome, np.ndarray | None, list[int] | None]]:
        """Each outcome with its signature and band keys (None for a rejected row)."""
        for outcome in self.outcomes:
            j = outcome.signature_row
            yield (outcome, None, None) if j is None else (outcome, self.signatures[j], self.bands[j])


class Recheck(NamedTuple):
    rows: int
    contaminated: int
    by_rule: Counter
    examples: list[dict[str, Any]]


def content_problem(prompt: str, completion: str, cfg: RunConfig) -> tuple[str, str] | None:
    """The contamination rule a row breaks: the completion's detectors first, then a prompt that is empty,
    only white space or a placeholder. A body cut mid-sentence is fine."""
    found = find_contamination(completion, cfg.clean)
    if found:
        return found[0], f"completion: {found[1]}"
    if not prompt.strip():
        return "incomplete", "prompt: empty"
    if is_placeholder(prompt, cfg.clean.placeholders):
        return "incomplete", f"prompt: placeholder '{prompt[:40]}'"
    return None


def length_problem(prompt: str, completion: str, cfg: RunConfig) -> str | None:
    c = cfg.clean
    for name, text, lo, hi in (("prompt", prompt, c.min_prompt_chars, c.max_prompt_chars),
                               ("completion", completion, c.min_completion_chars, c.max_completion_chars)):
        if len(text) < lo:
            return f"{name}: {len(text)} characters < clean.min_{name}_chars={lo}"
        if len(text) > hi:
            return f"{name}: {len(text)} characters > clean.max_{name}_chars={hi}"
    return None


def dedup_text(prompt: str, completion: str, dedup_on: str) -> str:
    if dedup_on == "prompt":
        return prompt
    if dedup_on == "completion":
        return completion
    return f"{prompt}\n{completion}"


def compact(normalized: str) -> str:
    """`text.dedup_key` of text that is already normalized, without normalizing it a second time."""
    return _WHITESPACE.sub("", normalized).casefold()


class RowPreparer:
    def __init__(self, schema: str | None, cfg: RunConfig, where: str):
        self.schema, self.cfg, self.where = schema, cfg, where
        self.signer = NearDuplicateIndex(cfg.clean.near_duplicates)

    def __call__(self, rows: list[SourceRow | RawLine]) -> Prepared:
        """The outcomes of a batch of rows; the signatures of the rows that go on are computed together."""
        outcomes: list[Outcome] = []
        dedup_keys: list[str] = []
        for row in rows:
            outcome, dedup_key = self.one(parse_row(row))
            if dedup_key is not None:
                outcome = outcome._replace(signature_row=len(dedup_keys))
                dedup_keys.append(dedup_key)
            outcomes.append(outcome)
        signatures = self.signer.signature_matrix(dedup_keys)
        bands = self.signer.band_keys_matrix(signatures) if dedup_keys else []
        return Prepared(outcomes, signatures, bands)

    def one(self, row: SourceRow) -> tuple[Outcome, str | None]:
        """The row's outcome, and for a row that goes on its dedup key (`text.dedup_key` of the text
        compared, clean.dedup_on), which the batch signs."""
        cfg, line = self.cfg, row.source_line
        if row.problem is not None:
            rule, message = row.problem
            return self._rejected(row, rule, row_problem(self.where, line, None, message)), None
        try:
            record = to_record(row.raw, self.schema, cfg.data, cfg.clean.control_chars)
        except FieldProblem as exc:
            return self._rejected(row, "bad_input", row_problem(self.where, line, exc.field, exc.message)), None
        prompt, completion = normalize(record.prompt), normalize(record.completion)
        found = ("incomplete", record.null_field) if record.null_field else content_problem(prompt, completion, cfg)
        if found and cfg.clean.enabled:
            return self._rejected(row, found[0], found[1], parsed=True, contaminated=found[0]), None
        bounds = length_problem(prompt, completion, cfg) if cfg.clean.enabled else None
        if bounds:
            return self._rejected(row, "length", bounds, parsed=True), None
        contaminated = found[0] if found else None  # counted, though kept: clean.enabled is off
        limit = cfg.clean.truncate_prompt_chars
        truncated = limit is not None and len(prompt) > limit
        if truncated:
            prompt = prompt[:limit].rstrip()

        kept: dict[str, Any] = {"id": record.id if record.id is not None else f"row-{line}", "source_line": line,
                                "prompt": prompt, "completion": completion}
        if record.category is not None:
            kept["category"] = record.category
        if record.group is not None:
            kept["group"] = record.group
        dedup_key = compact(dedup_text(prompt, completion, cfg.clean.dedup_on))
        exact_key = hashlib.blake2b(dedup_key.encode("utf-8"), digest_size=16).digest()
        return Outcome(line, row.raw, None, None, True, contaminated, kept, exact_key, None, truncated), dedup_key

    @staticmethod
    def _rejected(row: SourceRow, rule: str, detail: str, parsed: bool = False,
                  contaminated: str | None = None) -> Outcome:
        return Outcome(row.source_line, row.raw, rule, detail, parsed, contaminated, None, None, None)

    def recheck(self, lines: list[str]) -> Recheck:
        """Counts contamination in kept.jsonl lines, as the gate measures it."""
        contaminated, by_rule, examples = 0, Counter(), []
        for line in lines:
            rec = json.loads(line)
            found = content_problem(rec["prompt"], rec["completion"], self.cfg)
            if found:
                contaminated += 1
                by_rule[found[0]] += 1
                examples.append({"id": rec["id"], "source_line": rec["source_line"], "reason": f"{found[0]}: {found[1]}"})
        return Recheck(len(lines), contaminated, by_rule, examples[:20])
