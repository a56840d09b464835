"""Malformed files: every bad row is rejected with its line and field, and the rest of the file goes on.
JSONL, CSV and Parquet; a broken file or an unknown format stops the stage with an InputError."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.clean.core import run_clean
from components.common.config import RunConfig
from components.common.errors import InputError
from tests.clean.rows import INSTRUCTION, alpaca, body, by_line, read_out, title, write_jsonl


@pytest.fixture
def cfg() -> RunConfig:
    cfg = RunConfig()
    cfg.data.min_samples = 1
    cfg.clean.write_chart = False
    return cfg


def run(path, tmp_path, cfg):
    run_clean(path, tmp_path / "out", cfg)
    kept, rejected, report = read_out(tmp_path / "out")
    assert report["metrics"]["rows_in"] == len(kept) + len(rejected)
    return by_line(kept, rejected), report


# ---------------------------------------------------------------- JSONL


def test_jsonl_bad_rows_are_rejected_with_line_and_field(tmp_path, cfg):
    good = json.dumps(alpaca(1), ensure_ascii=False).encode()
    rows = [
        b"\xef\xbb\xbf" + good,                                                     # 1 BOM at file start: kept
        b'{"instruction": "x", "input": "abc',                                      # 2 invalid JSON
        json.dumps({**alpaca(3), "output": 42}),                                    # 3 wrong type
        json.dumps({"instruction": INSTRUCTION, "input": body(4)}),                 # 4 missing field
        json.dumps(alpaca(5), ensure_ascii=False).encode().replace("本文です".encode(), b"\xff\xfe", 1),  # 5 bad UTF-8
        b"\xef\xbb\xbf" + json.dumps(alpaca(6)).encode(),                           # 6 BOM mid-file
        json.dumps(alpaca(7, "ベル\u0007の話を書いた")),                           # 7 control character
        "[1, 2, 3]",                                                                # 8 not an object
        "   ",                                                                      # 9 blank line
        json.dumps({**alpaca(10), "input": ["a", "b"]}),                            # 10 wrong type (list)
        alpaca(11),                                                                 # 11 fine
    ]
    got, _ = run(write_jsonl(tmp_path / "in.jsonl", rows), tmp_path, cfg)
    reason = {line: r.get("reason") for line, r in got.items()}
    assert got[1]["rule"] == "kept" and got[11]["rule"] == "kept"
    where = str(tmp_path / "in.jsonl")
    assert reason[2].startswith(f"bad_input: {where}:2: invalid JSON")
    assert reason[3] == f"bad_input: {where}:3: field 'output': expected a string, got a number"
    assert reason[4] == f"bad_input: {where}:4: field 'output': missing"
    assert reason[5] == f"bad_input: {where}:5: field 'input': invalid UTF-8 (byte 0xff)"
    assert reason[6] == f"bad_input: {where}:6: byte-order mark in the middle of the file (files concatenated?)"
    assert reason[7].startswith(f"bad_input: {where}:7: field 'output': control character U+0007")
    assert reason[8] == f"bad_input: {where}:8: expected a JSON object, got a list"
    assert reason[9] == f"empty_line: {where}:9: blank line"
    assert reason[10] == f"bad_input: {where}:10: field 'input': expected a string, got a list"


def test_rejected_bad_bytes_stay_visible_and_valid_json(tmp_path, cfg):
    line = json.dumps(alpaca(5), ensure_ascii=False).encode().replace("本文です".encode(), b"\xff", 1)
    got, _ = run(write_jsonl(tmp_path / "in.jsonl", [line, b"{not json \xfe}"]), tmp_path, cfg)
    assert "\udcff" in got[1]["raw"]["input"]  # the byte, escaped as JSON can carry it
    assert got[2]["raw"] == "{not json \\xfe}"


def test_chat_messages_become_prompt_and_completion(tmp_path, cfg):
    row = {"messages": [{"role": "system", "content": "あなたは編集者です。"},
                        {"role": "user", "content": body(1)},
                        {"role": "assistant", "content": title(1)}]}
    no_answer = {"messages": [{"role": "user", "content": body(2)}]}
    bad_role = {"messages": [{"content": body(3)}, {"role": "assistant", "content": title(3)}]}
    got, report = run(write_jsonl(tmp_path / "chat.jsonl", [row, no_answer, bad_role]), tmp_path, cfg)
    assert got[1]["prompt"] == "あなたは編集者です。\n\n" + body(1) and got[1]["completion"] == title(1)
    assert got[2]["reason"].endswith(":2: field 'messages': no assistant message to learn from")
    assert got[3]["reason"].endswith(":3: field 'messages[0].role': missing")
    assert report["input"]["schema"] == "chat"


def test_prompt_completion_rows_plain_and_conversational(tmp_path, cfg):
    rows = [{"prompt": body(1), "completion": title(1)},
            {"prompt": [{"role": "user", "content": body(2)}],
             "completion": [{"role": "assistant", "content": title(2)}]}]
    got, report = run(write_jsonl(tmp_path / "pc.jsonl", rows), tmp_path, cfg)
    assert (got[1]["prompt"], got[1]["completion"]) == (body(1), title(1))
    assert (got[2]["prompt"], got[2]["completion"]) == (body(2), title(2))
    assert report["input"]["schema"] == "prompt_completion"


def test_unknown_columns_need_a_mapping(tmp_path, cfg):
    path = write_jsonl(tmp_path / "x.jsonl", [{"body": body(1), "title": title(1)}])
    with pytest.raises(InputError, match=r"cannot tell the record layout from the columns \['body', 'title'\]"):
        run_clean(path, tmp_path / "out", cfg)
    cfg.data.column_mapping = {"prompt": "body", "completion": "title", "id": "no_such_column"}
    got, report = run(path, tmp_path, cfg)
    assert got[1]["prompt"] == body(1) and got[1]["id"] == "row-1" and report["input"]["schema"] == "mapping"


def test_json_array_file_is_refused_with_a_fix(tmp_path, cfg):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([alpaca(1)]), encoding="utf-8")
    with pytest.raises(InputError, match="a JSON array, not JSON Lines"):
        run_clean(path, tmp_path / "out", cfg)


def test_unknown_format_is_refused(tmp_path, cfg):
    path = tmp_path / "rows.txt"
    path.write_text("instruction\tinput\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"unknown format '\.txt'"):
        run_clean(path, tmp_path / "out", cfg)


def test_missing_file_is_refused(tmp_path, cfg):
    with pytest.raises(InputError, match="no such file"):
        run_clean(tmp_path / "nope.jsonl", tmp_path / "out", cfg)


# ---------------------------------------------------------------- CSV


def write_csv(path, header, rows, bom=False, raw_tail=b""):
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    with path.open("ab") as f:
        f.write(raw_tail)
    return path


def test_csv_bad_rows_are_rejected_with_row_and_field(tmp_path, cfg):
    header = ["instruction", "input", "output", "category"]
    rows = [
        [INSTRUCTION, body(1), title(1), "hobby"],                # 1 fine (file has a BOM)
        [INSTRUCTION, body(2) + "\n2行目", title(2), "hobby"],     # 2 fine, a quoted line break
        [INSTRUCTION, body(3), title(3)],                          # 3 too few fields
        [],                                                        # 4 blank row
        [INSTRUCTION, body(5), "ベル\x07の話", "hobby"],           # 5 control character
    ]
    tail = (f'{INSTRUCTION},"{body(6)}","{title(6)}",hobby\n'.encode().replace("本文です".encode(), b"\xff", 1)  # 6 bad UTF-8
            + f'{INSTRUCTION},"{body(7)}" trailing,"{title(7)}",x\n'.encode()                                  # 7 bad quoting
            + f"{INSTRUCTION},{body(8)},{title(8)},food\n".encode())                                           # 8 fine
    path = write_csv(tmp_path / "in.csv", header, rows, bom=True, raw_tail=tail)
    got, report = run(path, tmp_path, cfg)
    where = str(path)
    assert [line for line, r in got.items() if r["rule"] == "kept"] == [1, 2, 8]
    assert got[1]["category"] == "hobby" and got[2]["prompt"].endswith("\n2行目")
    assert got[3]["reason"] == f"bad_input: {where}:3: row has 3 fields, the header has 4"
    assert got[4]["rule"] == "empty_line"
    assert got[5]["reason"].startswith(f"bad_input: {where}:5: field 'output': control character U+0007")
    assert got[6]["reason"] == f"bad_input: {where}:6: field 'input': invalid UTF-8 (byte 0xff)"
    assert got[7]["reason"].startswith(f"bad_input: {where}:7: malformed CSV")
    assert report["input"]["format"] == "csv"


def test_csv_with_a_column_mapping(tmp_path, cfg):
    path = write_csv(tmp_path / "notes.csv", ["本文", "タイトル", "カテゴリ"], [[body(1), title(1), "food"]])
    cfg.data.column_mapping = {"prompt": "本文", "completion": "タイトル", "category": "カテゴリ"}
    got, _ = run(path, tmp_path, cfg)
    assert got[1] == {"id": "row-1", "source_line": 1, "prompt": body(1), "completion": title(1),
                      "category": "food", "rule": "kept"}


def test_tsv_is_read_with_tabs(tmp_path, cfg):
    path = tmp_path / "in.tsv"
    path.write_text(f"prompt\tcompletion\n{body(1)}\t{title(1)}\n", encoding="utf-8")
    got, _ = run(path, tmp_path, cfg)
    assert got[1]["completion"] == title(1)


# ---------------------------------------------------------------- Parquet


def test_parquet_bad_cells_are_rejected_with_row_and_field(tmp_path, cfg):
    table = pa.table({
        "instruction": pa.array([INSTRUCTION] * 4),
        "input": pa.array([body(1).encode(), b"\xff\xfe" + body(2).encode(), body(3).encode(), body(4).encode()],
                          type=pa.binary()),
        "output": pa.array([title(1), title(2), None, "自己紹介｜子育て｜ワーママ｜30代"]),
        "category": pa.array(["a", "b", "c", "d"]),
    })
    path = tmp_path / "in.parquet"
    pq.write_table(table, path)
    got, report = run(path, tmp_path, cfg)
    where = str(path)
    assert got[1]["rule"] == "kept" and got[1]["category"] == "a"
    assert got[2]["reason"] == f"bad_input: {where}:2: field 'input': invalid UTF-8 (byte 0xff)"
    assert got[3]["reason"] == "incomplete: output: null"
    assert got[4]["rule"] == "tag_list"
    assert report["input"]["format"] == "parquet"


def test_parquet_wrong_type_and_nested_chat(tmp_path, cfg):
    messages = [[{"role": "user", "content": body(1)}, {"role": "assistant", "content": title(1)}],
                [{"role": "user", "content": body(2)}, {"role": "assistant", "content": title(2)}]]
    path = tmp_path / "chat.parquet"
    pq.write_table(pa.table({"messages": messages, "id": [10, 11]}), path)
    got, _ = run(path, tmp_path, cfg)
    assert got[1]["completion"] == title(1) and got[1]["id"] == "10"

    path = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"prompt": [body(1), body(2)], "completion": pa.array([1, 2])}), path)
    got, _ = run(path, tmp_path, cfg)
    assert got[1]["reason"] == f"bad_input: {path}:1: field 'completion': expected a string, got a number"


def test_corrupt_parquet_is_refused(tmp_path, cfg):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 20)
    with pytest.raises(InputError, match="not a readable Parquet file"):
        run_clean(path, tmp_path / "out", cfg)


def test_a_line_over_the_reader_limit_is_one_rejected_row(tmp_path, cfg, monkeypatch):
    from components.common import report

    monkeypatch.setattr(report, "MAX_LINE_BYTES", 2000)
    long_row = {**alpaca(2), "input": body(2, length=1000)}
    got, _ = run(write_jsonl(tmp_path / "in.jsonl", [alpaca(1), long_row, alpaca(3)]), tmp_path, cfg)
    assert got[1]["rule"] == "kept" and got[3]["rule"] == "kept"
    assert got[2]["rule"] == "bad_input" and got[2]["reason"] == f"bad_input: {tmp_path / 'in.jsonl'}:2: line longer than 2000 bytes (the reader's limit for one record)"
