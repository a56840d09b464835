"""Every image built answers its own command (finegate's images compile the pipeline too), runs as a
numeric non-root user with a writable HOME, and no layer of any of them holds a certificate the build host
added to its trust store."""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path

import pytest
import yaml

from tests.images.docker_cli import FINEGATE_IMAGES, image_uid_gid, layer_files, run_in
from tests.platform.repo_files import CONSTRAINTS, exact_pins

pytestmark = pytest.mark.docker

# Debian keeps a host's own CAs here; update-ca-certificates folds them into the bundle images/build.sh lends.
HOST_EXTRA_CA_DIR = Path(os.environ.get("EXTRA_CA_DIR", "/usr/local/share/ca-certificates"))
HOST_BUNDLE = Path(os.environ.get("BUILD_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
LARGEST_FILE_READ = 64 * 1024 * 1024  # shared libraries above this hold no trust store


def test_each_finegate_image_answers_help_and_compiles_the_pipeline(images):
    for name in (n for n in FINEGATE_IMAGES if n in images):
        ref = images[name]
        usage = run_in(ref, "finegate", "--help").stdout
        assert all(command in usage for command in ("clean", "gguf", "compile")), f"{ref}: finegate --help:\n{usage}"
        compiled = run_in(ref, "sh", "-c", "finegate compile --set data.input=s3://finegate-data/raw.jsonl --set train.base_model=org/base-model --output /tmp/p.yaml >&2 && cat /tmp/p.yaml").stdout
        spec = next(yaml.safe_load_all(compiled))
        used = {ex["container"]["image"] for ex in spec["deploymentSpec"]["executors"].values()}
        assert images["data"] in used and images["gguf"] in used, f"{ref} compiled a pipeline running {used}"
    if "mlflow" in images:
        version = run_in(images["mlflow"], "mlflow", "--version").stdout
        assert exact_pins(CONSTRAINTS)["mlflow"] in version, version


def test_every_image_runs_as_a_numeric_non_root_user_that_owns_its_home(images):
    probe = ('id -u; echo "$HOME"; touch "$HOME/probe" && mkdir -p "$HOME/.cache/probe" && echo home-writable; '
             'touch /opt/venv/probe 2>/dev/null && echo code-writable || echo code-read-only')
    for name, ref in images.items():
        uid, _gid = image_uid_gid(ref)
        assert uid != 0, f"{ref} runs as root"
        out = run_in(ref, "sh", "-c", probe).stdout.split()
        assert out[0] == str(uid) and out[1] not in ("/", "/root"), f"{ref}: uid and HOME {out[:2]}"
        assert out[2:] == ["home-writable", "code-read-only"], f"{ref}: {out[2:]}"
        if name in FINEGATE_IMAGES:
            workdir = run_in(ref, "sh", "-c", 'touch probe && pwd').stdout.strip()
            assert workdir == "/workspace", f"{ref}: the working directory is {workdir}"


def _certificates(pem_text: bytes) -> list[bytes]:
    """The DER bytes of every certificate in a PEM file."""
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem_text, re.S)
    return [ssl.PEM_cert_to_DER_cert(block.decode("ascii")) for block in blocks]


def _needles(der: bytes) -> tuple[bytes, bytes]:
    """What betrays a certificate in a file: its DER bytes, or its base64 body (compared without line breaks)."""
    body = ssl.DER_cert_to_PEM_cert(der).encode().replace(b"\n", b"")
    return der, body[len(PEM_BEGIN):len(PEM_BEGIN) + 160]


def _holds(content: bytes, der: bytes) -> bool:
    raw, base64_body = _needles(der)
    return raw in content or (PEM_BEGIN in content and base64_body in content.replace(b"\n", b"").replace(b"\r", b""))


def test_no_layer_of_any_image_holds_the_build_hosts_extra_ca_certificates(images):
    extras = {path.stem: der for path in sorted(HOST_EXTRA_CA_DIR.rglob("*.crt"))
              for der in _certificates(path.read_bytes())}
    if not extras:
        pytest.skip(f"this host trusts no extra CA ({HOST_EXTRA_CA_DIR} is empty): nothing could leak")
    # The search must be able to find them: the bundle the build borrowed holds every one.
    lent = HOST_BUNDLE.read_bytes()
    assert all(_holds(lent, der) for der in extras.values()), f"{HOST_BUNDLE} lacks a certificate of {HOST_EXTRA_CA_DIR}"

    leaks, trust_stores = [], 0
    for layer, member, content in layer_files(sorted(images.values()), LARGEST_FILE_READ):
        stem = Path(member.name).stem
        if stem in extras:
            leaks.append(f"{layer}: {member.name} is named like the host's {stem}.crt")
        if content is None:
            continue
        trust_stores += PEM_BEGIN in content
        leaks += [f"{layer}: {member.name} holds the host's {name}.crt" for name, der in extras.items()
                  if _holds(content, der)]
    assert trust_stores, "no certificate file found in any layer: the scan did not read the images"
    assert not leaks, "the build host's CA certificates are in the images:\n" + "\n".join(leaks)
