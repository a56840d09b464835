"""`finegate images`: every container image a finegate cluster pulls, so an air-gapped site can mirror them.

    finegate images                                    # one image per line
    finegate images --mirror registry.example.com/ml   # "SOURCE TARGET" per line, e.g. for `crane copy`
    finegate images --registry-hosts                   # the registries pulled from (containerd mirror config)

The list joins three sources: finegate's own images (components/common/images.py, FINEGATE_IMAGE_REGISTRY
and FINEGATE_IMAGE_TAG), the images k8s/ names itself (MinIO, PostgreSQL, the kind node image and the
local registry in k8s/kind), and the images of the upstream manifests k8s/ installs by URL (KFP and Argo,
Kubeflow Trainer and JobSet, NVIDIA's device plugin), recorded at their pinned refs in
k8s/upstream-images.yaml by scripts/upstream_images.py.

The mirror is one setting, --mirror or FINEGATE_IMAGE_MIRROR: an upstream image HOST/PATH:TAG lives at
MIRROR/HOST/PATH:TAG, the layout containerd's registry mirrors read (k8s/kind/create.sh configures its
nodes from the same variable), and finegate's own images at MIRROR/finegate/NAME:TAG (build and compile
with FINEGATE_IMAGE_REGISTRY=MIRROR/finegate).
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import yaml

from components.common import images
from components.common.errors import InputError

K8S = Path(__file__).resolve().parents[1] / "k8s"
UPSTREAM = "upstream-images.yaml"
MIRROR_ENV = "FINEGATE_IMAGE_MIRROR"
DEFAULT_REGISTRY = "localhost:5001/finegate"  # what k8s/ manifests name; images.REGISTRY may differ
SHELL_IMAGE = re.compile(r"^\w*image\w*='([^']+)'", re.M | re.I)


def normalize(image: str) -> str:
    """The full name a container runtime pulls: Docker Hub's implicit host and `library/` made explicit."""
    first, _, rest = image.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        image = f"docker.io/{image}"
        first, _, rest = image.partition("/")
    if first == "docker.io" and "/" not in rest:
        image = f"docker.io/library/{rest}"
    return image


def _images_in(node) -> set[str]:
    if isinstance(node, dict):
        found = {v for k, v in node.items() if k == "image" and isinstance(v, str)}
        return found.union(*(_images_in(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_images_in(v) for v in node))
    return set()


def own_images() -> set[str]:
    """finegate's images as the pipeline compiles them, plus those only k8s/ runs (mlflow), under the same
    FINEGATE_IMAGE_REGISTRY and FINEGATE_IMAGE_TAG."""
    in_manifests = {i[len(DEFAULT_REGISTRY) + 1:].split(":")[0] for i in _manifest_images()
                    if i.startswith(DEFAULT_REGISTRY + "/")}
    return {images.DATA_IMAGE, images.TRAIN_IMAGE, images.GGUF_IMAGE} | {
        f"{images.REGISTRY}/{name}:{images.TAG}" for name in in_manifests}


def _manifest_images() -> set[str]:
    found = set()
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name in (UPSTREAM, "kustomization.yaml"):
            continue
        with path.open(encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                found |= _images_in(doc)
    for script in sorted(K8S.rglob("*.sh")):
        found |= set(SHELL_IMAGE.findall(script.read_text(encoding="utf-8")))
    return found


def upstream_images() -> dict[str, list[str]]:
    path = K8S / UPSTREAM
    if not path.is_file():
        raise InputError(f"{path} is missing: finegate images reads the k8s/ tree of a finegate checkout")
    return yaml.safe_load(path.read_text(encoding="utf-8"))["images"]


def all_images() -> list[str]:
    listed = {i for i in _manifest_images() if not i.startswith(DEFAULT_REGISTRY + "/")} | own_images()
    for found in upstream_images().values():
        listed |= set(found)
    return sorted({normalize(i) for i in listed})


def mirror_target(image: str, mirror: str) -> str:
    mirror = mirror.rstrip("/")
    if image.startswith(images.REGISTRY.rstrip("/") + "/"):
        return f"{mirror}/finegate/{image[len(images.REGISTRY.rstrip('/')) + 1:]}"
    return f"{mirror}/{normalize(image)}"


def register(subparsers) -> None:
    p = subparsers.add_parser("images", help="list every image the cluster pulls (for mirroring)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--mirror", default=os.environ.get(MIRROR_ENV),
                      help=f"print 'SOURCE TARGET' pairs for this mirror registry/prefix (default: ${MIRROR_ENV})")
    what.add_argument("--registry-hosts", action="store_true", help="print only the registries pulled from")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    listed = all_images()
    if args.registry_hosts:
        own = images.REGISTRY.split("/")[0]
        print("\n".join(sorted({i.split("/")[0] for i in listed} - {own})))
    elif args.mirror:
        if not re.fullmatch(r"[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)*", args.mirror):
            raise InputError(f"--mirror {args.mirror!r}: expected a registry host with an optional path, "
                             "e.g. registry.example.com/mirror")
        print("\n".join(f"{i} {mirror_target(i, args.mirror)}" for i in listed))
    else:
        print("\n".join(listed))
    return 0
