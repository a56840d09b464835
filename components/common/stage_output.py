"""How a stage writes its output directory and how a consumer reads one: atomically, and verified.

    with StageOutput(output_dir, "split", inputs=[kept_jsonl]) as out:
        write_jsonl(out.path / "train.jsonl", rows)
        ...
        out.finish(report)          # the manifest, then report.json last, then everything into place

    local_dir, report = read_output(uri, "split", cache_dir)   # refused unless it matches its report

Writing
  1. Refused before any work: an output that is one of the stage's inputs or a folder holding one (it would
     overwrite what it reads), an output path that is an existing file, a place that cannot be written.
  2. The destination's old report.json is removed first: from then on the old output no longer counts as
     finished, so a stage killed mid-run (kill -9, a lost pod) never leaves a stale "passed" beside partial
     files.
  3. The stage writes into a private staging directory beside the destination (or a temp dir for s3://).
  4. `finish(report)` records every file's sha256, size and, for .jsonl, row count in the report's
     `manifest`, then moves the files into place (files of the previous output that the new one does not
     have are removed) and writes report.json last (a temp file renamed; on s3:// uploaded last). Leaving
     the block without `finish` (an error) discards the staging directory and leaves no report.

Reading
  A stage output counts only with its report: `read_output` refuses a directory without report.json, a
  report of another stage, a failed report (unless the caller reads failed ones on purpose), and any file
  the manifest lists that is missing or differs in sha256 or rows.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from components.common import storage
from components.common.errors import InputError, IntegrityError
from components.common.report import REPORT_NAME, StageReport

MANIFEST = "manifest"


def _count_rows(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def build_manifest(root: Path) -> dict[str, dict[str, Any]]:
    """{relative path: {sha256, bytes[, rows]}} of every file under root but the report itself."""
    manifest: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel == REPORT_NAME:
            continue
        entry: dict[str, Any] = {"sha256": storage.sha256_file(path), "bytes": path.stat().st_size}
        if path.suffix == ".jsonl":
            entry["rows"] = _count_rows(path)
        manifest[rel] = entry
    return manifest


def _local_input_paths(inputs) -> list[Path]:
    return [Path(str(i)).resolve() for i in inputs if i is not None and not storage.is_s3(str(i))]


def _holds(output: Path, source: Path) -> bool:
    """The output would replace the source: it is the source or a folder around it."""
    return output == source or output in source.parents


def check_output_location(output: str | os.PathLike, inputs=()) -> None:
    """The refusals of step 1, as one-line InputErrors."""
    out = str(output)
    if storage.is_s3(out):
        loc = storage.S3Location.parse(out)
        if not loc.key.strip("/"):
            raise InputError(f"{out}: give a prefix under the bucket for a stage output (s3://bucket/run/stage)")
        for i in inputs:
            if i is not None and storage.is_s3(str(i)):
                a, b = str(i).rstrip("/") + "/", out.rstrip("/") + "/"
                if a.startswith(b) or b.startswith(a):
                    raise InputError(f"output {out} overlaps the input {i}: writing it would replace what the stage "
                                     "reads; choose another output location")
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: is a file; the output is a directory the stage fills")
    resolved = path.resolve()
    for source in _local_input_paths(inputs):
        if _holds(resolved, source):
            raise InputError(f"output {path} overlaps the input {source}: writing it would replace what the stage "
                             "reads; choose another output directory")
    probe = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write there ({probe} is not writable)")


class StageOutput:
    """A stage's output directory, written as the module docstring says."""

    def __init__(self, output: str | os.PathLike, stage: str, inputs=()):
        self.uri = str(output)
        self.stage = stage
        self.s3 = storage.is_s3(self.uri)
        check_output_location(self.uri, inputs)
        self.path: Path = Path()
        self.finished = False
        self._previous: dict[str, Any] = {}

    def __enter__(self) -> StageOutput:
        if self.s3:
            self.path = Path(tempfile.mkdtemp(prefix=f"finegate-{self.stage}-"))
            storage.delete(f"{self.uri.rstrip('/')}/{REPORT_NAME}")
            return self
        dest = Path(self.uri)
        try:
            dest.mkdir(parents=True, exist_ok=True)
            report = dest / REPORT_NAME
            if report.is_file():
                self._previous = _previous_manifest(report)
                report.unlink()
            self.path = dest.parent / f".{dest.name}.staging-{uuid.uuid4().hex[:8]}"
            self.path.mkdir()
        except OSError as exc:
            raise InputError(f"{dest}: cannot write the stage output there: {exc.strerror or exc}") from None
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def finish(self, report: StageReport) -> Path | str:
        """Manifest, files into place, report.json last. Returns where the output now is."""
        report.details[MANIFEST] = build_manifest(self.path)
        if self.s3:
            report.write(self.path)
            storage.publish(self.path, self.uri, last=(REPORT_NAME,))
        else:
            self._move_into_place(report)
        self.finished = True
        return self.uri

    def _move_into_place(self, report: StageReport) -> None:
        dest = Path(self.uri)
        for name in self._previous:
            stale = dest / name
            if name not in report.details[MANIFEST] and stale.is_file():
                stale.unlink()
        for entry in sorted(self.path.iterdir()):
            target = dest / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            entry.replace(target)
        report.write(dest)  # StageReport.write: a temp file renamed, so report.json appears whole


