"""The docker CLI as the image checks use it: run a command in an image, read an image's config, stream
its layers."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from collections.abc import Iterator

from components.common import images as image_names

DOCKER = os.environ.get("DOCKER", "docker")
FINEGATE_IMAGES = ("data", "train", "gguf")  # the ones holding the finegate package


def built_images() -> list[str]:
    return os.environ.get("FINEGATE_IMAGES", "data gguf mlflow").split()


def image_ref(name: str) -> str:
    return f"{image_names.REGISTRY}/{name}:{image_names.TAG}"


def docker(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)[:300]} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def image_config(ref: str) -> dict:
    return json.loads(docker("image", "inspect", ref).stdout)[0]["Config"]


def image_uid_gid(ref: str) -> tuple[int, int]:
    user = image_config(ref).get("User") or "0"
    uid, _, gid = user.partition(":")
    return int(uid), int(gid or uid)


def run_in(ref: str, *command: str, options: tuple[str, ...] = (), timeout: float = 600,
           check: bool = True) -> subprocess.CompletedProcess:
    """`docker run --rm` with the image's own entrypoint replaced, so every image runs a plain command."""
    return docker("run", "--rm", "--entrypoint", command[0], *options, ref, *command[1:], timeout=timeout,
                  check=check)


def layer_files(refs: list[str], max_bytes: int) -> Iterator[tuple[str, tarfile.TarInfo, bytes | None]]:
    """(layer, member, content) for every entry of every layer of the images, as `docker save` writes them
    (the layers as stored: a file a later layer deletes is still there); content for regular files up to
    max_bytes. Layers are found by being tar archives, so both the Docker and the OCI layout of `docker
    save` are read."""
    proc = subprocess.Popen([DOCKER, "save", *refs], stdout=subprocess.PIPE)
    finished = False
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as outer:
            for entry in outer:
                if not entry.isfile():
                    continue
                try:
                    inner = tarfile.open(fileobj=outer.extractfile(entry), mode="r|")
                except tarfile.ReadError:
                    continue  # manifest.json, an image config, an empty layer
                with inner:
                    for member in inner:
                        content = None
                        if member.isfile() and member.size <= max_bytes:
                            content = inner.extractfile(member).read()
                        yield entry.name, member, content
        finished = True
    finally:
        if not finished:
            proc.kill()
        proc.stdout.close()
        if proc.wait() != 0 and finished:
            raise AssertionError(f"docker save {' '.join(refs)} exited {proc.returncode}")
