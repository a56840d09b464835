"""The accounting invariant, as a property: whatever the input holds (valid rows, duplicates, contaminated
titles, garbage text, invalid bytes, blank lines), every input row appears exactly once in kept.jsonl or
rejected.jsonl, under its own source_line."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.clean.contamination import find_contamination
from components.clean.core import run_clean
from components.common.config import RunConfig
from tests.clean.rows import alpaca, body, read_out, title

TITLES = ["自己紹介｜子育て｜ワーママ｜30代", "#副業 #在宅ワーク", "https://note.com/a", "」」」」」」", "null", "", "【保存版"]
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


def _cfg() -> RunConfig:
    cfg = RunConfig()
    cfg.data.min_samples = 1
    cfg.clean.write_chart = False
    cfg.clean.progress_every = 0
    return cfg


@st.composite
def jsonl_lines(draw) -> list[bytes]:
    lines: list[bytes] = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["row", "row", "contaminated", "duplicate", "text", "bytes", "blank", "json"]))
        if kind == "row":
            line = json.dumps(alpaca(draw(st.integers(0, 8))), ensure_ascii=False).encode()
        elif kind == "contaminated":
            line = json.dumps(alpaca(draw(st.integers(0, 8)), draw(st.sampled_from(TITLES))), ensure_ascii=False).encode()
        elif kind == "duplicate" and lines:
            line = draw(st.sampled_from(lines))
        elif kind == "text":
            line = draw(TEXT).encode("utf-8")
        elif kind == "bytes":
            line = draw(st.binary(max_size=30))
        elif kind == "json":
            line = json.dumps(draw(st.one_of(st.integers(), st.lists(st.integers(), max_size=3), st.none(),
                                             st.dictionaries(TEXT, TEXT, max_size=3)))).encode()
        else:
            line = b""
        lines.append(line)
    # At least one row with a known layout, or the file is refused as a whole (an unknown layout).
    lines.insert(draw(st.integers(0, len(lines))), json.dumps(alpaca(9), ensure_ascii=False).encode())
    return lines


def _check(out: Path, n_rows: int) -> None:
    kept, rejected, report = read_out(out)
    lines = sorted([r["source_line"] for r in kept] + [r["source_line"] for r in rejected])
    assert lines == list(range(1, n_rows + 1))
    assert report["metrics"]["rows_in"] == n_rows and report["metrics"]["accounting_ok"] is True
    assert len({r["id"] for r in kept}) == len(kept)
    cfg = _cfg()
    assert all(find_contamination(r["completion"], cfg.clean) is None for r in kept)
    assert all("reason" in r and r["reason"].startswith(r["rule"] + ": ") for r in rejected)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=jsonl_lines(), trailing_newline=st.booleans(), bom=st.booleans())
def test_every_jsonl_row_lands_exactly_once(lines, trailing_newline, bom):
    data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
    if bom:
        data = b"\xef\xbb\xbf" + data
    # What a person counts as rows: the file's lines (a final line without a newline counts too).
    n_rows = len(data.split(b"\n")) - (1 if data.endswith(b"\n") or not data else 0)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.jsonl"
        src.write_bytes(data)
        run_clean(src, Path(tmp) / "out", _cfg())
        _check(Path(tmp) / "out", n_rows)


@st.composite
def csv_records(draw) -> list[list[str]]:
    records: list[list[str]] = []
    for _ in range(draw(st.integers(0, 20))):
        kind = draw(st.sampled_from(["row", "row", "duplicate", "short", "long", "garbage", "blank"]))
        i = draw(st.integers(0, 8))
        if kind == "row":
            records.append(["指示", body(i), draw(st.sampled_from([title(i), *TITLES]))])
        elif kind == "duplicate" and records:
            records.append(draw(st.sampled_from(records)))
        elif kind == "short":
            records.append([draw(TEXT)])
        elif kind == "long":
            records.append([draw(TEXT) for _ in range(5)])
        elif kind == "garbage":
            records.append([draw(TEXT), draw(TEXT), draw(TEXT)])
        else:
            records.append([])
    return records


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=csv_records())
def test_every_csv_row_lands_exactly_once(records):
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["instruction", "input", "output"])
    writer.writerows(records)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.csv"
        src.write_text(buf.getvalue(), encoding="utf-8", newline="")
        run_clean(src, Path(tmp) / "out", _cfg())
        _check(Path(tmp) / "out", len(records))
