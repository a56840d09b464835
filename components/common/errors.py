"""Errors a person can act on. The CLI prints them as one line and exits non-zero, never a traceback."""

from __future__ import annotations


class FinegateError(Exception):
    """Base class: the message is the whole story."""

    exit_code = 2


class ConfigError(FinegateError):
    pass


class InputError(FinegateError):
    """Bad input that stops a stage (missing file, unknown format, unreachable object)."""


class StorageError(FinegateError):
    pass


class IntegrityError(StorageError):
    """A read object's sha256 does not match the one recorded when it was written."""


class GateFailed(FinegateError):
    """A quality gate said no; the report beside it says why."""

    exit_code = 1


def row_problem(path: str, line: int, field: str | None, message: str) -> str:
    """The one format for a bad row: file, line and field first, so a person can jump to it."""
    where = f"{path}:{line}"
    if field:
        where += f": field '{field}'"
    return f"{where}: {message}"
