"""TrainJob manifests (multi-node training on Kubeflow Trainer) checked against the API of the Trainer
release that k8s/trainer installs, offline.

The schema comes from `kubeflow-trainer-api` (PyPI, by the Kubeflow authors), whose version is the Trainer
release it was generated from: its pydantic models are generated from that release's
api/openapi-spec/swagger.json, which is generated from the same Go types as the release's TrainJob CRD.
`TRAINER_RELEASE` must equal the ref in k8s/trainer/*/kustomization.yaml (tests/platform checks both).

The models alone are lenient: they drop fields they do not know. `trainjob_problems` adds what the API
server's structural schema does: an unknown field anywhere is an error (a misspelt `numNode` would
otherwise vanish and the job run on one node), and apiVersion, kind and metadata.name must be right.
CEL rules of the CRD (x-kubernetes-validations, e.g. immutability on update) are not modelled.
"""

from __future__ import annotations

import importlib.metadata
import types
import typing

from pydantic import BaseModel, ValidationError

from components.common.errors import InputError

API_VERSION = "trainer.kubeflow.org/v1alpha1"
KIND = "TrainJob"
TRAINER_RELEASE = "v2.3.0"
SCHEMA_PACKAGE = "kubeflow-trainer-api"


class TrainJobInvalid(InputError):
    """A TrainJob manifest the pinned Trainer release's API would reject."""


def schema_version() -> str:
    """The Trainer release the installed schema package describes (`v` + its version)."""
    return "v" + importlib.metadata.version(SCHEMA_PACKAGE)


def _model_types(annotation) -> list[type[BaseModel]]:
    """The generated model classes inside a field annotation (Optional/List/Dict unwrapped)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found.extend(_model_types(arg))
    return found


def _container_kind(annotation) -> str:
    """'list', 'dict' or '' for the outermost collection of a (possibly Optional) annotation."""
    origin = typing.get_origin(annotation)
    if origin in (list, typing.List):  # noqa: UP006 - the generated models use typing.List
        return "list"
    if origin in (dict, typing.Dict):  # noqa: UP006
        return "dict"
    if origin in (typing.Union, types.UnionType):
        kinds = {_container_kind(a) for a in typing.get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else ""
    return ""


def _is_one_of_wrapper(model: type[BaseModel]) -> bool:
    # Quantity and IntOrString: a scalar in JSON, validated by the model's from_dict, no fields of its own.
    return "actual_instance" in model.model_fields


def _unknown_fields(value, model: type[BaseModel], path: str) -> list[str]:
    if not isinstance(value, dict) or _is_one_of_wrapper(model):
        return []
    by_alias = {(info.alias or name): info.annotation for name, info in model.model_fields.items()}
    problems = []
    for key, item in value.items():
        if key not in by_alias:
            problems.append(f"{path}.{key}: unknown field (known: {', '.join(sorted(by_alias))})")
            continue
        annotation = by_alias[key]
        inner = _model_types(annotation)
        if len(inner) != 1 or item is None:
            continue
        kind = _container_kind(annotation)
        if kind == "list" and isinstance(item, list):
            for i, element in enumerate(item):
                problems += _unknown_fields(element, inner[0], f"{path}.{key}[{i}]")
        elif kind == "dict" and isinstance(item, dict):
            for name, element in item.items():
                problems += _unknown_fields(element, inner[0], f"{path}.{key}[{name}]")
        else:
            problems += _unknown_fields(item, inner[0], f"{path}.{key}")
    return problems


def trainjob_problems(manifest: dict) -> list[str]:
    """Everything the pinned Trainer API rejects in this TrainJob, one line each; [] when it is valid."""
    from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob

    if not isinstance(manifest, dict):
        return [f"a TrainJob is a mapping, not {type(manifest).__name__}"]
    problems = []
    if manifest.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: {manifest.get('apiVersion')!r}, expected {API_VERSION!r}")
    if manifest.get("kind") != KIND:
        problems.append(f"kind: {manifest.get('kind')!r}, expected {KIND!r}")
    if not (manifest.get("metadata") or {}).get("name"):
        problems.append("metadata.name: missing")
    if "spec" not in manifest:
        problems.append("spec: missing")
    problems += _unknown_fields(manifest, TrainerV1alpha1TrainJob, "TrainJob")
    try:
        TrainerV1alpha1TrainJob.from_dict(manifest)
    except ValidationError as exc:
        # Nested models validate one by one, so the location is relative to the innermost one (its title).
        title = exc.title.removeprefix("TrainerV1alpha1").removeprefix("IoK8sApiCoreV1")
        problems += [f"{title}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    except (ValueError, TypeError) as exc:
        problems.append(str(exc).split(". Details:")[0])
    return problems


def validate_trainjob(manifest: dict) -> None:
    """Raises TrainJobInvalid (a one-line FinegateError) naming every problem; returns None when valid."""
    problems = trainjob_problems(manifest)
    if problems:
        name = (manifest.get("metadata") or {}).get("name", "?") if isinstance(manifest, dict) else "?"
        raise TrainJobInvalid(f"TrainJob {name} does not match Kubeflow Trainer {TRAINER_RELEASE}'s API "
                              f"({SCHEMA_PACKAGE}=={importlib.metadata.version(SCHEMA_PACKAGE)}): " + "; ".join(problems))
