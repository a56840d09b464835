"""Storage against moto's S3 server over HTTP: digests recorded on write, verified on read."""

import pytest

from components.common import storage
from components.common.errors import InputError, IntegrityError


def test_s3_round_trip_records_sha256(s3_bucket):
    uri = f"s3://{s3_bucket}/a/b.txt"
    digest = storage.write_bytes(uri, "こんにちは".encode())
    head = storage.s3_client().head_object(Bucket=s3_bucket, Key="a/b.txt")
    assert head["Metadata"]["sha256"] == digest == storage.sha256_bytes("こんにちは".encode())
    assert storage.read_bytes(uri).decode() == "こんにちは"


def test_tampered_s3_object_is_refused(s3_bucket):
    uri = f"s3://{s3_bucket}/x.bin"
    storage.write_bytes(uri, b"original")
    # Replace the body but keep the old digest, as a corrupted or swapped object would look.
    storage.s3_client().put_object(Bucket=s3_bucket, Key="x.bin", Body=b"tampered",
                                   Metadata={"sha256": storage.sha256_bytes(b"original")})
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        storage.read_bytes(uri)
    with pytest.raises(IntegrityError):
        storage.download_file(uri, "/tmp/never-written")


def test_publish_and_localize_a_directory(s3_bucket, tmp_path):
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text("{}")
    (src / "sub" / "w.bin").write_bytes(b"\x00\x01")
    digests = storage.publish(src, f"s3://{s3_bucket}/models/m1")
    assert set(digests) == {"config.json", "sub/w.bin"}
    local = storage.localize(f"s3://{s3_bucket}/models/m1", tmp_path / "cache")
    assert (local / "sub" / "w.bin").read_bytes() == b"\x00\x01"
    assert (local / "config.json").read_text() == "{}"


def test_missing_object_and_bucket_are_input_errors(s3_bucket, tmp_path):
    with pytest.raises(InputError, match="no such object"):
        storage.read_bytes(f"s3://{s3_bucket}/missing.jsonl")
    with pytest.raises(InputError, match="no such"):
        storage.localize(f"s3://{s3_bucket}/missing-prefix", tmp_path)
    with pytest.raises(InputError):
        storage.read_bytes("s3://no-such-bucket-here/x")


def test_local_sidecar_digest_is_verified(tmp_path):
    p = tmp_path / "f.txt"
    storage.write_bytes(p, b"abc", sidecar=True)
    assert storage.read_bytes(p) == b"abc"
    p.write_bytes(b"abd")
    with pytest.raises(IntegrityError):
        storage.read_bytes(p)


def test_missing_local_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        storage.read_bytes(tmp_path / "nope")
