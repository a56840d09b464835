"""`finegate rollback`: move the champion alias back to the version it replaced, saying who, why and when.

The version to go back to is the promotion record on the current champion
(`finegate.promotion.<alias>.previous_version`, written by promote). The rollback is recorded on both versions:
    finegate.rollback.<alias>.by / .at / .reason / .rolled_back_from   on the version restored
    finegate.rollback.<alias>.by / .at / .reason / .rolled_back_to     on the version it replaces
Refused with a one-line InputError (exit 2), nothing changed: no version holds the alias, its promotion
recorded no previous version (it was the first champion, or it was never promoted by finegate), or that
version no longer exists. A second rollback follows the restored version's own promotion record.
"""

from __future__ import annotations

import getpass
import os
import sys
from datetime import UTC, datetime
from typing import Any

from components.common.errors import InputError
from components.common.redact import redact_text
from components.register.promote import by_alias
from components.register.run_dir import TAG
from components.register.tracking import client_for, mlflow_errors


def rollback(model_name: str, reason: str, *, tracking_uri: str, alias: str = "champion",
             by: str | None = None) -> dict[str, Any]:
    """Points `alias` at the version its current holder replaced; returns what changed."""
    reason = redact_text((reason or "").strip())
    if not reason:
        raise InputError("rollback needs --reason: why the current version must stop serving (recorded on both versions)")
    who = by or os.environ.get("FINEGATE_USER") or getpass.getuser()
    client = client_for(tracking_uri)
    with mlflow_errors(tracking_uri, f"looking up {model_name}@{alias}"):
        current = by_alias(client, model_name, alias)
        if current is None:
            raise InputError(f"no version of registered model '{model_name}' has alias '{alias}': nothing to roll back")
        previous = (current.tags.get(f"{TAG}promotion.{alias}.previous_version") or "none").strip()
        where = f"{model_name} version {current.version} ({alias})"
        if previous == "none":
            raise InputError(f"{where} has no earlier {alias} to go back to: its promotion record "
                             f"{TAG}promotion.{alias}.previous_version names none; promote a version instead")
        restored = _existing_version(client, model_name, previous, where)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    record = {"by": who, "at": now, "reason": reason}
    with mlflow_errors(tracking_uri, f"moving {alias} back to version {previous}"):
        client.set_registered_model_alias(model_name, alias, str(restored.version))
        for key, value in {**record, "rolled_back_from": str(current.version)}.items():
            client.set_model_version_tag(model_name, str(restored.version), f"{TAG}rollback.{alias}.{key}", value)
        for key, value in {**record, "rolled_back_to": str(restored.version)}.items():
            client.set_model_version_tag(model_name, str(current.version), f"{TAG}rollback.{alias}.{key}", value)
    print(f"rollback: {model_name} version {restored.version} is {alias} again (was version {current.version})",
          file=sys.stderr)
    return {"model_name": model_name, "alias": alias, "version": str(restored.version),
            "rolled_back_from": str(current.version), "by": who, "at": now, "reason": reason}


def _existing_version(client, name: str, version: str, where: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise InputError(f"{where} replaced version {version}, which no longer exists: "
                             "nothing to roll back to; promote a version instead") from None
        raise
