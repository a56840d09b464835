"""`finegate promote`: move the champion alias to a registered version, saying who, why and when.

Only a version that `finegate register` made after every gate passed can be promoted. A version
registered under a gate override needs its own written override reason to be promoted as well.
The record lives on the versions themselves (tags), beside the alias:
    finegate.promotion.<alias>.by / .at / .reason / .previous_version    on the promoted version
    finegate.demotion.<alias>.by / .at / .reason / .replaced_by          on the version it replaced
"""

from __future__ import annotations

import getpass
import os
import sys
from datetime import UTC, datetime
from typing import Any

from components.common.errors import GateFailed, InputError
from components.common.redact import redact_text
from components.register.run_dir import TAG
from components.register.tracking import client_for, mlflow_errors


def promote(model_name: str, reason: str, *, tracking_uri: str, version: str | int | None = None,
            from_alias: str | None = "challenger", to_alias: str = "champion", by: str | None = None,
            override_reason: str | None = None) -> dict[str, Any]:
    """Points `to_alias` at `version` (or at the version `from_alias` names); returns what changed."""
    reason = redact_text((reason or "").strip())
    if not reason:
        raise InputError("promote needs --reason: why this version should serve (recorded on the version)")
    if version is None and not from_alias:
        raise InputError("promote needs --version N or --from-alias ALIAS")
    who = by or os.environ.get("FINEGATE_USER") or getpass.getuser()
    client = client_for(tracking_uri)
    with mlflow_errors(tracking_uri, f"looking up {model_name}"):
        target = _version(client, model_name, version, from_alias)
        current = by_alias(client, model_name, to_alias)
    override_reason = redact_text((override_reason or "").strip())
    _check_gates(target, model_name, override_reason)
    summary = {"model_name": model_name, "alias": to_alias, "version": str(target.version), "by": who,
               "reason": reason, "previous_version": str(current.version) if current else None}
    if current is not None and str(current.version) == str(target.version):
        print(f"promote: {model_name} version {target.version} already is {to_alias}; nothing changed", file=sys.stderr)
        return {**summary, "changed": False}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    record = {"by": who, "at": now, "reason": reason,
              "previous_version": str(current.version) if current else "none"}
    if override_reason:
        record["override_reason"] = override_reason
    with mlflow_errors(tracking_uri, f"moving {to_alias} to version {target.version}"):
        client.set_registered_model_alias(model_name, to_alias, str(target.version))
        for key, value in record.items():
            client.set_model_version_tag(model_name, str(target.version), f"{TAG}promotion.{to_alias}.{key}", value)
        if current is not None:
            demotion = {"by": who, "at": now, "reason": reason, "replaced_by": str(target.version)}
            for key, value in demotion.items():
                client.set_model_version_tag(model_name, str(current.version), f"{TAG}demotion.{to_alias}.{key}", value)
    print(f"promote: {model_name} version {target.version} is now {to_alias}"
          + (f" (was version {current.version})" if current else ""), file=sys.stderr)
    return {**summary, "at": now, "changed": True}


def _version(client, name: str, version: str | int | None, alias: str | None):
    from mlflow.exceptions import MlflowException

    if version is not None:
        try:
            return client.get_model_version(name, str(version))
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise InputError(f"registered model '{name}' has no version {version}") from None
            raise
    found = by_alias(client, name, alias)
    if found is None:
        raise InputError(f"no version of registered model '{name}' has alias '{alias}' "
                         "(finegate register sets it; or pass --version N)")
    return found


def by_alias(client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            if not _model_exists(client, name):
                raise InputError(f"no registered model named '{name}'") from None
            return None
        raise


def _model_exists(client, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return True
    except MlflowException:
        return False


def _check_gates(version, name: str, override_reason: str) -> None:
    tags = version.tags
    passed = tags.get(f"{TAG}gates.passed")
    where = f"{name} version {version.version}"
    if passed == "true":
        return
    if passed is None:
        raise GateFailed(f"{where} has no gate record ({TAG}gates.passed): only versions made by "
                         "`finegate register` can be promoted")
    problems, reasons = [], []
    if failed := tags.get(f"{TAG}gates.failed_reasons") or tags.get(f"{TAG}gates.failed_stages"):
        problems.append(f"did not pass its gates ({failed})")
        reasons.append(f"the override '{tags.get(f'{TAG}gates.override_reason', '?')}'")
    if unchecked := tags.get(f"{TAG}gates.unchecked_stages"):
        problems.append(f"was registered without its gate stage(s) {unchecked} checked")
        reasons.append(f"the narrowed register.required_stages '{tags.get(f'{TAG}gates.required_stages_override_reason', '?')}'")
    if not override_reason:
        raise GateFailed(f"{where} {' and '.join(problems) or 'did not pass its gates'}; it was registered under "
                         f"{' and '.join(reasons) or 'an override'}. Promoting it needs --override-reason with your "
                         "own written reason")
