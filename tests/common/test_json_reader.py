"""The one JSON reader (components/common/report.py): limits that fail as an InputError naming file and line."""

from __future__ import annotations

import json

import pytest

from components.common import report
from components.common.errors import InputError
from components.common.report import JsonProblem, iter_jsonl, parse_json, read_json, read_jsonl


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_a_5000_digit_integer_names_file_and_line(tmp_path):
    path = write(tmp_path / "rows.jsonl", b'{"a": 1}\n{"n": ' + b"7" * 5000 + b"}\n")
    with pytest.raises(InputError, match=rf"^{tmp_path}/rows.jsonl:2: a number of 5000 digits \(at most 100\)$"):
        read_jsonl(path)


def test_a_401_digit_float_is_refused(tmp_path):
    path = write(tmp_path / "trainer_state.json", b'{"log_history": [{"loss": ' + b"9" * 401 + b'.5}]}')
    with pytest.raises(InputError, match=r"trainer_state.json: a number of 402 digits"):
        read_json(path)


def test_deep_nesting_is_refused_without_recursion_error(tmp_path):
    deep = b'{"log_history": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(InputError, match=r"trainer_state.json: JSON nested more than 64 levels deep"):
        read_json(write(tmp_path / "trainer_state.json", deep))


def test_nesting_up_to_the_limit_is_read():
    assert parse_json("[" * report.MAX_DEPTH + "]" * report.MAX_DEPTH) is not None
    with pytest.raises(JsonProblem, match="nested"):
        parse_json("[" * (report.MAX_DEPTH + 1) + "]" * (report.MAX_DEPTH + 1))


def test_ordinary_numbers_nan_and_long_ids_are_read():
    assert parse_json('{"id": 18446744073709551615, "loss": NaN, "lr": 2.5e-05}')["id"] == 2**64 - 1


def test_invalid_utf8_names_file_line_and_byte(tmp_path):
    path = write(tmp_path / "val.jsonl", b'{"prompt": "ok"}\n{"prompt": "\xff"}\n')
    with pytest.raises(InputError, match=r"val.jsonl:2: invalid UTF-8 \(byte 0xff at byte 13 of the line\)"):
        read_jsonl(path)


def test_invalid_utf8_in_a_json_document_names_its_line(tmp_path):
    path = write(tmp_path / "report.json", b'{\n  "stage": "clean",\n  "x": "\xfe"\n}')
    with pytest.raises(InputError, match=r"report.json:3: invalid UTF-8"):
        read_json(path)


def test_a_line_over_the_limit_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "MAX_LINE_BYTES", 64)
    path = write(tmp_path / "rows.jsonl", b'{"a": 1}\n{"a": "' + b"x" * 500 + b'"}\n{"a": 3}\n')
    assert [n for n, line in report.iter_lines(path) if line is None] == [2]
    with pytest.raises(InputError, match=r"rows.jsonl:2: line longer than"):
        read_jsonl(path)


def test_a_folder_or_a_missing_file_is_one_input_error(tmp_path):
    with pytest.raises(InputError, match="a folder, not a file"):
        read_jsonl(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_jsonl(tmp_path / "kept.jsonl")


def test_byte_order_mark_and_crlf_are_read(tmp_path):
    path = write(tmp_path / "rows.jsonl", b'\xef\xbb\xbf{"a": 1}\r\n\r\n{"a": 2}\r\n')
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (3, {"a": 2})]


def test_a_report_must_be_an_object(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps([1, 2]))
    with pytest.raises(InputError, match="not a stage report"):
        report.read_report(tmp_path)
