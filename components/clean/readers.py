"""Ingest: JSONL, CSV and Parquet rows, one `SourceRow` per input row, never skipping one.

Numbering (`source_line`): the 1-based physical line for JSONL; the 1-based data row (header not counted)
for CSV and Parquet. A row the reader cannot turn into an object still comes out, with `problem` set,
so the clean stage can reject it with its line instead of losing it:

- JSONL: a blank (or white-space-only) line is a row rejected as `empty_line`; invalid UTF-8, invalid JSON,
  a non-object line and a byte-order mark anywhere but the start of the file are `bad_input`. The BOM at
  the start of the file is stripped (row 1 survives). Invalid UTF-8 inside a string is kept as escaped
  bytes so the field check can name the field.
- CSV: a row with more or fewer fields than the header, or broken quoting, is `bad_input`; an empty row is
  `empty_line`. Invalid UTF-8 is carried as escaped bytes to the field check, as for JSONL.
- Parquet: string columns are read as bytes and decoded per cell, so one bad cell rejects one row.

`schema_of(row)` names the record layout (alpaca, prompt_completion, chat) and `to_record` turns one raw
row into the unified fields, or says which field is wrong.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from components.common.errors import InputError, one_line
from components.common.report import JsonProblem, iter_lines, line_too_long, parse_json
from components.common.settings.data import DataSection

FORMATS = ("jsonl", "csv", "parquet")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "csv",
               ".parquet": "parquet", ".pq": "parquet"}
_BOM = b"\xef\xbb\xbf"
_PARQUET_BATCH = 8192
# How many parseable rows decide the schema when data.schema is auto.
_SCHEMA_SAMPLE = 200


@dataclass
class SourceRow:
    source_line: int
    raw: Any  # the parsed object, or the line as text when it could not be parsed
    problem: tuple[str, str] | None = None  # (rule, message) when the reader already knows the row is bad


@dataclass
class Record:
    prompt: str
    completion: str
    id: str | None
    category: str | None
    group: str | None
    # A required field that is present but null ("output: null"): the row is incomplete, not malformed.
    null_field: str | None = None


class FieldProblem(Exception):
    """One field of one row is wrong; `field` names it for the rejection reason."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# ---------------------------------------------------------------- format


def detect_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    ext = path.suffix.lower()
    if ext in _EXTENSIONS:
        fmt = _EXTENSIONS[ext]
        if ext == ".json" and _first_byte(path) == b"[" and _is_json_array(path):
            raise InputError(f"{path}: a JSON array, not JSON Lines (one object per line); convert it with "
                             f"jq -c '.[]' {path.name}")
        return fmt
    with path.open("rb") as f:
        head = f.read(4)
    if head == b"PAR1":
        return "parquet"
    if _first_byte(path) == b"{":
        return "jsonl"
    raise InputError(f"{path}: unknown format '{ext or '(no extension)'}'; name the file .jsonl, .csv or .parquet "
                     f"or set data.format")


def _is_json_array(path: Path) -> bool:
    try:
        return isinstance(parse_json(path.read_bytes().removeprefix(_BOM).decode("utf-8")), list)
    except (JsonProblem, UnicodeDecodeError):
        return False


def _first_byte(path: Path) -> bytes:
    with path.open("rb") as f:
        head = f.read(4096)
    head = head.removeprefix(_BOM).lstrip()
    return head[:1]


def iter_rows(path: Path, fmt: str, data: DataSection, raw_jsonl: bool = False) -> Iterator[SourceRow | RawLine]:
    """The file's rows in order. With `raw_jsonl`, JSONL lines come unparsed (`RawLine`; `parse_row` turns
    one into a SourceRow), so that worker processes can parse them."""
    if fmt == "jsonl":
        return jsonl_lines(path) if raw_jsonl else map(parse_row, jsonl_lines(path))
    if fmt == "csv":
        delimiter = data.csv_delimiter if data.csv_delimiter != "auto" else ("\t" if path.suffix.lower() == ".tsv" else ",")
        return _csv_rows(path, delimiter)
    if fmt == "parquet":
        return _parquet_rows(path)
    raise InputError(f"{path}: unknown format '{fmt}' (expected one of {', '.join(FORMATS)})")


class RawLine(NamedTuple):
    line_no: int
    data: bytes


def jsonl_lines(path: Path) -> Iterator[RawLine | SourceRow]:
    for line_no, line in iter_lines(path, "raw data"):
        if line is None:
            yield SourceRow(line_no, None, ("bad_input", line_too_long()))
        else:
            yield RawLine(line_no, line)


