"""Local paths and s3:// URIs behind one interface, with a sha256 recorded for every object written
and verified on every read.

On S3 the digest travels as object metadata (`x-amz-meta-sha256`); locally it is written to a
`<file>.sha256` sidecar only when asked (`publish` of a directory writes a `SHA256SUMS` manifest instead).
Endpoint and credentials come from the standard AWS variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION), so the same code talks to MinIO, moto's server or AWS.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from components.common.errors import InputError, IntegrityError, StorageError

SHA_KEY = "sha256"
MANIFEST = "SHA256SUMS"
_CHUNK = 8 * 1024 * 1024


def is_s3(uri: str | os.PathLike) -> bool:
    return str(uri).startswith("s3://")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        rest = uri[len("s3://") :]
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise StorageError(f"not an s3 URI (no bucket): {uri}")
        return cls(bucket, key)

    def child(self, name: str) -> S3Location:
        prefix = self.key.rstrip("/")
        return S3Location(self.bucket, f"{prefix}/{name}" if prefix else name)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=8)
def _client(endpoint_url: str | None, region: str | None):
    import boto3
    from botocore.config import Config

    # boto3 >= 1.36 sends CRC checksums by default, which some S3-compatible servers reject.
    config = Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 5, "mode": "standard"},
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def s3_client():
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    return _client(endpoint, region)


def _s3_error(exc: Exception, uri: str) -> StorageError:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            return InputError(f"{uri}: no such object")
        if code == "NoSuchBucket":
            return InputError(f"{uri}: no such bucket")
        return StorageError(f"{uri}: S3 error {code}: {exc.response.get('Error', {}).get('Message', exc)}")
    if isinstance(exc, BotoCoreError):
        return StorageError(f"{uri}: S3 unreachable: {exc}")
    return StorageError(f"{uri}: {exc}")


def exists(uri: str | Path) -> bool:
    uri = str(uri)
    if not is_s3(uri):
        return Path(uri).exists()
    loc = S3Location.parse(uri)
    try:
        s3_client().head_object(Bucket=loc.bucket, Key=loc.key)
        return True
    except Exception as exc:  # noqa: BLE001 - translated below
        err = _s3_error(exc, uri)
        if isinstance(err, InputError):
            return False
        raise err from None


def upload_file(path: str | Path, uri: str) -> str:
    """Uploads one file with its sha256 in the object's metadata; returns the digest."""
    loc = S3Location.parse(uri)
    digest = sha256_file(path)
    try:
        s3_client().upload_file(str(path), loc.bucket, loc.key, ExtraArgs={"Metadata": {SHA_KEY: digest}})
    except Exception as exc:  # noqa: BLE001
        raise _s3_error(exc, uri) from None
    return digest


def download_file(uri: str, path: str | Path, verify: bool = True) -> str:
    """Downloads one object and checks it against the sha256 recorded when it was written."""
    loc = S3Location.parse(uri)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    client = s3_client()
    try:
        head = client.head_object(Bucket=loc.bucket, Key=loc.key)
        tmp = path.with_name(path.name + ".part")
        client.download_file(loc.bucket, loc.key, str(tmp))
    except Exception as exc:  # noqa: BLE001
        raise _s3_error(exc, uri) from None
    digest = sha256_file(tmp)
    recorded = head.get("Metadata", {}).get(SHA_KEY)
    if verify and recorded and recorded != digest:
        tmp.unlink(missing_ok=True)
        raise IntegrityError(f"{uri}: sha256 mismatch (recorded {recorded}, read {digest}); object corrupted or replaced")
    tmp.replace(path)
    return digest


def list_objects(uri: str) -> Iterator[str]:
    """Keys under an s3:// prefix, as full URIs."""
    loc = S3Location.parse(uri)
    prefix = loc.key.rstrip("/") + "/" if loc.key else ""
    paginator = s3_client().get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=loc.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield f"s3://{loc.bucket}/{obj['Key']}"
    except Exception as exc:  # noqa: BLE001
        raise _s3_error(exc, uri) from None


