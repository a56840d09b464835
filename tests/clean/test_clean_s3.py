"""s3:// input and output on moto's S3 server: the same files as a local run, with sha256 metadata."""

from __future__ import annotations

import json

import pytest

from components.clean.core import run_clean
from components.common import storage
from components.common.config import RunConfig
from components.common.errors import InputError
from tests.clean.rows import alpaca, write_jsonl


@pytest.fixture
def cfg() -> RunConfig:
    cfg = RunConfig()
    cfg.data.min_samples = 1
    return cfg


def test_clean_reads_from_and_writes_to_s3(tmp_path, s3_bucket, cfg):
    src = write_jsonl(tmp_path / "in.jsonl", [alpaca(1), alpaca(2, "#副業 #在宅ワーク"), alpaca(1)])
    storage.upload_file(src, f"s3://{s3_bucket}/raw/in.jsonl")
    report = run_clean(f"s3://{s3_bucket}/raw/in.jsonl", f"s3://{s3_bucket}/runs/1/clean", cfg)

    assert report.metrics["kept"] == 1 and report.metrics["rejected"] == 2
    keys = sorted(storage.list_objects(f"s3://{s3_bucket}/runs/1/clean"))
    assert keys == [f"s3://{s3_bucket}/runs/1/clean/{name}"
                    for name in ("clean_rules.png", "kept.jsonl", "rejected.jsonl", "report.json")]
    kept = [json.loads(line) for line in storage.read_bytes(keys[1]).decode().splitlines()]
    assert [r["source_line"] for r in kept] == [1]
    written = json.loads(storage.read_bytes(keys[3]))
    assert written["input"]["uri"] == f"s3://{s3_bucket}/raw/in.jsonl"
    assert written["outputs"]["kept.jsonl"] == storage.sha256_bytes(storage.read_bytes(keys[1]))
    head = storage.s3_client().head_object(Bucket=s3_bucket, Key="runs/1/clean/kept.jsonl")
    assert head["Metadata"]["sha256"] == written["outputs"]["kept.jsonl"]


def test_csv_on_s3_is_read_too(tmp_path, s3_bucket, cfg):
    path = tmp_path / "in.csv"
    # A body of real words: "本文" said twenty times is filler, a placeholder prompt.
    path.write_text("prompt,completion\n" + "朝六時に起きて近所の川沿いを三十分ほど歩いてみた。" + ",朝の散歩で気づいたこと\n",
                    encoding="utf-8")
    storage.upload_file(path, f"s3://{s3_bucket}/in.csv")
    report = run_clean(f"s3://{s3_bucket}/in.csv", tmp_path / "out", cfg)
    assert report.details["input"]["format"] == "csv" and report.metrics["kept"] == 1


def test_missing_s3_object_is_an_input_error(tmp_path, s3_bucket, cfg):
    with pytest.raises(InputError, match=f"s3://{s3_bucket}/nope.jsonl: no such object or prefix"):
        run_clean(f"s3://{s3_bucket}/nope.jsonl", tmp_path / "out", cfg)
