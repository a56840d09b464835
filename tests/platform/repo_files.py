"""Readers for the platform files the tests check: k8s manifests, kustomizations, Dockerfiles, requirement
lists. Plain parsing only: nothing here needs Docker, a cluster or the network."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.platform.stage_imports import canonical

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
IMAGES = REPO / "images"
CONSTRAINTS = REPO / "requirements" / "constraints.txt"

# Files that are YAML but not Kubernetes objects.
NOT_OBJECTS = {"kustomization.yaml", "cluster.yaml", "upstream-images.yaml"}


@dataclass(frozen=True)
class K8sObject:
    path: Path
    index: int
    body: dict
    source: str = ""  # where inside the file, when not the index-th YAML document (a secretGenerator entry)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}#{self.source or self.index}"

    @property
    def kind(self) -> str:
        return self.body.get("kind", "")

    @property
    def name(self) -> str:
        return self.body.get("metadata", {}).get("name", "")

    @property
    def namespace(self) -> str | None:
        return self.body.get("metadata", {}).get("namespace")


def yaml_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_all(path: Path) -> list:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def k8s_objects() -> list[K8sObject]:
    """Every object k8s/ defines: the YAML documents, plus the Secrets kustomize generates (see
    `generated_secrets`)."""
    objects = []
    for path in yaml_files():
        if path.name in NOT_OBJECTS:
            continue
        objects.extend(K8sObject(path, i, doc) for i, doc in enumerate(load_all(path)))
    return objects + generated_secrets()


def kustomizations() -> list[tuple[Path, dict]]:
    return [(p, load_all(p)[0]) for p in sorted(K8S.rglob("kustomization.yaml"))]


def file_value(path: Path) -> str:
    """How a generated Secret's value read from a file appears here: the file's name, never its content."""
    return f"<contents of {path.relative_to(REPO)}>"


def is_file_value(value: str) -> bool:
    """Whether a generated Secret's value is `file_value`'s stand-in for a per-cluster file."""
    return value.startswith("<contents of ") and value.endswith(">")


def generator_files(kustomization: Path, entry: dict) -> dict[str, Path]:
    """{key: source file} of one secretGenerator/configMapGenerator entry (`KEY=path` or `path`)."""
    sources = {}
    for item in entry.get("files", []):
        key, sep, source = item.partition("=")
        if not sep:
            key, source = Path(item).name, item
        sources[key] = (kustomization.parent / source).resolve()
    return sources


def generated_secrets() -> list[K8sObject]:
    """The Secrets of every kustomization's secretGenerator, as the objects kustomize would build: literal
    values as written, file values as `file_value(path)` (the files are generated, never committed)."""
    objects = []
    for path, kust in kustomizations():
        hash_suffix = not (kust.get("generatorOptions") or {}).get("disableNameSuffixHash")
        for i, entry in enumerate(kust.get("secretGenerator", [])):
            assert not entry.get("envs") and not hash_suffix, \
                f"{path}: secretGenerator envs/hashed names are not read by tests/platform; extend repo_files.py"
            values = dict(item.partition("=")[::2] for item in entry.get("literals", []))
            values.update({key: file_value(source) for key, source in generator_files(path, entry).items()})
            body = {"apiVersion": "v1", "kind": "Secret", "type": entry.get("type", "Opaque"),
                    "metadata": {"name": entry["name"], "namespace": entry.get("namespace", kust.get("namespace"))},
                    "stringData": values}
            objects.append(K8sObject(path, i, body, source=f"secretGenerator[{i}]"))
    return objects


def pod_spec(obj: K8sObject) -> dict | None:
    body = obj.body
    if obj.kind == "Pod":
        return body.get("spec")
    if obj.kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return body.get("spec", {}).get("template", {}).get("spec")
    if obj.kind == "CronJob":
        return body.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    return None


def pod_labels(obj: K8sObject) -> dict:
    if obj.kind == "Pod":
        return obj.body.get("metadata", {}).get("labels", {})
    return obj.body.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})


def containers(spec: dict) -> list[dict]:
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def secret_values(obj: K8sObject) -> dict[str, str]:
    """A Secret's keys and values (stringData as written; data base64-decoded)."""
    import base64

    values = {k: base64.b64decode(v).decode() for k, v in (obj.body.get("data") or {}).items()}
    values.update(obj.body.get("stringData") or {})
    return values


# ---- requirements ----

def requirement_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def exact_pins(path: Path) -> dict[str, str]:
    """{canonical name: version} for every `name==version` line (extras dropped)."""
    pins = {}
    for line in requirement_lines(path):
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", line)
        if m:
            pins[canonical(m.group(1))] = m.group(3)
    return pins


def requirement_name(line: str) -> str:
    return canonical(re.match(r"[A-Za-z0-9_.\-]+", line).group(0))


# ---- Dockerfiles ----

@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comment lines dropped; `stage` counts FROMs."""
    logical, current = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            logical.append(current.strip())
        current = ""
    instructions, stage = [], -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword, args.strip()))
    return instructions


def run_flags(ins: Instruction) -> list[str]:
    """A RUN instruction's own flags (`--mount=...`, `--network=...`), before its shell command."""
    return list(_split_run(ins)[0])


def _split_run(ins: Instruction) -> tuple[list[str], str]:
    flags, rest = [], ins.args
    while m := re.match(r"(--\S+)\s+", rest):
        flags.append(m.group(1))
        rest = rest[m.end():]
    return flags, rest


# Words that may stand before a command without being it: shell keywords and `NAME=value` assignments.
_SHELL_KEYWORDS = {"then", "else", "do", "{", "!"}


def pip_installs(instructions: list[Instruction]) -> list[tuple[Instruction, list[str]]]:
    """Each `pip install ...` command inside RUN instructions, split into words."""
    found = []
    for ins in instructions:
        if ins.keyword != "RUN":
            continue
        lexer = shlex.shlex(_split_run(ins)[1], posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in ("&&", "||", ";", "|", "(", ")"):
                if len(command) >= 2 and command[0].endswith("pip") and command[1] == "install":
                    found.append((ins, command[2:]))
                command = []
            elif command or not (token in _SHELL_KEYWORDS or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", token)):
                command.append(token)
    return found


def build_script_images() -> list[str]:
    """The image names images/build.sh builds by default (its ALL_IMAGES array)."""
    text = (IMAGES / "build.sh").read_text(encoding="utf-8")
    m = re.search(r"^ALL_IMAGES=\(([^)]*)\)", text, re.M)
    assert m, "images/build.sh: no ALL_IMAGES=(...) line"
    return m.group(1).split()
