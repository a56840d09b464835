"""Storage refusals and guarantees found by probes, each proved against moto's S3 server over HTTP (or a real
socket, FIFO or file): keys stay inside their destination, digests are required, folder markers are skipped,
a silent endpoint fails naming itself, pipes are read once, and a published output's report comes last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from components.common import storage
from components.common.config import RunConfig
from components.common.errors import InputError, IntegrityError, StorageError
from components.common.settings.storage import StorageSection
from components.train.core import _localize_model
from pipelines.cli import main as finegate
from tests.clean.rows import alpaca
from tests.fixtures.servers import silent_server

REPO = Path(__file__).resolve().parents[2]


def put_raw(bucket: str, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
    """An object as a person or another tool would upload it: no digest unless given."""
    storage.s3_client().put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata or {})


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message, message
    return message


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


# 1. Keys resolve inside their destination.

def test_dot_dot_key_under_a_prefix_is_refused_and_lands_nowhere(s3_bucket, tmp_path):
    storage.write_bytes(f"s3://{s3_bucket}/pre/ok.txt", b"fine")
    storage.write_bytes(f"s3://{s3_bucket}/pre/../../../escape.txt", b"planted")
    with pytest.raises(InputError) as err:
        storage.localize(f"s3://{s3_bucket}/pre", tmp_path / "cache")
    assert f"s3://{s3_bucket}/pre/../../../escape.txt" in one_line(err)
    assert not list(tmp_path.rglob("escape.txt"))  # where the key pointed: tmp_path/escape.txt


def test_absolute_looking_keys_are_refused(s3_bucket, tmp_path):
    # Keys spelled as absolute paths into this test's own folder: a regression writes there, not into /.
    single, nested = tmp_path / "abs.txt", tmp_path / "abs2.txt"
    storage.write_bytes(f"s3://{s3_bucket}/{single}", b"planted")
    storage.write_bytes(f"s3://{s3_bucket}/pre/{nested}", b"planted")
    with pytest.raises(InputError, match="empty, '.' or '..' path segment") as err:
        storage.localize(f"s3://{s3_bucket}/{single}", tmp_path / "cache")
    assert f"s3://{s3_bucket}/{single}" in one_line(err)
    with pytest.raises(InputError) as err:
        storage.localize(f"s3://{s3_bucket}/pre", tmp_path / "cache")
    assert f"s3://{s3_bucket}/pre/{nested}" in one_line(err)
    assert not single.exists() and not nested.exists()


def test_single_object_key_with_dot_dot_is_refused(s3_bucket, tmp_path):
    uri = f"s3://{s3_bucket}/a/../../../../x.txt"
    storage.write_bytes(uri, b"planted")
    with pytest.raises(InputError) as err:
        storage.localize(uri, tmp_path / "deep" / "cache")
    assert uri in one_line(err)
    assert not list(tmp_path.rglob("x.txt"))


# 2. A stage output must carry its digest; raw inputs may lack one, and then it is computed.

@pytest.mark.parametrize("metadata", [None, {"sha256": ""}], ids=["removed", "empty"])
def test_object_without_a_digest_is_refused_unless_external(s3_bucket, tmp_path, metadata):
    put_raw(s3_bucket, "run/split/train.jsonl", b'{"id": "1"}\n', metadata)
    uri = f"s3://{s3_bucket}/run/split/train.jsonl"
    for read in (lambda: storage.read_bytes(uri), lambda: storage.download_file(uri, tmp_path / "d"),
                 lambda: storage.localize(f"s3://{s3_bucket}/run/split", tmp_path / "c")):
        with pytest.raises(IntegrityError, match="no sha256 recorded") as err:
            read()
        assert uri in one_line(err)
    assert not (tmp_path / "d").exists()

    got = storage.fetch(f"s3://{s3_bucket}/run/split", tmp_path / "ext", external=True)
    assert got.digests == {"train.jsonl": storage.sha256_bytes(b'{"id": "1"}\n')}
    assert storage.read_bytes(uri, external=True) == b'{"id": "1"}\n'


def test_external_input_with_a_wrong_digest_is_still_refused(s3_bucket, tmp_path):
    put_raw(s3_bucket, "raw/in.jsonl", b"replaced", {"sha256": storage.sha256_bytes(b"original")})
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        storage.fetch(f"s3://{s3_bucket}/raw/in.jsonl", tmp_path, external=True)


def test_clean_records_the_digest_of_raw_s3_input_uploaded_without_one(s3_bucket, tmp_path, capsys):
    data = jsonl([alpaca(1), alpaca(2)])
    put_raw(s3_bucket, "raw/in.jsonl", data)
    uri = f"s3://{s3_bucket}/raw/in.jsonl"
    assert finegate(["clean", "--input", uri, "--output-dir", str(tmp_path / "out"),
                     "--set", "data.min_samples=1", "--set", "gates.loosened.data.min_samples=a one-row input", "--set", "clean.write_chart=false"]) == 0
    written = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert written["input"]["sha256"] == storage.sha256_bytes(data)
    capsys.readouterr()

    assert finegate(["clean", "--input", uri, "--output-dir", str(tmp_path / "strict"),
                     "--set", "storage.external_raw_inputs=false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{uri}: no sha256 recorded" in err[0], err


def test_s3_base_model_without_digests_is_accepted_only_as_external_raw_input(s3_bucket, tmp_path):
    put_raw(s3_bucket, "bases/m/config.json", b"{}")
    put_raw(s3_bucket, "bases/m/model.safetensors", b"\x00" * 16)
    cfg = RunConfig()
    local = _localize_model(f"s3://{s3_bucket}/bases/m", tmp_path / "a", cfg)
    assert sorted(p.name for p in local.iterdir()) == ["config.json", "model.safetensors"]
    cfg.storage.external_raw_inputs = False
    with pytest.raises(IntegrityError, match="no sha256 recorded"):
        _localize_model(f"s3://{s3_bucket}/bases/m", tmp_path / "b", cfg)


# 3. Folder markers and a bare bucket.

def test_folder_markers_are_skipped(s3_bucket, tmp_path):
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text("{}")
    (src / "sub" / "w.bin").write_bytes(b"\x00\x01")
    storage.publish(src, f"s3://{s3_bucket}/models/m1")
    for marker in ("models/m1/", "models/m1/sub/", "models/m1/empty/"):
        put_raw(s3_bucket, marker, b"")
    for uri in (f"s3://{s3_bucket}/models/m1", f"s3://{s3_bucket}/models/m1/"):
        local = storage.localize(uri, tmp_path / "cache")
        assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) \
            == ["config.json", "sub/w.bin"]
        assert (local / "sub" / "w.bin").read_bytes() == b"\x00\x01"
    assert sorted(storage.list_objects(f"s3://{s3_bucket}/models/m1")) \
        == [f"s3://{s3_bucket}/models/m1/config.json", f"s3://{s3_bucket}/models/m1/sub/w.bin"]


def test_bucket_without_a_key_is_one_clear_line(s3_bucket, tmp_path, capsys):
    for uri in (f"s3://{s3_bucket}", f"s3://{s3_bucket}/"):
        with pytest.raises(InputError) as err:
            storage.localize(uri, tmp_path)
        assert one_line(err) == f"{uri}: give an object key or prefix after the bucket, e.g. s3://{s3_bucket}/path"
    assert finegate(["clean", "--input", f"s3://{s3_bucket}", "--output-dir", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (f"finegate clean: error: s3://{s3_bucket}: give an object key or prefix "
                                       f"after the bucket, e.g. s3://{s3_bucket}/path\n")


# 4. An endpoint that accepts connections and never answers.

@pytest.fixture
def silent_endpoint():
    """An S3 endpoint on loopback that accepts every connection and never sends a byte."""
    with silent_server() as url:
        yield url


@pytest.fixture
def silent_s3(silent_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", silent_endpoint)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    for name, value in (("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    yield silent_endpoint
    storage.configure(StorageSection())
    storage._client.cache_clear()


@pytest.mark.slow  # waits out the configured timeouts
@pytest.mark.timeout(120)
def test_silent_endpoint_fails_naming_it_with_the_configured_bounds(silent_s3, tmp_path):
    storage.configure(StorageSection(connect_timeout_s=1, read_timeout_s=1, max_attempts=2))
    for read in (lambda: storage.read_bytes("s3://raw/notes.jsonl"),
                 lambda: storage.localize("s3://raw/notes.jsonl", tmp_path)):
        with pytest.raises(StorageError) as err:
            read()
        message = one_line(err)
        assert silent_s3 in message and "did not answer" in message, message
        assert "in 2 attempt(s)" in message and "storage.read_timeout_s=1)" in message, message


@pytest.mark.slow  # waits out the configured timeouts
@pytest.mark.timeout(120)
def test_cli_applies_the_run_configs_timeouts_to_a_silent_endpoint(silent_s3, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "clean", "--input", "s3://raw/notes.jsonl",
                           "--output-dir", str(tmp_path / "o"), "--set", "storage.read_timeout_s=1",
                           "--set", "storage.max_attempts=1"],
                          cwd=REPO, capture_output=True, text=True, timeout=110, env=dict(os.environ))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("finegate clean: error: s3://raw/notes.jsonl: "), proc.stderr
    assert silent_s3 in lines[0] and "in 1 attempt(s)" in lines[0] and "storage.read_timeout_s=1)" in lines[0], lines


# 5. A pipe is read once, and its digest is its content's.

def clean_subprocess(input_path: str, out: Path, *sets: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    sets = ("data.min_samples=1", "gates.loosened.data.min_samples=a one-row input", "clean.workers=1", "clean.write_chart=false", *sets)
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "clean", "--input", input_path,
                           "--output-dir", str(out), *(arg for item in sets for arg in ("--set", item))],
                          cwd=REPO, capture_output=True, timeout=110, input=stdin)


@pytest.mark.timeout(120)
def test_clean_from_a_fifo_records_the_contents_digest(tmp_path):
    data = jsonl([alpaca(1), alpaca(2), alpaca(3, "#副業 #在宅ワーク")])
    fifo = tmp_path / "in.jsonl"
    os.mkfifo(fifo)
    problems: list[BaseException] = []

    def write() -> None:
        try:
            with open(fifo, "wb") as f:  # blocks until clean opens the other end
                f.write(data)
        except OSError as exc:
            problems.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        proc = clean_subprocess(str(fifo), tmp_path / "out")
    finally:
        if writer.is_alive():  # clean never opened the FIFO: open it here so the writer is released
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(timeout=10)
    assert proc.returncode == 0, proc.stderr.decode()
    assert not problems
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["input"]["sha256"] == storage.sha256_bytes(data) != storage.sha256_bytes(b"")
    assert report["metrics"]["rows_in"] == 3 and report["metrics"]["kept"] == 2


@pytest.mark.timeout(120)
def test_clean_from_stdin_records_the_contents_digest(tmp_path):
    data = jsonl([alpaca(4), alpaca(5)])
    # With the format given, nothing but the digest reads the input twice: the probe's empty-string digest.
    proc = clean_subprocess("/dev/stdin", tmp_path / "out", "data.format=jsonl", stdin=data)
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["input"]["sha256"] == storage.sha256_bytes(data)
    assert report["metrics"]["kept"] == 2


# 6. publish(..., last=("report.json",)): the report goes away first and comes back last.

def output_dir(root: Path, files: dict[str, bytes]) -> Path:
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    return root


def listing(bucket: str, prefix: str) -> dict[str, bytes]:
    return {uri.rsplit(f"{prefix}/", 1)[1]: storage.read_bytes(uri)
            for uri in storage.list_objects(f"s3://{bucket}/{prefix}")}


def test_publish_replaces_a_whole_output_with_its_report(s3_bucket, tmp_path):
    uri = f"s3://{s3_bucket}/runs/1/clean"
    old = output_dir(tmp_path / "v1", {"kept.jsonl": b"old", "old_only.jsonl": b"stale", "report.json": b"v1"})
    storage.publish(old, uri, last=("report.json",))
    new = output_dir(tmp_path / "v2", {"kept.jsonl": b"new", "sub/chart.png": b"png", "report.json": b"v2"})
    digests = storage.publish(new, uri, last=("report.json",))
    assert listing(s3_bucket, "runs/1/clean") == {"kept.jsonl": b"new", "sub/chart.png": b"png", "report.json": b"v2"}
    assert digests == {rel: storage.sha256_file(new / rel) for rel in ("kept.jsonl", "sub/chart.png", "report.json")}
    assert list(digests)[-1] == "report.json"


def test_publish_failing_midway_leaves_no_report(s3_bucket, tmp_path):
    uri = f"s3://{s3_bucket}/runs/1/train"
    storage.publish(output_dir(tmp_path / "v1", {"a.txt": b"old a", "b.bin": b"old b", "report.json": b"v1"}),
                    uri, last=("report.json",))
    new = output_dir(tmp_path / "v2", {"a.txt": b"new a", "report.json": b"v2"})
    # A file that reads fail with EIO (root ignores permission bits, so chmod cannot make one unreadable).
    (new / "b.bin").symlink_to("/proc/self/mem")
    with pytest.raises(StorageError) as err:
        storage.publish(new, uri, last=("report.json",))
    assert "b.bin" in one_line(err)
    after = listing(s3_bucket, "runs/1/train")
    assert "report.json" not in after
    assert after["a.txt"] == b"new a"  # it did fail midway: the first file was already replaced


def test_publish_missing_its_last_file_changes_nothing(s3_bucket, tmp_path):
    uri = f"s3://{s3_bucket}/runs/1/split"
    storage.publish(output_dir(tmp_path / "v1", {"train.jsonl": b"old", "report.json": b"v1"}), uri,
                    last=("report.json",))
    with pytest.raises(StorageError, match="report.json missing"):
        storage.publish(output_dir(tmp_path / "v2", {"train.jsonl": b"new"}), uri, last=("report.json",))
    assert listing(s3_bucket, "runs/1/split") == {"train.jsonl": b"old", "report.json": b"v1"}


def test_local_publish_failing_midway_leaves_no_report(tmp_path):
    dest = tmp_path / "dest"
    storage.publish(output_dir(tmp_path / "v1", {"a.txt": b"old", "report.json": b"v1"}), str(dest),
                    last=("report.json",))
    (dest / "b.txt").mkdir()  # a folder where the new output has a file: the copy fails there
    new = output_dir(tmp_path / "v2", {"a.txt": b"new", "b.txt": b"b", "report.json": b"v2"})
    with pytest.raises(StorageError, match="b.txt"):
        storage.publish(new, str(dest), last=("report.json",))
    assert not (dest / "report.json").exists() and (dest / "a.txt").read_bytes() == b"new"