def _previous_manifest(report_path: Path) -> dict[str, Any]:
    try:
        data = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = data.get(MANIFEST) if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {}


def _wanted(name: str, parts: tuple[str, ...] | None) -> bool:
    return parts is None or any(name == p or name.startswith(p.rstrip("/") + "/") for p in parts)


def verify_output(directory: Path, stage: str, where: str, require_passed: bool = True,
                  parts: tuple[str, ...] | None = None, present_only: bool = False) -> dict[str, Any]:
    """The stage report of a local output directory, after checking every file its manifest lists (or, with
    `parts`, the files under those names: a consumer that reads merged/ only needs merged/ to be whole; with
    `present_only`, the listed files that are there: a view assembled from several artifacts of one output)."""
    report_path = directory / REPORT_NAME
    if not report_path.is_file():
        raise InputError(f"{where}: no {REPORT_NAME}: not a finished '{stage}' output (the stage did not finish, "
                         f"or this is not its output directory); run the {stage} stage into it again")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{where}/{REPORT_NAME}: unreadable stage report ({exc})") from None
    if not isinstance(report, dict) or report.get("stage") != stage:
        found = report.get("stage") if isinstance(report, dict) else None
        raise InputError(f"{where}: holds the output of stage '{found}', not of '{stage}'")
    if require_passed and report.get("passed") is not True:
        reasons = "; ".join(str(r) for r in report.get("reasons") or []) or "no reason given"
        raise InputError(f"{where}: the {stage} stage's gate failed ({reasons}); its output is not used downstream")
    manifest = report.get(MANIFEST)
    if not isinstance(manifest, dict):
        raise InputError(f"{where}/{REPORT_NAME}: no manifest of the files it describes; rerun the {stage} stage")
    for name, entry in manifest.items():
        path = directory / name
        if not _wanted(name, parts) or (present_only and not path.exists()):
            continue
        if not path.is_file():
            raise IntegrityError(f"{where}: {name} is missing although the {stage} report lists it; rerun the stage")
        if storage.sha256_file(path) != entry.get("sha256"):
            raise IntegrityError(f"{where}: {name} differs from the file the {stage} report describes (sha256); "
                                 "it was changed or only partly written: rerun the stage")
        if "rows" in entry and _count_rows(path) != entry["rows"]:
            raise IntegrityError(f"{where}: {name} has a different number of rows than its report says")
    return report


def read_output(uri: str | os.PathLike, stage: str, cache_dir: str | Path, require_passed: bool = True,
                parts: tuple[str, ...] | None = None) -> tuple[Path, dict[str, Any]]:
    """(local directory, report) of a verified stage output: a local directory, a file inside one (its
    directory is read), or an s3:// prefix (downloaded under cache_dir; with `parts`, only those and the
    report are downloaded)."""
    where = str(uri)
    if storage.is_s3(where):
        if storage.exists(where):  # an object inside the output: read the whole output it belongs to
            where = where.rstrip("/").rsplit("/", 1)[0]
        directory = _download(where, Path(cache_dir), parts)
    else:
        local = Path(where)
        if not local.exists():
            raise InputError(f"{local}: no such file or directory")
        directory = local if local.is_dir() else local.parent
        where = str(directory)
    return directory, verify_output(directory, stage, where, require_passed, parts)


def _download(prefix: str, cache_dir: Path, parts: tuple[str, ...] | None) -> Path:
    if parts is None:
        return storage.localize(prefix, cache_dir, verify=True)
    loc = storage.S3Location.parse(prefix)
    directory = cache_dir / loc.bucket / loc.key.rstrip("/")
    for name in (REPORT_NAME, *parts):
        uri = f"{prefix.rstrip('/')}/{name.rstrip('/')}"
        if storage.exists(uri):
            storage.download_file(uri, directory / name, verify=True)
        else:
            storage.localize(uri, cache_dir, verify=True)  # a prefix: lands at cache_dir/bucket/key = directory/name
    return directory


def write_file_output(target: str | os.PathLike, write, inputs=()) -> str:
    """One output file (check-outputs' JSONL, check-overfit's plot), local or s3://: `write(path)` fills a
    temporary file, which then replaces the target in one step (a rename, or one upload with its sha256).
    Refused like a stage output: a target that is an input, a folder, or not writable."""
    uri = str(target)
    for source in inputs:
        if source is not None and (str(source) == uri or (not storage.is_s3(uri) and not storage.is_s3(str(source))
                                                         and Path(uri).resolve() == Path(str(source)).resolve())):
            raise InputError(f"output {uri} is the input {source}: writing it would replace what is read")
    if storage.is_s3(uri):
        with tempfile.TemporaryDirectory(prefix="finegate-output-") as tmp:
            local = Path(tmp) / Path(storage.S3Location.parse(uri).key).name
            write(local)
            storage.publish(local, uri)
        return uri
    path = Path(uri)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name")
    check_output_location(path.parent if str(path.parent) else ".")
    partial = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}")  # suffix kept: formats
    try:
        write(partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return uri
