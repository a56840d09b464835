"""Errors a person can act on. The CLI prints them as one line and exits non-zero, never a traceback."""

from __future__ import annotations

import re


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


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """A message as one line: its lines joined with '; ' (a library's message often spans several) and
    any other control character escaped, so quoting a bad input cannot split or garble the line."""
    joined = "; ".join(part.strip() for part in text.splitlines() if part.strip())
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", joined)
