"""`finegate split`: exit codes, the report on stdout, reasons on stderr, and s3:// input on moto's server."""

from __future__ import annotations

import json

import pytest

from components.common import storage
from pipelines import cli
from tests.split.kept_rows import kept_row, write_kept

SMALL_MINIMUMS = ["--set", "split.min_train=1", "--set", "split.min_val=1", "--set", "split.min_test=1"]


@pytest.fixture(autouse=True)
def split_subcommand_only(monkeypatch):
    # The real dispatcher, limited to the subcommand under test, so these tests do not depend on
    # other stages' CLI modules being importable.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["components.split.cli"])


def split(*args: str) -> int:
    return cli.main(["split", *args])


@pytest.fixture
def kept(tmp_path):
    return write_kept(tmp_path / "kept.jsonl", [kept_row(i, ["a", "b"][i % 2]) for i in range(60)])


def test_passing_split_exits_0_and_prints_the_report(kept, tmp_path, capsys):
    assert split("--input", str(kept), "--output-dir", str(tmp_path / "out"), *SMALL_MINIMUMS) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["stage"] == "split" and printed["passed"] is True
    assert printed["metrics"]["train_rows"] + printed["metrics"]["val_rows"] + printed["metrics"]["test_rows"] == 60
    assert json.loads((tmp_path / "out" / "report.json").read_text())["outputs"] == printed["outputs"]


def test_leak_exits_1_with_the_pairs_on_stderr(tmp_path, capsys):
    rows = [kept_row(i) for i in range(40)]
    for k in range(20):
        twin = kept_row(100 + k)
        twin["prompt"] = rows[k]["prompt"] + "！"
        rows.append(twin)
    kept = write_kept(tmp_path / "kept.jsonl", rows)
    code = split("--input", str(kept), "--output-dir", str(tmp_path / "out"), *SMALL_MINIMUMS,
                 "--set", "split.cluster_near_duplicates=false")
    err = capsys.readouterr().err
    assert code == 1
    assert "gate failed: split: leak: near duplicate prompt across" in err and "(source_line " in err


def test_too_small_split_exits_2_with_one_line(kept, tmp_path, capsys):
    code = split("--input", str(kept), "--output-dir", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("finegate split: error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith("finegate split: error: train would get 48 rows (80% of 60 kept rows), "
                                "fewer than split.min_train=100")


def test_missing_input_and_bad_config_exit_2(tmp_path, capsys):
    assert split("--input", str(tmp_path / "nope.jsonl"), "--output-dir", str(tmp_path / "out")) == 2
    assert "nope.jsonl: no such file" in capsys.readouterr().err
    kept = write_kept(tmp_path / "kept.jsonl", [kept_row(0)])
    assert split("--input", str(kept), "--output-dir", str(tmp_path / "out"), "--set", "split.ratios=50/50/50") == 2
    assert "split.ratios" in capsys.readouterr().err


def test_s3_input_gives_the_same_split_as_the_local_file(kept, tmp_path, s3_bucket, capsys):
    storage.publish(kept.parent, f"s3://{s3_bucket}/run/clean")
    uri = f"s3://{s3_bucket}/run/clean/kept.jsonl"
    assert split("--input", uri, "--output-dir", str(tmp_path / "from_s3"), *SMALL_MINIMUMS) == 0
    assert split("--input", str(kept), "--output-dir", str(tmp_path / "local"), *SMALL_MINIMUMS) == 0
    for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
        assert (tmp_path / "from_s3" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_s3_input_that_is_missing_or_corrupted_exits_2(kept, tmp_path, s3_bucket, capsys):
    assert split("--input", f"s3://{s3_bucket}/absent/kept.jsonl", "--output-dir", str(tmp_path / "a")) == 2
    assert "no such object" in capsys.readouterr().err
    storage.publish(kept.parent, f"s3://{s3_bucket}/bad")
    storage.s3_client().put_object(Bucket=s3_bucket, Key="bad/kept.jsonl", Body=kept.read_bytes(),
                                   Metadata={"sha256": "0" * 64})
    assert split("--input", f"s3://{s3_bucket}/bad/kept.jsonl", "--output-dir", str(tmp_path / "b")) == 2
    assert "sha256 mismatch" in capsys.readouterr().err


def test_s3_output_is_written_to_the_bucket_not_to_a_local_folder(kept, tmp_path, s3_bucket, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = f"s3://{s3_bucket}/run/split"
    assert split("--input", str(kept), "--output-dir", out, *SMALL_MINIMUMS) == 0
    assert not (tmp_path / "s3:").exists()
    keys = {u.rsplit("/", 1)[1] for u in storage.list_objects(out)}
    assert {"train.jsonl", "val.jsonl", "test.jsonl", "report.json"} <= keys
    assert split("--input", out, "--output-dir", str(tmp_path / "again"), *SMALL_MINIMUMS) == 2  # not a clean output