def parse_row(row: SourceRow | RawLine) -> SourceRow:
    """A JSONL line as a SourceRow (already-parsed rows pass through)."""
    if isinstance(row, SourceRow):
        return row
    line_no, line = row
    if not line.strip():
        return SourceRow(line_no, line.decode("utf-8", "backslashreplace"), ("empty_line", "blank line"))
    if line.startswith(_BOM):
        return SourceRow(line_no, line.decode("utf-8", "backslashreplace"),
                         ("bad_input", "byte-order mark in the middle of the file (files concatenated?)"))
    try:
        # strict=False lets control characters inside strings through to the field check, which names
        # the field; surrogateescape does the same for invalid UTF-8.
        obj = parse_json(line.decode("utf-8", "surrogateescape"), strict=False)
    except JsonProblem as exc:
        return SourceRow(line_no, line.decode("utf-8", "backslashreplace"), ("bad_input", exc.reason))
    if not isinstance(obj, dict):
        return SourceRow(line_no, obj, ("bad_input", f"expected a JSON object, got {_type_name(obj)}"))
    return SourceRow(line_no, obj)


def _csv_rows(path: Path, delimiter: str) -> Iterator[SourceRow]:
    # utf-8-sig strips a leading BOM; surrogateescape carries invalid bytes to the field check.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"{path}: the CSV header cannot be read: {exc}") from None
        header = [h.strip() for h in header]
        row_no = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row_no += 1
                yield SourceRow(row_no, None, ("bad_input", f"malformed CSV ({exc})"))
                continue
            row_no += 1
            if not fields or (len(fields) == 1 and not fields[0].strip() and len(header) > 1):
                yield SourceRow(row_no, fields, ("empty_line", "blank row"))
                continue
            if len(fields) != len(header):
                yield SourceRow(row_no, fields, ("bad_input", f"row has {len(fields)} fields, the header has {len(header)}"))
                continue
            yield SourceRow(row_no, dict(zip(header, fields, strict=True)))