def read_bytes(uri: str | Path, verify: bool = True) -> bytes:
    uri = str(uri)
    if not is_s3(uri):
        p = Path(uri)
        if not p.is_file():
            raise InputError(f"{p}: no such file")
        data = p.read_bytes()
        sidecar = p.with_name(p.name + ".sha256")
        if verify and sidecar.is_file():
            recorded = sidecar.read_text().split()[0]
            if recorded != sha256_bytes(data):
                raise IntegrityError(f"{p}: sha256 mismatch with {sidecar.name}")
        return data
    loc = S3Location.parse(uri)
    try:
        obj = s3_client().get_object(Bucket=loc.bucket, Key=loc.key)
        data = obj["Body"].read()
    except Exception as exc:  # noqa: BLE001
        raise _s3_error(exc, uri) from None
    recorded = obj.get("Metadata", {}).get(SHA_KEY)
    if verify and recorded and recorded != sha256_bytes(data):
        raise IntegrityError(f"{uri}: sha256 mismatch (recorded {recorded}); object corrupted or replaced")
    return data


def write_bytes(uri: str | Path, data: bytes, sidecar: bool = False) -> str:
    """Writes data; returns its sha256. Local writes are atomic (temp file + rename)."""
    uri = str(uri)
    digest = sha256_bytes(data)
    if is_s3(uri):
        loc = S3Location.parse(uri)
        try:
            s3_client().put_object(Bucket=loc.bucket, Key=loc.key, Body=data, Metadata={SHA_KEY: digest})
        except Exception as exc:  # noqa: BLE001
            raise _s3_error(exc, uri) from None
        return digest
    p = Path(uri)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(p)
    if sidecar:
        p.with_name(p.name + ".sha256").write_text(f"{digest}  {p.name}\n")
    return digest


def localize(uri: str | Path, cache_dir: str | Path, verify: bool = True) -> Path:
    """A local path for `uri`: local paths are returned as they are; an s3:// object or prefix is
    downloaded (verified) under `cache_dir` and that copy returned."""
    uri = str(uri)
    if not is_s3(uri):
        p = Path(uri)
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
        return p
    loc = S3Location.parse(uri)
    dest = Path(cache_dir) / loc.bucket / loc.key.rstrip("/")
    if exists(uri):
        download_file(uri, dest, verify=verify)
        return dest
    keys = list(list_objects(uri))
    if not keys:
        raise InputError(f"{uri}: no such object or prefix")
    prefix = str(loc).rstrip("/") + "/"
    for key_uri in keys:
        download_file(key_uri, dest / key_uri[len(prefix) :], verify=verify)
    return dest


def delete(uri: str | Path) -> None:
    """Removes one object or file if it exists."""
    uri = str(uri)
    if not is_s3(uri):
        Path(uri).unlink(missing_ok=True)
        return
    loc = S3Location.parse(uri)
    try:
        s3_client().delete_object(Bucket=loc.bucket, Key=loc.key)
    except Exception as exc:  # noqa: BLE001
        raise _s3_error(exc, uri) from None


def publish(path: str | Path, uri: str, last: tuple[str, ...] = ()) -> dict[str, str]:
    """Copies a local file or directory to `uri` (s3:// or local); returns {relative path: sha256}.
    Files named in `last` (relative paths) are copied after every other file (a stage's report)."""
    src = Path(path)
    if not src.exists():
        raise InputError(f"{src}: nothing to publish")
    files = [src] if src.is_file() else sorted((f for f in src.rglob("*") if f.is_file()),
                                               key=lambda f: (f.relative_to(src).as_posix() in last, str(f)))
    digests: dict[str, str] = {}
    for f in files:
        rel = f.name if src.is_file() else f.relative_to(src).as_posix()
        target = uri if src.is_file() else uri.rstrip("/") + "/" + rel
        if is_s3(target):
            digests[rel] = upload_file(f, target)
        else:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            if Path(target).resolve() != f.resolve():
                shutil.copy2(f, target)
            digests[rel] = sha256_file(f)
    return digests
