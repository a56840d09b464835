"""The report every stage writes: `{"stage", "passed", "reasons", "metrics", ...}` (DESIGN.md, contracts)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.common.errors import InputError, row_problem

REPORT_NAME = "report.json"

# Limits of the one JSON reader every stage reads its inputs through. Python's json module has none that
# fail politely: a 5000-digit integer raises ValueError, deep nesting RecursionError, and one endless line
# is read into memory whole. Not user settings: each is orders of magnitude above what an honest file holds.
# A 64-bit id has 20 digits and a double 17 significant ones; 100 digits still convert to a float.
MAX_NUMBER_DIGITS = 100
# A chat row is 4 containers deep (row, messages, message, content parts); json and every recursive walker
# (json.dumps of a rejected row, the report writer) give up near 1000.
MAX_DEPTH = 64
# One JSONL record: a 128k-token article is under 1 MB of UTF-8.
MAX_LINE_BYTES = 16 * 2**20
# One whole JSON or text file: a long run's trainer_state.json is tens of MB.
MAX_DOCUMENT_BYTES = 256 * 2**20
_BOM = b"\xef\xbb\xbf"
_MANTISSA = re.compile(r"[eE].*")


@dataclass
class StageReport:
    stage: str
    passed: bool = True
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        """Records one reason the stage's gate says no; a report with any reason has not passed."""
        self.passed = False
        self.reasons.append(reason)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "passed": self.passed, "reasons": self.reasons,
                "metrics": _finite(self.metrics), **_finite(self.details)}

    def write(self, output_dir: str | Path) -> Path:
        out = Path(output_dir) / REPORT_NAME
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(REPORT_NAME + ".part")
        partial.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        partial.replace(out)  # a reader sees the old report or the new one, never half of one
        return out


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null rather than emit invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_jsonl(path: str | Path, rows) -> int:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


class JsonProblem(ValueError):
    """Why a text is not JSON a stage accepts: one line, without the file and line (the caller adds them).
    `line` is the text's line the problem is on, when it is known."""

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason)
        self.reason, self.line = reason, line


def _bounded_int(token: str) -> int:
    if len(token) - token.startswith("-") > MAX_NUMBER_DIGITS:
        raise JsonProblem(f"a number of {len(token.lstrip('-'))} digits (at most {MAX_NUMBER_DIGITS})")
    return int(token)


def _bounded_float(token: str) -> float:
    digits = sum(ch.isdigit() for ch in _MANTISSA.sub("", token))
    if digits > MAX_NUMBER_DIGITS:
        raise JsonProblem(f"a number of {digits} digits (at most {MAX_NUMBER_DIGITS})")
    return float(token)


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_json(text: str, strict: bool = True) -> Any:
    """`json.loads` within the limits above; JsonProblem says what is wrong. NaN and Infinity are accepted
    (Hugging Face writes a diverged loss as NaN). strict=False lets control characters through inside
    strings, for a reader that checks them itself."""
    try:
        value = json.loads(text, strict=strict, parse_int=_bounded_int, parse_float=_bounded_float)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}" if "\n" in text.rstrip("\n") else f"column {exc.colno}"
        raise JsonProblem(f"invalid JSON ({exc.msg} at {where})", exc.lineno) from None
    except RecursionError:
        raise JsonProblem(f"JSON nested more than {MAX_DEPTH} levels deep") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise JsonProblem(f"JSON nested more than {MAX_DEPTH} levels deep")
    return value


def decode_utf8(data: bytes) -> str:
    """The bytes as text, or JsonProblem naming the first invalid byte and its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise JsonProblem(f"invalid UTF-8 (byte 0x{data[exc.start]:02x} at byte {column} of the line)", line) from None


def _open_binary(p: Path, what: str):
    if p.is_dir():
        raise InputError(f"{p}: a folder, not a file ({what})")
    try:
        return p.open("rb")
    except FileNotFoundError:
        raise InputError(f"{p}: no such file ({what})") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None


def iter_lines(path: str | Path, what: str = "a JSON Lines file") -> Iterator[tuple[int, bytes | None]]:
    """(1-based line number, the line's bytes without its line end) for every physical line, split at
    newlines only; None for a line longer than MAX_LINE_BYTES, which is skipped without being held whole.
    A byte-order mark at the start of the file is dropped."""
    p = Path(path)
    with _open_binary(p, what) as f:
        line_no = 0
        while chunk := f.readline(MAX_LINE_BYTES + 1):
            line_no += 1
            if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
                while chunk and not chunk.endswith(b"\n"):
                    chunk = f.readline(MAX_LINE_BYTES)
                yield line_no, None
                continue
            chunk = chunk.rstrip(b"\r\n")
            yield line_no, chunk.removeprefix(_BOM) if line_no == 1 else chunk


def line_too_long() -> str:
    return f"line longer than {MAX_LINE_BYTES} bytes (the reader's limit for one record)"


def iter_jsonl(path: str | Path, what: str = "a record") -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) for every non-blank line. A line that is not a JSON object (or breaks
    a limit above, or is not UTF-8) ends the read with an InputError naming the file and line: stage
    inputs are machine-written, so one bad line means the file is not what the stage expects."""
    p = Path(path)
    for line_no, data in iter_lines(p, f"JSON Lines, each line {what}"):
        if data is None:
            raise InputError(row_problem(str(p), line_no, None, line_too_long()))
        if not data.strip():
            continue
        try:
            row = parse_json(decode_utf8(data))
        except JsonProblem as exc:
            raise InputError(row_problem(str(p), line_no, None, exc.reason)) from None
        if not isinstance(row, dict):
            raise InputError(row_problem(str(p), line_no, None, f"expected a JSON object ({what})"))
        yield line_no, row


def read_jsonl(path: str | Path, what: str = "a record") -> list[dict[str, Any]]:
    return [row for _, row in iter_jsonl(path, what)]


def read_text(path: str | Path, what: str = "a text file") -> str:
    """A whole UTF-8 file of at most MAX_DOCUMENT_BYTES; InputError names the file (and line) otherwise."""
    p = Path(path)
    with _open_binary(p, what) as f:
        data = f.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(f"{p}: larger than {MAX_DOCUMENT_BYTES} bytes (the reader's limit); not {what}")
    try:
        return decode_utf8(data.removeprefix(_BOM))
    except JsonProblem as exc:
        raise InputError(_located(p, exc)) from None


def read_json(path: str | Path, what: str = "a JSON file") -> Any:
    """A whole JSON document, within the limits above; InputError names the file (and line) otherwise."""
    text = read_text(path, what)
    try:
        return parse_json(text)
    except JsonProblem as exc:
        raise InputError(_located(Path(path), exc)) from None


def _located(p: Path, exc: JsonProblem) -> str:
    return f"{p}:{exc.line}: {exc.reason}" if exc.line else f"{p}: {exc.reason}"


def read_report(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / REPORT_NAME
    data = read_json(p, "a stage report")
    if not isinstance(data, dict):
        raise InputError(f"{p}: not a stage report (expected a JSON object)")
    return data
