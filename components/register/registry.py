"""Registry writes that end right whatever concurrent registrations do: create, then reconcile.

MLflow has no transactions and no compare-and-set, so no step here may assume it is alone. Each registration
creates what it needs, then reads the registry afresh and repairs what the read shows; the final state is
proven below from four facts of MLflow's registry (sqlalchemy store, behind `mlflow server` too):

  F1 A version number is max(existing, deleted ones included) + 1, assigned in a write transaction (a
     collision is retried by the server), so a version with a lower number was committed before a higher one
     was created, and numbers are never reused.
  F2 A version's tags are written in the same transaction that creates it.
  F3 Listing versions (search_model_versions) shows every committed version that is not deleted.
  F4 Register deletes a version only in `keep_lowest`, and only its own.

**One version per file** (`keep_lowest`). Every registration that created version v of file sha256 d then
lists the versions holding d and deletes v unless v is the lowest; it reports the lowest. Let m be the lowest
version ever created for d. By F1 m was committed before any other version of d was created, and by F4 m is
never deleted (its creator sees nothing lower; no one else deletes it), so by F3 every other creator's listing
shows m, and that creator deletes its own version. The registry ends holding exactly m for d, and every
registration of d reports m. (The check before creating, `lowest_holding`, only saves work: correctness
does not depend on it.)

**Alias on the newest version** (`point_alias_at_newest`). Eligible: versions made by register (they carry
`finegate.gguf.sha256`) that are the lowest holder of their file. By the paragraph above an eligible version
is never deleted and a version's eligibility never changes, so the newest eligible version E only grows.
Every registration, after its own version exists, loops: read the alias A, list the versions and compute E;
stop when A == E, else set the alias to E and go round again. Claim: once every registration returned, the
alias names the final E.
  - If some registration wrote the alias, take the last write W (value e). Its writer then read A == e (no
    write came after W) and listed E; it returned, so that listing gave E == e: e was the newest then. A version
    created later would have been seen by its own creator's loop as E > e == A, and that creator would have
    written after W, which contradicts W being last. So e is the final E.
  - If no registration ever wrote it, the creator of the final E read A == E after creating it, and nothing
    wrote since.
A failed write (two servers writing one alias at once can violate its unique key) changes nothing and the
loop reads again; register.reconcile_max_rounds bounds the rounds. The registered model itself is created
idempotently (RESOURCE_ALREADY_EXISTS is success) and never deleted by register: deleting it could take a
concurrent registration's version with it.
"""

from __future__ import annotations

import threading

from components.common.errors import StorageError
from components.register.run_dir import TAG

SHA_TAG = f"{TAG}gguf.sha256"
_global_uri_lock = threading.Lock()


def lowest_holding(client, name: str, digest: str):
    """The lowest version of `name` holding the file with this sha256 (fresh read), or None."""
    found = client.search_model_versions(f"name = '{_quoted(name)}' and tags.`{SHA_TAG}` = '{digest}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def ensure_registered_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, description="finegate: LoRA fine-tuned GGUF models that passed every gate")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def create_version(client, name: str, model_id: str, run_id: str, tags: dict[str, str], description: str,
                   local_store: bool) -> str:
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    ensure_registered_model(client, name)
    if not local_store:
        version = client.create_model_version(name, source=f"models:/{model_id}", run_id=run_id, tags=tags,
                                              description=description, model_id=model_id)
        return str(version.version)
    # A database registry store resolves a models:/<model_id> source through mlflow's process-wide tracking
    # URI, not the client's (its own TODO in sqlalchemy_store.create_model_version): point that at our store
    # for this one call, under a lock since the setting is global to the process.
    with _global_uri_lock, _use_tracking_uri(client.tracking_uri):
        version = client.create_model_version(name, source=f"models:/{model_id}", run_id=run_id, tags=tags,
                                              description=description, model_id=model_id)
    return str(version.version)


def keep_lowest(client, name: str, own: str, digest: str):
    """After creating `own`: the lowest version holding the file; `own` deleted if it is not that one."""
    lowest = lowest_holding(client, name, digest)
    if lowest is None:
        raise StorageError(f"{name} version {own} holding sha256 {digest[:12]} is not listed right after its "
                           "creation: the registry changed under this registration (a version deleted by hand?)")
    if str(lowest.version) != own:
        client.delete_model_version(name, own)
    return lowest


def newest_eligible(client, name: str) -> str | None:
    """The highest version made by register that is the lowest holder of its file (see the module docstring)."""
    lowest_per_file: dict[str, int] = {}
    token = None
    while True:
        page = client.search_model_versions(f"name = '{_quoted(name)}'", page_token=token)
        for version in page:
            digest = version.tags.get(SHA_TAG)
            if digest:
                number = int(version.version)
                lowest_per_file[digest] = min(number, lowest_per_file.get(digest, number))
        token = page.token
        if not token:
            break
    return str(max(lowest_per_file.values())) if lowest_per_file else None


def point_alias_at_newest(client, name: str, alias: str, max_rounds: int) -> str | None:
    """Read-check-write until the alias names the newest eligible version; returns that version."""
    from mlflow.exceptions import MlflowException

    last_error = ""
    for _ in range(max_rounds):
        current = alias_version(client, name, alias)
        newest = newest_eligible(client, name)
        if newest is None or current == newest:
            return newest
        try:
            client.set_registered_model_alias(name, alias, newest)
        except MlflowException as exc:  # a concurrent write won this round; the next read decides
            last_error = f" (last write failed: {exc.message.splitlines()[0]})"
    raise StorageError(f"alias '{alias}' of {name} did not settle on the newest version within "
                       f"register.reconcile_max_rounds={max_rounds} rounds{last_error}")


def alias_version(client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")