def _parquet_rows(path: Path) -> Iterator[SourceRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # pyarrow decodes the file's metadata (column names) as UTF-8 itself: a corrupt footer can raise that too.
    try:
        pfile = pq.ParquetFile(path)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({one_line(str(exc))})") from None
    row_no = 0
    try:
        for batch in pfile.iter_batches(batch_size=_PARQUET_BATCH):
            columns = {}
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                if name.startswith("__index_level_"):
                    continue  # pandas' saved index, not data
                if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                    # Read as bytes: one cell of invalid UTF-8 must reject one row, not the whole batch.
                    column = column.view(pa.binary() if pa.types.is_string(column.type) else pa.large_binary())
                columns[name] = column.to_pylist()
            for i in range(batch.num_rows):
                row_no += 1
                yield SourceRow(row_no, {name: _decode_cell(values[i]) for name, values in columns.items()})
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: Parquet read failed after row {row_no} ({one_line(str(exc))})") from None


def _decode_cell(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


# ---------------------------------------------------------------- schema

SCHEMAS = ("alpaca", "prompt_completion", "chat", "mapping")


def schema_of(row: dict[str, Any]) -> str | None:
    keys = set(row)
    if "messages" in keys:
        return "chat"
    if "instruction" in keys and "output" in keys:
        return "alpaca"
    if "prompt" in keys and "completion" in keys:
        return "prompt_completion"
    return None


def choose_schema(sample: list[dict[str, Any]], data: DataSection, where: str) -> str:
    """The schema of a file: the configured one, the column mapping, or the layout most sampled rows have."""
    if data.schema_ != "auto":
        return data.schema_
    if data.column_mapping is not None:
        return "mapping"
    votes = Counter(s for row in sample if (s := schema_of(row)))
    if votes:
        return votes.most_common(1)[0][0]
    columns = sorted({k for row in sample for k in row})[:12]
    raise InputError(f"{where}: cannot tell the record layout from the columns {columns}: expected alpaca "
                     f"(instruction, input, output), prompt/completion, or chat (messages); set data.column_mapping "
                     f"(e.g. --set data.column_mapping.prompt=body --set data.column_mapping.completion=title)")


# ---------------------------------------------------------------- one row -> unified fields

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def check_text(value: Any, field: str, control_chars: str, nulls: list[str] | None = None) -> str:
    """The field as a clean string, or FieldProblem naming what is wrong with it. A null is read as empty
    and its field name appended to `nulls` (the clean stage calls that row incomplete)."""
    if value is None:
        if nulls is not None:
            nulls.append(field)
        return ""
    if not isinstance(value, str):
        raise FieldProblem(field, f"expected a string, got {_type_name(value)}")
    bad = _SURROGATE.search(value)
    if bad:
        code = ord(bad.group(0))
        if 0xDC80 <= code <= 0xDCFF:
            raise FieldProblem(field, f"invalid UTF-8 (byte 0x{code - 0xDC00:02x})")
        raise FieldProblem(field, f"invalid Unicode (lone surrogate U+{code:04X})")
    ctrl = _CONTROL.search(value)
    if ctrl:
        if control_chars == "reject":
            raise FieldProblem(field, f"control character U+{ord(ctrl.group(0)):04X} "
                                      f"(set clean.control_chars=strip to remove them instead)")
        value = _CONTROL.sub("", value)
    return value


def _label(row: dict[str, Any], column: str | None, control_chars: str) -> str | None:
    """Optional id/category/group: a string or a number, else the row is rejected."""
    if column is None or row.get(column) is None:
        return None
    value = row[column]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise FieldProblem(column, f"expected a string or number, got {_type_name(value)}")
    text = check_text(str(value), column, control_chars).strip()
    return text or None


def _require(row: dict[str, Any], field: str) -> Any:
    if field not in row:
        raise FieldProblem(field, "missing")
    return row[field]


def _join(parts: list[str], sep: str) -> str:
    return sep.join(p for p in parts if p.strip())


def _message_text(message: Any, where: str, control_chars: str) -> tuple[str, str]:
    if not isinstance(message, dict):
        raise FieldProblem(where, f"expected a message object, got {_type_name(message)}")
    role = message.get("role")
    if not isinstance(role, str):
        raise FieldProblem(f"{where}.role", "missing" if role is None else f"expected a string, got {_type_name(role)}")
    content = message.get("content")
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type", "text") == "text"]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise FieldProblem(f"{where}.content", "expected text parts")
        content = "".join(texts)
    return role, check_text(content, f"{where}.content", control_chars, [])


def _from_messages(messages: Any, field: str, join: str, control_chars: str,
                   need_assistant: bool = True) -> tuple[str, str]:
    """(prompt, completion): system and user contents before the last assistant message, and that message."""
    if isinstance(messages, str):  # a CSV cell holding the JSON list
        try:
            messages = parse_json(messages)
        except JsonProblem as exc:
            raise FieldProblem(field, exc.reason) from None
    if not isinstance(messages, list) or not messages:
        raise FieldProblem(field, "expected a non-empty list of messages"
                           if isinstance(messages, list) else f"expected a list, got {_type_name(messages)}")
    parsed = [_message_text(m, f"{field}[{i}]", control_chars) for i, m in enumerate(messages)]
    last = max((i for i, (role, _) in enumerate(parsed) if role == "assistant"), default=None)
    if last is None:
        if need_assistant:
            raise FieldProblem(field, "no assistant message to learn from")
        last = len(parsed)
    prompt = _join([text for role, text in parsed[:last] if role in ("system", "user")], join)
    completion = parsed[last][1] if last < len(parsed) else ""
    return prompt, completion


def to_record(row: dict[str, Any], schema: str, data: DataSection, control_chars: str) -> Record:
    """The unified fields of one raw row; FieldProblem names the field that stops it."""
    id_col, cat_col, group_col = "id", "category", "group"
    nulls: list[str] = []
    if schema == "alpaca":
        instruction = check_text(_require(row, "instruction"), "instruction", control_chars, nulls)
        if data.alpaca_input_required:
            extra = check_text(_require(row, "input"), "input", control_chars, nulls)
            if not extra.strip() and "input" not in nulls:
                nulls.append("input")  # blank: no article to title
        else:
            extra = check_text(row.get("input"), "input", control_chars)
        prompt = _join([instruction, extra], data.alpaca_join)
        completion = check_text(_require(row, "output"), "output", control_chars, nulls)
    elif schema == "prompt_completion":
        raw_prompt, raw_completion = _require(row, "prompt"), _require(row, "completion")
        # trl's conversational prompt/completion: lists of messages on both sides.
        if isinstance(raw_prompt, list):
            prompt, _ = _from_messages(raw_prompt, "prompt", data.alpaca_join, control_chars, need_assistant=False)
        else:
            prompt = check_text(raw_prompt, "prompt", control_chars, nulls)
        if isinstance(raw_completion, list):
            _, completion = _from_messages(raw_completion, "completion", data.alpaca_join, control_chars)
        else:
            completion = check_text(raw_completion, "completion", control_chars, nulls)
    elif schema == "chat":
        prompt, completion = _from_messages(_require(row, "messages"), "messages", data.alpaca_join, control_chars)
    elif schema == "mapping":
        mapping = data.column_mapping
        if mapping is None:
            raise InputError("data.schema=mapping needs data.column_mapping")
        prompt = check_text(_require(row, mapping.prompt), mapping.prompt, control_chars, nulls)
        completion = check_text(_require(row, mapping.completion), mapping.completion, control_chars, nulls)
        id_col, cat_col, group_col = mapping.id, mapping.category, mapping.group
    else:
        raise InputError(f"unknown data.schema '{schema}' (expected one of {', '.join(SCHEMAS)})")
    null_field = None
    if nulls:
        null_field = f"{nulls[0]}: null" if nulls[0] in row and row[nulls[0]] is None else f"{nulls[0]}: blank"
    return Record(prompt=prompt, completion=completion, id=_label(row, id_col, control_chars),
                  category=_label(row, cat_col, control_chars), group=_label(row, group_col, control_chars),
                  null_field=null_field)


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
