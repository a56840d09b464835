"""Local paths and s3:// URIs behind one interface, with a sha256 recorded for every object written
and verified on every read.

On S3 the digest travels as object metadata (`x-amz-meta-sha256`); locally it is written to a
`<file>.sha256` sidecar only when asked. Endpoint and credentials come from the standard AWS variables
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION), so the same code talks to
MinIO, moto's server or AWS; `storage.endpoint_url` / `storage.region` in the run config override them.

Settings: the process that loads a run config calls `configure(cfg.storage)` once (the CLI's
`config_from_args` and the KFP components' `config_from_json` do), and every S3 client made after that uses
its timeouts, retry count and endpoint. Until then the `StorageSection` defaults apply, so a stage core
called straight from Python is bounded too. Per-read choices (`verify`, `external`) are arguments.

What is guaranteed:
- Verified (unless `verify=False`, i.e. storage.verify_sha256=false): every S3 object read (`download_file`,
  `read_bytes`, `localize`/`fetch`) against the sha256 in its metadata; a mismatch is an IntegrityError and
  the bad bytes are never left at the destination. `read_bytes` checks a local file against its `.sha256`
  sidecar when one exists; other local files are used as they are (a stage's report lists their digests).
- Refused, unless `external=True`: an S3 object with no (or an empty) recorded sha256. finegate records one
  on everything it writes, so a stage output without one is not intact. `external=True` is for raw data a
  person uploaded (`storage.external_raw_inputs`): its digest is computed on read and handed back
  (`Localized.digests`) for the stage to record in its report.
- Refused: a key that would land outside the local destination (`..`, `.` or empty path segments, a
  leading `/`), named in the error, before it is written; `s3://bucket` with no key.
- Skipped: zero-byte folder markers (`prefix/`, as the S3 console creates them).
- Bounded: every S3 request has connect and read timeouts and `storage.max_attempts` tries; an endpoint
  that accepts connections but never answers fails in about max_attempts x read_timeout_s (about 16 s with
  the defaults), naming it.
- Read once: a local input that is not a regular file (a pipe, /dev/stdin, a character device) is copied
  into the caller's destination while it is hashed, and the copy is what the stage reads.
- Ordered: `publish(dir, uri, last=("report.json",))` deletes the destination's report first, removes what
  the new output lacks, and uploads the report last, so a reader never sees a report beside files it does
  not describe.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from components.common.errors import InputError, IntegrityError, StorageError
from components.common.settings.storage import StorageSection

SHA_KEY = "sha256"
_CHUNK = 8 * 1024 * 1024
_settings = StorageSection()


def configure(section: StorageSection) -> None:
    """Applies a run config's storage settings to every S3 client this process makes from now on."""
    global _settings
    _settings = section


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
            raise InputError(f"{uri}: not an s3 URI (no bucket); write s3://bucket/path")
        if not key:
            raise InputError(f"{uri}: give an object key or prefix after the bucket, e.g. s3://{bucket}/path")
        return cls(bucket, key)

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


def _copy_hashing(src: BinaryIO, target: Path) -> str:
    h = hashlib.sha256()
    with target.open("wb") as out:
        while chunk := src.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


@lru_cache(maxsize=8)
def _client(endpoint_url: str | None, region: str, connect_timeout_s: float, read_timeout_s: float,
            max_attempts: int):
    import boto3
    from botocore.config import Config

    # boto3 >= 1.36 sends CRC checksums by default, which some S3-compatible servers reject.
    config = Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def s3_client():
    s = _settings
    endpoint = s.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    region = s.region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    return _client(endpoint, region, s.connect_timeout_s, s.read_timeout_s, s.max_attempts)


def _transfer_config():
    from boto3.s3.transfer import TransferConfig

    # s3transfer retries a broken download stream on its own (5 times by default), on top of botocore's tries.
    return TransferConfig(num_download_attempts=_settings.max_attempts)


