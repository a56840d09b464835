"""Hypothesis strategies for garbage: bytes, JSON that breaks the reader's limits, rows with the wrong shape,
YAML configs and `--set` values. Every strategy mixes in well-formed pieces, so a run gets past its first
check often enough to reach the later ones."""

from __future__ import annotations

import json

from hypothesis import strategies as st
from pydantic import BaseModel

from components.common.config import RunConfig

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
JA = st.sampled_from(["記事の本文です。今日は雨でした。", "転職して半年｜年収より大事だったこと", "", " ", "null", "ã\x81\x82",
                      "\u202e題名", "○○○", "タイトルを入力", "#副業 #在宅", "https://note.com/x", "」」」」」", "題" * 80])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(), TEXT, JA)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
# Lines the JSON reader must refuse politely: limits, broken syntax, bytes that are not UTF-8.
HOSTILE_LINES = st.sampled_from([
    b'{"n": ' + b"7" * 5000 + b"}", b'{"x": ' + b"9" * 401 + b".5}", b"[" * 5000 + b"]" * 5000,
    b'{"prompt": "\xff\xfe"}', b"\xef\xbb\xbf{}", b"{not json", b"\x00\x01\x02", b'{"a": NaN, "b": -Infinity}',
    b'{"a": 1e999}', b"[1, 2]", b'"text"', b"", b"   ", b"\r", b'{"a": "\\ud800"}', b'{"\xe3\x81": 1}',
])


def dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def jsonl(draw, good_row, max_rows: int = 12) -> bytes:
    """A JSONL file: good rows only (half the time, so a stage gets to its later checks), or good rows mixed with
    rows with wrong fields, JSON that is not a row, hostile lines and raw bytes. `good_row(i)` is the strategy
    for a good row on line i."""
    lines = []
    kinds = ["good"] if draw(st.booleans()) else ["good", "good", "good", "shape", "json", "hostile", "bytes"]
    for i in range(draw(st.integers(0, max_rows))):
        kind = draw(st.sampled_from(kinds))
        if kind == "good":
            lines.append(dumps(draw(good_row(i))))
        elif kind == "shape":
            row = dict(draw(good_row(i)))
            key = draw(st.sampled_from(sorted(row) or ["x"]))
            row[key] = draw(JSON_VALUES)
            lines.append(dumps(row))
        elif kind == "json":
            lines.append(dumps(draw(JSON_VALUES)))
        elif kind == "hostile":
            lines.append(draw(HOSTILE_LINES))
        else:
            lines.append(draw(st.binary(max_size=40)).replace(b"\n", b""))
    end = draw(st.sampled_from([b"\n", b"\r\n"]))
    return end.join(lines) + (end if lines and draw(st.booleans()) else b"")


def alpaca_rows(line: int) -> st.SearchStrategy:
    return st.builds(lambda i, t: {"instruction": "次の記事本文にふさわしいタイトルを付けてください。",
                                   "input": f"記事{i}の本文です。" + "あいうえおかきくけこ" * (1 + i % 3), "output": t},
                     st.integers(0, 30), st.one_of(st.sampled_from(["朝の散歩で気づいたこと", "副業一年目の記録"]), JA))


def kept_rows(line: int) -> st.SearchStrategy:
    """A row of kept.jsonl; its id and text follow the line, so rows differ (a near duplicate is clustered)."""
    words = ["朝活", "副業", "家計簿", "子育て", "読書", "転職", "料理", "旅行", "筋トレ", "英語", "節約", "投資", "写真"]
    return st.builds(lambda c: {"id": f"r{line}", "source_line": line + 1, "completion": f"{words[line % 13]}の記録{line}",
                                "prompt": "".join(words[(line * k) % 13] + "について書いた。" for k in range(1, 8)) + str(line),
                                "category": c}, st.sampled_from(["a", "b", None]))


def dotted_keys(model: BaseModel, prefix: str = "") -> list[str]:
    keys = []
    for name, field in type(model).model_fields.items():
        value, key = getattr(model, name), field.alias or name
        keys += dotted_keys(value, f"{prefix}{key}.") if isinstance(value, BaseModel) else [prefix + key]
    return keys


# Settings a garbage value must not reach: where outputs and tracking stores go (the lead's output-path
# protocol, not fuzzed yet), and the sizes that let `run` go past its first gate into training.
UNFUZZED = ("register.local_tracking_uri", "register.local_artifact_location", "register.tracking_uri",
            "data.input", "data.min_samples", "storage.endpoint_url", "evaluate.judge.url")
KEYS = [k for k in dotted_keys(RunConfig()) if k not in UNFUZZED]
YAML_VALUES = st.one_of(
    st.sampled_from(["null", "~", "[]", "{}", "[1, [2]]", "[0.8, null, 0.2]", ".nan", "-.inf", "1e400", "9" * 5000,
                     "'text'", "!!python/object:os.system 1", "[", "{a: b", "true", "-1", "0", "80/20", "a: b: c",
                     "*anchor", "&x [*x]", "\x00", "{title}", "2024-01-01", "0x10", "1_000"]),
    st.integers(-10**3, 10**3).map(str), st.floats(allow_nan=True).map(repr), TEXT)
SET_ITEMS = st.one_of(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), YAML_VALUES),
                      st.builds(lambda k, v: f"{k}={v}", TEXT, YAML_VALUES), TEXT)
# Half the runs without garbage overrides, so the garbage in the files is what the command meets.
SETS = st.one_of(st.just([]), st.lists(SET_ITEMS, min_size=1, max_size=2)).map(
    lambda items: [arg for item in items for arg in ("--set", item)])


@st.composite
def config_yaml(draw) -> bytes:
    """A run config file: real sections with garbage values, unknown keys, broken YAML, non-UTF-8 bytes."""
    kind = draw(st.sampled_from(["sections", "sections", "text", "bytes"]))
    if kind == "text":
        return draw(TEXT).encode("utf-8")
    if kind == "bytes":
        return draw(st.binary(max_size=60))
    lines = []
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=4)):
        *parents, leaf = key.split(".")
        lines.append("".join(f"{'  ' * i}{p}:\n" for i, p in enumerate(parents)) + f"{'  ' * len(parents)}{leaf}: "
                     + draw(YAML_VALUES).replace("\n", " "))
    return "\n".join(lines).encode("utf-8")
