"""Every bad input the probes found: exit 2 and one line on stderr, `finegate <command>: error: ...`, never a
traceback; a bug is one line too (exit 70) with its traceback in a log file."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.common.config import RunConfig
from components.common.errors import InputError, one_line
from components.register.run_dir import RunDir, loss_history
from pipelines.cli import main
from tests.clean.rows import alpaca, write_jsonl
from tests.fixtures.stage_outputs import write_stage_output

QUIET = ["--set", "data.min_samples=1", "--set", "gates.loosened.data.min_samples=a few-row test input",
         "--set", "clean.write_chart=false", "--set", "clean.workers=1"]


def cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, command: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"finegate {command}: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def split_dir(tmp_path, bad_line: bytes | None = None):
    """A split stage output (report and manifest included), each split ending in `bad_line` when given."""
    files = {}
    for name in ("train", "val", "test"):
        rows = [{"id": f"{name}-{i}", "source_line": i + 1, "prompt": f"記事{i}の本文です。", "completion": f"題{i}"}
                for i in range(3)]
        files[f"{name}.jsonl"] = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows) \
            + (bad_line + b"\n" if bad_line else b"")
    return write_stage_output(tmp_path / "split", "split", files)


def train_output(tmp_path):
    """A train stage output whose merged model is an empty folder (nothing a loader can use)."""
    return write_stage_output(tmp_path / "model", "train", {"merged/config.json": "{}"})


# ---------------------------------------------------------------- huge numbers and deep nesting


def test_clean_rejects_a_5000_digit_integer_row_and_carries_on(tmp_path, capsys):
    lines = [alpaca(1), '{"instruction": "x", "input": "y", "output": "z", "n": ' + "1" * 5000 + "}", alpaca(3)]
    raw = write_jsonl(tmp_path / "raw.jsonl", lines)
    code, err = cli(capsys, "clean", "--input", raw, "--output-dir", tmp_path / "out", *QUIET)
    assert code == 0, err
    kept = (tmp_path / "out" / "kept.jsonl").read_text(encoding="utf-8").splitlines()
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    assert [json.loads(line)["source_line"] for line in kept] == [1, 3]
    assert [(r["source_line"], r["rule"]) for r in rejected] == [(2, "bad_input")]
    assert "a number of 5000 digits" in rejected[0]["reason"]


def test_check_overfit_refuses_a_401_digit_float(tmp_path, capsys):
    state = tmp_path / "trainer_state.json"
    state.write_text('{"log_history": [{"step": 1, "eval_loss": ' + "9" * 401 + ".0}]}")
    assert_one_line_error(*cli(capsys, "check-overfit", state), "check-overfit", "trainer_state.json", "digits")


def test_check_overfit_refuses_200k_deep_nesting(tmp_path, capsys):
    state = tmp_path / "trainer_state.json"
    state.write_text('{"log_history": ' + "[" * 200_000 + "]" * 200_000 + "}")
    assert_one_line_error(*cli(capsys, "check-overfit", state), "check-overfit", "nested more than")


@pytest.mark.parametrize("content", ['{"log_history": [{"step": 1, "loss": ' + "9" * 401 + "}]}",
                                     '{"log_history": ' + "[" * 200_000 + "]" * 200_000 + "}",
                                     '{"log_history": 3}'])
def test_register_reads_the_trainer_state_through_the_limits(tmp_path, content):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "trainer_state.json").write_text(content)
    with pytest.raises(InputError, match="trainer_state.json"):
        loss_history(RunDir(tmp_path))


# ---------------------------------------------------------------- invalid UTF-8 in stage inputs


def test_split_names_the_line_with_invalid_utf8(tmp_path, capsys):
    kept = write_jsonl(tmp_path / "rows.jsonl", [{"id": "a", "source_line": 1, "prompt": "p", "completion": "c"},
                                                 b'{"id": "b", "source_line": 2, "prompt": "\xff", "completion": "c"}'])
    kept = write_stage_output(tmp_path / "clean", "clean", {"kept.jsonl": kept}) / "kept.jsonl"
    code, err = cli(capsys, "split", "--input", kept, "--output-dir", tmp_path / "out")
    assert_one_line_error(code, err, "split", f"{kept}:2: invalid UTF-8 (byte 0xff")


def test_check_outputs_names_the_line_with_invalid_utf8(tmp_path, capsys):
    rows = write_jsonl(tmp_path / "outputs.jsonl", [{"output": "題"}, b'{"output": "\xc3\x28"}'])
    code, err = cli(capsys, "check-outputs", "--input", rows, "--output", tmp_path / "flagged.jsonl")
    assert_one_line_error(code, err, "check-outputs", f"{rows}:2: invalid UTF-8 (byte 0xc3")


@pytest.mark.parametrize("command", ["train", "hf-check", "gguf", "evaluate"])
def test_model_stages_name_the_split_line_with_invalid_utf8(tmp_path, capsys, command):
    data = split_dir(tmp_path, b'{"id": "x", "source_line": 9, "prompt": "\xfe", "completion": "c"}')
    model = train_output(tmp_path)
    args = {"train": ["--data-dir", data, "--base-model", model / "merged"],
            "hf-check": ["--model-dir", model, "--data-dir", data],
            "gguf": ["--model-dir", model, "--data-dir", data],
            "evaluate": ["--gguf-dir", model / "m.gguf", "--data-dir", data]}[command]
    code, err = cli(capsys, command, *args, "--output-dir", tmp_path / "out")
    assert_one_line_error(code, err, command, ".jsonl:4: invalid UTF-8 (byte 0xfe")


# ---------------------------------------------------------------- configuration


def test_a_non_utf8_config_is_one_line(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_bytes("split:\n  seed: 7  # café\n".encode("latin-1"))
    code, err = cli(capsys, "split", "--input", tmp_path / "kept.jsonl", "--output-dir", tmp_path / "o", "--config", config)
    assert_one_line_error(code, err, "split", f"{config}:2: invalid UTF-8 (byte 0xe9")


def test_invalid_yaml_is_one_line_with_its_position(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("split:\n  seed: [1, 2\n  ratios: {\n")
    code, err = cli(capsys, "split", "--input", tmp_path / "kept.jsonl", "--output-dir", tmp_path / "o", "--config", config)
    assert_one_line_error(code, err, "split", f"{config}:3:9: invalid YAML: expected ',' or ']'",
                          "flow sequence at line 2, column 9")


@pytest.mark.parametrize("value", ["null", "[0.8, null, 0.2]", "[0.8, [1], 0.1]", "[.nan, 0.5, 0.5]", "nan/10/10",
                                   "[true, 0.5]"])
def test_bad_split_ratios_name_the_setting(tmp_path, capsys, value):
    code, err = cli(capsys, "split", "--input", tmp_path / "kept.jsonl", "--output-dir", tmp_path / "o",
                    "--set", f"split.ratios={value}")
    assert_one_line_error(code, err, "split", "split.ratios")


def test_a_nan_threshold_is_refused(tmp_path, capsys):
    code, err = cli(capsys, "split", "--input", tmp_path / "kept.jsonl", "--output-dir", tmp_path / "o",
                    "--set", "gates.max_val_loss=.nan")
    assert_one_line_error(code, err, "split", "gates.max_val_loss")


def test_a_set_value_yaml_cannot_read_is_text(tmp_path, capsys):
    code, err = cli(capsys, "split", "--input", tmp_path / "kept.jsonl", "--output-dir", tmp_path / "o",
                    "--set", "split.seed=" + "9" * 5000)
    assert_one_line_error(code, err, "split", "split.seed")


def test_a_usage_error_is_one_line(capsys):
    code, err = cli(capsys, "split", "--nope")
    assert_one_line_error(code, err, "split", "--input", "(see finegate split --help)")


# ---------------------------------------------------------------- folders and files that are not what they should be


def test_split_on_a_folder_without_kept_jsonl(tmp_path, capsys):
    code, err = cli(capsys, "split", "--input", tmp_path, "--output-dir", tmp_path / "out")
    assert_one_line_error(code, err, "split", f"{tmp_path}: no report.json: not a finished 'clean' output")


@pytest.mark.parametrize("command", ["train", "hf-check", "gguf"])
def test_an_empty_model_folder_is_one_line(tmp_path, capsys, command):
    data, model = split_dir(tmp_path), tmp_path / "model"
    model.mkdir()  # not even a train output: refused before any loader sees it
    args = {"train": ["--data-dir", data, "--base-model", model], "hf-check": ["--model-dir", model, "--data-dir", data],
            "gguf": ["--model-dir", model, "--data-dir", data]}[command]
    code, err = cli(capsys, command, *args, "--output-dir", tmp_path / "out")
    assert_one_line_error(code, err, command, str(model))


def corrupt_parquet() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"instruction": ["指示"] * 50, "input": ["本文"] * 50, "output": ["題"] * 50}), buf)
    data = bytearray(buf.getvalue())
    data[-12:-8] = b"\x0f\x0f\x0f\x0f"  # inside the footer's thrift metadata: pyarrow's message spans lines
    return bytes(data)


@pytest.mark.parametrize("content", [lambda: corrupt_parquet(), lambda: corrupt_parquet()[: len(corrupt_parquet()) // 2]])
def test_a_broken_parquet_file_is_one_line_naming_it(tmp_path, capsys, content):
    path = tmp_path / "raw.parquet"
    path.write_bytes(content())
    code, err = cli(capsys, "clean", "--input", path, "--output-dir", tmp_path / "out", *QUIET)
    assert_one_line_error(code, err, "clean", f"{path}: not a readable Parquet file")


# ---------------------------------------------------------------- the safety net in main()


def test_an_os_error_is_bad_input_in_one_line(tmp_path, capsys):
    rows = write_jsonl(tmp_path / "outputs.jsonl", [{"output": "題"}])
    (tmp_path / "file").write_text("")
    code, err = cli(capsys, "check-outputs", "--input", rows, "--output", tmp_path / "file" / "flagged.jsonl")
    assert_one_line_error(code, err, "check-outputs", str(tmp_path / "file"))


def test_a_bug_is_one_line_with_a_pointer_to_its_traceback(tmp_path, capsys, monkeypatch):
    import components.split.core

    def broken(*args, **kwargs):
        return {}["no such key"]  # a genuine bug inside a stage

    monkeypatch.setattr(components.split.core, "run_split", broken)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    code, err = cli(capsys, "split", "--input", tmp_path / "kept.jsonl", "--output-dir", tmp_path / "out")
    assert code == 70 and err.count("\n") == 1, err
    assert err.startswith("finegate split: internal error (a bug in finegate") and "KeyError" in err
    log = err.rsplit("traceback in ", 1)[1].strip()
    assert "Traceback" in open(log, encoding="utf-8").read() and "no such key" in open(log, encoding="utf-8").read()


def test_one_line_joins_lines_and_escapes_control_characters():
    assert one_line("Couldn't deserialize thrift: x\nDeserializing page header failed.\n") == \
        "Couldn't deserialize thrift: x; Deserializing page header failed."
    assert one_line("bad \x1b[31m\x00 byte") == "bad \\x1b[31m\\x00 byte"


def test_the_default_config_is_untouched_by_these_tests():
    assert RunConfig().split.ratios == (0.8, 0.1, 0.1)


def test_a_parquet_file_with_a_column_name_that_is_not_utf8_is_one_line(tmp_path, capsys):
    buf = io.BytesIO()
    pq.write_table(pa.table({"instruction": ["指示"], "input": ["本文"], "output": ["題"]}), buf)
    path = tmp_path / "raw.parquet"
    path.write_bytes(buf.getvalue().replace(b"instruction", b"\x90nstruction"))  # found by tests/fuzz
    code, err = cli(capsys, "clean", "--input", path, "--output-dir", tmp_path / "out", *QUIET)
    assert_one_line_error(code, err, "clean", f"{path}: not a readable Parquet file")


@pytest.mark.parametrize("command", ["train", "hf-check"])
def test_a_model_folder_the_loader_chokes_on_is_one_line(tmp_path, capsys, command):
    data = split_dir(tmp_path)
    # found by tests/fuzz: the tokenizer's ValueError escaped
    model = write_stage_output(tmp_path / "model", "train", {"merged/config.json": '{"model_type": "llama"}',
                                                             "merged/model.safetensors": b""}) / "merged"
    args = {"train": ["--data-dir", data, "--base-model", model], "hf-check": ["--model-dir", model, "--data-dir", data]}[command]
    code, err = cli(capsys, command, *args, "--output-dir", tmp_path / "out")
    assert_one_line_error(code, err, command, str(model))