def _s3_error(exc: Exception, uri: str) -> StorageError:
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__cause__, (ClientError, BotoCoreError)):
        exc = exc.__cause__
    endpoint = s3_client().meta.endpoint_url
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            return InputError(f"{uri}: no such object")
        if code == "NoSuchBucket":
            return InputError(f"{uri}: no such bucket")
        return StorageError(f"{uri}: S3 error {code}: {exc.response.get('Error', {}).get('Message', exc)}")
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        s = _settings
        return StorageError(f"{uri}: S3 unreachable: endpoint {endpoint} did not answer in {s.max_attempts} "
                            f"attempt(s) (storage.connect_timeout_s={s.connect_timeout_s:g}, "
                            f"storage.read_timeout_s={s.read_timeout_s:g})")
    if isinstance(exc, NoCredentialsError):
        return StorageError(f"{uri}: no S3 credentials for endpoint {endpoint}; set AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, BotoCoreError):
        return StorageError(f"{uri}: S3 unreachable: endpoint {endpoint}: {exc}")
    return StorageError(f"{uri}: {' '.join(str(exc).split())}")


def _recorded(metadata: dict[str, str] | None) -> str:
    return (metadata or {}).get(SHA_KEY, "").strip()


def _require_digest(uri: str, recorded: str, verify: bool, external: bool) -> None:
    if verify and not recorded and not external:
        raise IntegrityError(f"{uri}: no sha256 recorded in its metadata (x-amz-meta-sha256 missing or empty); "
                             "everything finegate writes carries one, so this is not an intact stage output")


def _check_digest(uri: str, recorded: str, digest: str, verify: bool, external: bool) -> None:
    _require_digest(uri, recorded, verify, external)
    if verify and recorded and recorded != digest:
        raise IntegrityError(f"{uri}: sha256 mismatch (recorded {recorded}, read {digest}); object corrupted "
                             "or replaced")


def local_target(dest: Path, relative_key: str, uri: str) -> Path:
    """Where an object whose key is `relative_key` below its prefix goes under `dest`; refuses a key that
    would resolve anywhere else."""
    parts = relative_key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InputError(f"{uri}: key has an empty, '.' or '..' path segment and would not stay inside {dest}; "
                         "refusing to download it")
    target = dest.joinpath(*parts)
    if not target.resolve().is_relative_to(dest.resolve()):
        raise InputError(f"{uri}: key resolves outside {dest}; refusing to download it")
    return target


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
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise StorageError(f"{path}: cannot read it to upload to {uri}: {exc.strerror or exc}") from None
    try:
        s3_client().upload_file(str(path), loc.bucket, loc.key, ExtraArgs={"Metadata": {SHA_KEY: digest}},
                                Config=_transfer_config())
    except Exception as exc:  # noqa: BLE001
        raise _s3_error(exc, uri) from None
    return digest


def download_file(uri: str, path: str | Path, verify: bool = True, external: bool = False) -> str:
    """Downloads one object, checks it against the sha256 recorded when it was written, returns the digest.
    `external`: the object may lack a recorded digest (raw data a person uploaded); its digest is computed."""
    loc = S3Location.parse(uri)
    path = Path(path)
    client = s3_client()
    try:
        head = client.head_object(Bucket=loc.bucket, Key=loc.key)
    except Exception as exc:  # noqa: BLE001
        raise _s3_error(exc, uri) from None
    recorded = _recorded(head.get("Metadata"))
    _require_digest(uri, recorded, verify, external)  # before spending the download on it
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        client.download_file(loc.bucket, loc.key, str(tmp), Config=_transfer_config())
    except Exception as exc:  # noqa: BLE001
        tmp.unlink(missing_ok=True)
        raise _s3_error(exc, uri) from None
    digest = sha256_file(tmp)
    try:
        _check_digest(uri, recorded, digest, verify, external)
    except IntegrityError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return digest


def _list(loc: S3Location, uri: str) -> Iterator[tuple[str, int]]:
    """(key, size) of every object under the prefix `loc.key/`, folder markers included."""
    prefix = loc.key.rstrip("/") + "/"
    paginator = s3_client().get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=loc.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["Size"]
    except Exception as exc:  # noqa: BLE001
        raise _s3_error(exc, uri) from None


def _is_folder_marker(key: str, size: int, uri: str) -> bool:
    if not key.endswith("/"):
        return False
    if size:
        raise InputError(f"{uri}: a {size}-byte object whose key ends in '/'; it cannot be a local file")
    return True


def list_objects(uri: str) -> Iterator[str]:
    """Objects under an s3:// prefix, as full URIs; folder markers are not objects and are left out."""
    loc = S3Location.parse(uri)
    for key, size in _list(loc, uri):
        if not _is_folder_marker(key, size, f"s3://{loc.bucket}/{key}"):
            yield f"s3://{loc.bucket}/{key}"


def read_bytes(uri: str | Path, verify: bool = True, external: bool = False) -> bytes:
    uri = str(uri)
    if not is_s3(uri):
        p = Path(uri)
        if not p.exists() or p.is_dir():
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
    _check_digest(uri, _recorded(obj.get("Metadata")), sha256_bytes(data), verify, external)
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


@dataclass(frozen=True)
class Localized:
    """A local copy (or the local original) of an input. `digests`: {path relative to `path`'s folder, or the
    file's name: sha256} of what was read through storage: verified against its record, or computed on read
    for an external input. Empty for a local regular file or folder used in place."""

    path: Path
    digests: dict[str, str] = field(default_factory=dict)

    def sha256(self) -> str:
        """The digest of a single-file input: the one computed while reading it, else the file's own."""
        if self.path.is_dir():
            raise InputError(f"{self.path}: a folder has no single sha256")
        return self.digests.get(self.path.name) or sha256_file(self.path)


def localize(uri: str | Path, dest: str | Path, verify: bool = True, external: bool = False) -> Path:
    """A local path for `uri` (see `fetch`)."""
    return fetch(uri, dest, verify=verify, external=external).path


def fetch(uri: str | Path, dest: str | Path, verify: bool = True, external: bool = False) -> Localized:
    """A local path for `uri`, with the digests read on the way. A local regular file or folder is used where
    it is; a pipe or device is copied once into `dest`. An s3:// object or prefix is downloaded (verified)
    under `dest`/bucket/key. `external`: raw data a person uploaded, which may lack a recorded sha256."""
    uri = str(uri)
    dest = Path(dest)
    if not is_s3(uri):
        return _fetch_local(Path(uri), dest)
    loc = S3Location.parse(uri)
    bucket_dir = dest / loc.bucket
    if not loc.key.endswith("/") and exists(uri):
        target = local_target(bucket_dir, loc.key, uri)
        return Localized(target, {target.name: download_file(uri, target, verify=verify, external=external)})
    prefix = loc.key.rstrip("/") + "/"
    root = local_target(bucket_dir, prefix.rstrip("/"), uri)
    digests: dict[str, str] = {}
    for key, size in _list(loc, uri):
        key_uri = f"s3://{loc.bucket}/{key}"
        if _is_folder_marker(key, size, key_uri):
            continue
        rel = key[len(prefix) :]
        digests[rel] = download_file(key_uri, local_target(root, rel, key_uri), verify=verify, external=external)
    if not digests:
        raise InputError(f"{uri}: no such object or prefix")
    return Localized(root, digests)


def _fetch_local(p: Path, dest: Path) -> Localized:
    try:
        mode = p.stat().st_mode
    except OSError:
        raise InputError(f"{p}: no such file or directory") from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return Localized(p)
    # A pipe can be read once only, and a stage reads its input more than once (format sniffing, the
    # rows, the digest): keep one copy and hash it on the way.
    dest.mkdir(parents=True, exist_ok=True)
    copy = dest / (p.name or "input")
    try:
        with p.open("rb") as src:
            digest = _copy_hashing(src, copy)
    except OSError as exc:
        raise InputError(f"{p}: cannot read it: {exc.strerror or exc}") from None
    return Localized(copy, {copy.name: digest})


def publish(path: str | Path, uri: str, last: Sequence[str] = ()) -> dict[str, str]:
    """Copies a local file or directory to `uri` (s3:// or local); returns {relative path: sha256}.

    `last` (names relative to the directory, e.g. ("report.json",)) makes the copy a stage output's hand-off:
    those files are first deleted at the destination, then every other file is copied, then whatever the
    destination holds under `uri` that this directory lacks is deleted, and the `last` files are copied at
    the end. A reader that finds the report therefore finds exactly the files it was written with, and a
    failure at any step leaves the destination without a report."""
    src = Path(path)
    if not src.exists():
        raise InputError(f"{src}: nothing to publish")
    if src.is_file():
        if last:
            raise StorageError(f"{src}: `last` orders the files of a directory; this is one file")
        return {src.name: _put(src, uri)}
    files = {f.relative_to(src).as_posix(): f for f in sorted(src.rglob("*")) if f.is_file()}
    _check_publishable(src, files, last)
    base = uri.rstrip("/")
    if not is_s3(base) and Path(base).resolve() == src.resolve():
        return {rel: sha256_file(f) for rel, f in files.items()}
    for name in last:
        _remove(f"{base}/{name}")
    digests = {rel: _put(f, f"{base}/{rel}") for rel, f in files.items() if rel not in last}
    if last:
        for stale in sorted(set(_published_names(base)) - set(files)):
            _remove(f"{base}/{stale}")
    for name in last:
        digests[name] = _put(files[name], f"{base}/{name}")
    return digests


def _check_publishable(src: Path, files: dict[str, Path], last: Sequence[str]) -> None:
    """Refuses before the destination is touched what would fail halfway."""
    missing = [name for name in last if name not in files]
    if missing:
        raise StorageError(f"{src}: {', '.join(missing)} missing; it is to be published last")
    for rel in files:
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            raise StorageError(f"{src}: {rel.encode('utf-8', 'backslashreplace').decode()}: a file name that is "
                               "not UTF-8 cannot be an S3 key") from None


def _put(f: Path, target: str) -> str:
    if is_s3(target):
        return upload_file(f, target)
    out = Path(target)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists() and out.resolve() == f.resolve():
            return sha256_file(f)
        tmp = out.with_name(out.name + ".part")
        shutil.copy2(f, tmp)
        tmp.replace(out)
        return sha256_file(out)
    except OSError as exc:
        raise StorageError(f"{f} -> {target}: {exc.strerror or exc}") from None


def delete(uri: str | Path) -> None:
    """Removes one object or local file if it exists."""
    _remove(str(uri))


def _remove(target: str) -> None:
    if not is_s3(target):
        Path(target).unlink(missing_ok=True)
        return
    loc = S3Location.parse(target)
    try:
        s3_client().delete_object(Bucket=loc.bucket, Key=loc.key)
    except Exception as exc:  # noqa: BLE001
        raise _s3_error(exc, target) from None


def _published_names(base: str) -> list[str]:
    """What the destination holds now, relative to it."""
    if is_s3(base):
        prefix = base + "/"
        return [u[len(prefix) :] for u in list_objects(base)]
    root = Path(base)
    return [f.relative_to(root).as_posix() for f in root.rglob("*") if f.is_file()] if root.is_dir() else []
