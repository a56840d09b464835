"""Static checks of images/: every image the pipeline names is built, every image installs pinned versions
(CUDA torch where training runs, CPU torch or none elsewhere), each image holds what the components that
run in it import and what `finegate compile` imports, runs as a numeric non-root user, and gets the build
host's CA bundle only as a build-time secret. No Docker needed (tests/images builds and runs them)."""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from components.common import images
from components.gguf import convert
from tests.platform.repo_files import (
    CONSTRAINTS,
    IMAGES,
    REPO,
    build_script_images,
    dockerfile_instructions,
    exact_pins,
    pip_installs,
    requirement_lines,
    requirement_name,
    run_flags,
)
from tests.platform.stage_imports import (
    canonical,
    closure,
    distributions_for,
    missing_own_modules,
    third_party_modules,
)

COMPONENT_IMAGES = {"DATA_IMAGE": images.DATA_IMAGE, "TRAIN_IMAGE": images.TRAIN_IMAGE, "GGUF_IMAGE": images.GGUF_IMAGE}
# Installed by a Dockerfile step of its own rather than from the image's requirements.txt.
INSTALLED_APART = {"gguf": {"torch", "llama-cpp-python"}}


def _image_name(ref: str) -> str:
    assert ref.startswith(images.REGISTRY + "/") and ref.endswith(":" + images.TAG), \
        f"{ref} is not {images.REGISTRY}/<name>:{images.TAG}"
    return ref[len(images.REGISTRY) + 1:].rsplit(":", 1)[0]


def _requirements(name: str) -> list[str]:
    return requirement_lines(IMAGES / name / "requirements.txt")


def test_every_component_image_has_a_dockerfile_that_build_sh_builds():
    built = build_script_images()
    for constant, ref in COMPONENT_IMAGES.items():
        name = _image_name(ref)
        assert (IMAGES / name / "Dockerfile").is_file(), f"{constant} = {ref}: no images/{name}/Dockerfile"
        assert name in built, f"{constant} = {ref}: images/build.sh does not build '{name}' ({built})"
    for name in built:
        assert (IMAGES / name / "Dockerfile").is_file(), f"images/build.sh builds '{name}' without a Dockerfile"


def test_compiled_production_pipeline_uses_only_images_build_sh_builds(compiled_pipeline):
    built = set(build_script_images())
    executors = compiled_pipeline["deploymentSpec"]["executors"]
    used = {name: ex["container"]["image"] for name, ex in executors.items()}
    assert used, "the compiled pipeline has no executors"
    unbuilt = {task: ref for task, ref in used.items() if _image_name(ref) not in built}
    assert not unbuilt, f"pipeline tasks run images nobody builds: {unbuilt}"


def test_requirement_files_name_no_local_paths_or_urls():
    # A path that exists on one machine (a wheel in /tmp) breaks every fresh install and image build.
    files = sorted((REPO / "requirements").glob("*.txt")) + sorted(IMAGES.glob("*/requirements.txt"))
    problems = [f"{p.relative_to(REPO)}: {line}" for p in files for line in requirement_lines(p)
                if "://" in line or " @ " in line or line.startswith(("/", "."))]
    assert not problems, "requirements must be name==version from an index:\n" + "\n".join(problems)


def test_every_image_requirement_resolves_to_an_exact_version():
    pins = exact_pins(CONSTRAINTS)
    problems = []
    for path in sorted(IMAGES.glob("*/requirements.txt")):
        own = exact_pins(path)
        for line in requirement_lines(path):
            name = requirement_name(line)
            if name not in own and name not in pins:
                problems.append(f"{path.relative_to(REPO)}: {line} is pinned neither here nor in constraints.txt")
            if name in own and name in pins and own[name] != pins[name]:
                problems.append(f"{path.relative_to(REPO)}: {name}=={own[name]} contradicts constraints.txt "
                                f"({pins[name]})")
    assert not problems, "\n".join(problems)


def test_dockerfiles_install_requirements_under_the_constraints():
    problems = []
    for dockerfile in sorted(IMAGES.glob("*/Dockerfile")):
        installs = pip_installs(dockerfile_instructions(dockerfile))
        for _ins, words in installs:
            if any(w in ("-r", "--requirement") or w.startswith("torch") for w in words) or \
                    any(w.endswith(".whl") for w in words):
                constraint = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-c", "--constraint")]
                if not any(c.endswith("constraints.txt") for c in constraint):
                    problems.append(f"{dockerfile.relative_to(REPO)}: `pip install {' '.join(words)}` without "
                                    "-c constraints.txt")
        copies = [i.args for i in dockerfile_instructions(dockerfile) if i.keyword == "COPY"]
        if installs and not any("requirements/constraints.txt" in c for c in copies):
            problems.append(f"{dockerfile.relative_to(REPO)}: never copies requirements/constraints.txt")
    assert not problems, "\n".join(problems)


def _installs_torch(name: str) -> bool:
    return "torch" in closure({requirement_name(line) for line in _requirements(name)})


def test_cpu_only_images_pull_no_torch_through_their_requirements():
    # torch from PyPI is the CUDA build (gigabytes); data and mlflow never need it, and the gguf image
    # must take it from the CPU index before its requirements run (next test).
    for name in ("data", "mlflow"):
        assert not _installs_torch(name), f"images/{name}/requirements.txt pulls torch in"
    assert "torch" not in {requirement_name(line) for line in _requirements("gguf")}, \
        "images/gguf/requirements.txt names torch, which would resolve to the CUDA wheel from PyPI"


def test_gguf_image_installs_the_pinned_cpu_torch_before_its_requirements():
    instructions = dockerfile_instructions(IMAGES / "gguf" / "Dockerfile")
    installs = pip_installs(instructions)
    torch_steps = [i for i, (_, words) in enumerate(installs) if any(w.startswith("torch==") for w in words)]
    req_steps = [i for i, (_, words) in enumerate(installs) if "-r" in words]
    assert torch_steps and req_steps and torch_steps[0] < req_steps[-1], \
        "images/gguf/Dockerfile must install torch before the requirements that depend on it (peft)"
    _, words = installs[torch_steps[0]]
    spec = next(w for w in words if w.startswith("torch=="))
    assert "${torch_version}" in spec, f"gguf torch must take its version from constraints.txt, not {spec}"
    args = {i.args.split("=", 1)[0]: i.args.split("=", 1)[1] for i in instructions if i.keyword == "ARG" and "=" in i.args}
    assert args.get("TORCH_LOCAL_VERSION") == "+cpu" and "whl/cpu" in args.get("TORCH_INDEX_URL", ""), \
        "the gguf image's torch must default to the CPU build from the PyTorch CPU index"
    assert re.fullmatch(r"\d+\.\d+\.\d+", exact_pins(CONSTRAINTS)["torch"]), \
        "constraints.txt must pin torch as a plain version (no +cpu: images add the variant)"


def test_train_image_takes_the_cuda_torch_from_pypi():
    assert "torch" in {requirement_name(line) for line in _requirements("train")}
    dockerfile = IMAGES / "train" / "Dockerfile"
    text = dockerfile.read_text(encoding="utf-8")
    assert "whl/cpu" not in text and "+cpu" not in text, "images/train/Dockerfile must not point pip at CPU wheels"
    args = {i.args.split("=", 1)[0]: i.args.split("=", 1)[1] for i in dockerfile_instructions(dockerfile)
            if i.keyword == "ARG" and "=" in i.args}
    assert args.get("TORCH_INDEX_URL", '""') == '""', "by default the train image takes torch from PyPI (CUDA)"
    assert "--index-url" not in text.replace("--extra-index-url", ""), \
        "--index-url would replace PyPI for every package of the train image"
    assert "bitsandbytes" in {requirement_name(line) for line in _requirements("train")}, \
        "QLoRA (train.quantization: 4bit) needs bitsandbytes in the train image"


def test_gguf_image_points_the_converter_variable_at_the_extracted_converter():
    text = (IMAGES / "gguf" / "Dockerfile").read_text(encoding="utf-8")
    env = re.search(rf"{convert.ENV_DIR}=(\S+)", text)
    assert env, f"images/gguf/Dockerfile sets no {convert.ENV_DIR} (components/gguf/convert.py looks there)"
    assert re.search(rf"setup_llama_cpp\.sh \S+ {re.escape(env.group(1))}\b", text), \
        f"the converter is not extracted to {env.group(1)}"
    assert f"COPY --from=llama-build {env.group(1)} {env.group(1)}" in text


def test_each_image_provides_what_its_components_import(compiled_pipeline):
    provided: dict[str, set[str]] = {}
    problems = []
    for task, ex in compiled_pipeline["deploymentSpec"]["executors"].items():
        name = _image_name(ex["container"]["image"])
        if name not in provided:
            wanted = {requirement_name(line) for line in _requirements(name)} | INSTALLED_APART.get(name, set())
            provided[name] = closure(wanted) | {"finegate"}
        source = ex["container"]["command"][-1]
        modules = third_party_modules(source)
        missing = {m: d for m, d in distributions_for(modules).items() if d not in provided[name]}
        if missing:
            problems.append(f"{task} runs in images/{name} but imports {missing} (module: distribution), "
                            f"which images/{name}/requirements.txt does not install")
    assert not problems, "\n".join(problems)


def test_component_bodies_import_only_finegate_modules_that_exist(compiled_pipeline):
    problems = {task: sorted(missing) for task, ex in compiled_pipeline["deploymentSpec"]["executors"].items()
                if (missing := missing_own_modules(ex["container"]["command"][-1]))}
    assert not problems, f"component bodies import finegate modules that do not exist: {problems}"


def test_gguf_dockerfile_really_installs_what_it_installs_apart():
    text = (IMAGES / "gguf" / "Dockerfile").read_text(encoding="utf-8")
    assert "llama_cpp_python-*.whl" in text and '"torch==' in text


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern + "/*") or \
                (pattern.startswith("**/") and fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern[3:])):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_local_state_out_and_what_dockerfiles_copy_in():
    patterns = requirement_lines(REPO / ".dockerignore")
    for heavy in (".git", ".venv", ".cache", "runs", "data", "component/__pycache__/x.pyc"):
        assert _ignored(heavy, patterns), f".dockerignore lets {heavy} into every build context"
    problems = []
    for dockerfile in sorted(IMAGES.glob("*/Dockerfile")):
        for ins in dockerfile_instructions(dockerfile):
            if ins.keyword == "COPY" and "--from=" not in ins.args:
                for source in ins.args.split()[:-1]:
                    if _ignored(source, patterns):
                        problems.append(f"{dockerfile.relative_to(REPO)} copies {source}, which .dockerignore drops")
                    elif not (REPO / source).exists():
                        problems.append(f"{dockerfile.relative_to(REPO)} copies {source}, which does not exist")
    assert not problems, "\n".join(problems)


def test_image_python_packages_match_the_local_names():
    # requirement names are compared canonically everywhere; a typo here would silently pin nothing.
    for path in sorted(IMAGES.glob("*/requirements.txt")):
        for line in requirement_lines(path):
            assert canonical(requirement_name(line)) == requirement_name(line)


# ---- finegate compile inside the images ----

@cache
def _compile_distributions() -> frozenset[str]:
    """The distributions `finegate compile` needs: the command runs in a fresh interpreter; every third-party
    module finegate's own loaded modules import by name (a lazy import that ran included) is mapped to the
    distribution whose RECORD lists its file. File level, since kfp, kfp-kubernetes and kfp-pipeline-spec all
    install into the one `kfp` package. What those distributions import in turn is their declared
    dependencies' business (`closure`), not an optional import that happens to succeed in this venv."""
    probe = ("import json, os, sys, tempfile\n"
             "from pipelines.cli import main\n"
             "assert main(['compile', '--config', 'configs/production.yaml', '--output', os.path.join(tempfile.mkdtemp(), 'p.yaml')]) == 0\n"
             "print(json.dumps({n: f for n, m in list(sys.modules.items()) if (f := getattr(m, '__file__', None))}))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, f"finegate compile failed here: {done.stderr[-2000:]}"
    loaded: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    # finegate's own modules: under the checkout, but not the virtual environment a checkout may hold (.venv)
    own = {name: Path(f) for name, f in loaded.items() if f.endswith(".py") and Path(f).resolve().is_relative_to(REPO)
           and not Path(f).resolve().is_relative_to(Path(sys.prefix).resolve())}
    imported: set[str] = set()
    for path in own.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    third_party = {m for m in imported if m in loaded and m not in own}
    roots = sorted({os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}, key=len, reverse=True)
    relative = set()
    for module in third_party:
        real = os.path.realpath(loaded[module])
        root = next((r for r in roots if real.startswith(r + os.sep)), None)
        if root is not None:
            relative.add(os.path.relpath(real, root))
    owners = {}
    for dist in metadata.distributions():
        for f in dist.files or []:
            owners.setdefault(str(f), canonical(dist.metadata["Name"]))
    return frozenset(owners[f] for f in relative if f in owners)


@pytest.mark.slow  # _compile_distributions: finegate compile in a fresh interpreter, every module mapped to its wheel
def test_finegate_compile_imports_kfp_kubernetes_here():
    # The check below is only as good as this probe: it must see the distribution the images once lacked.
    assert {"kfp", "kfp-kubernetes"} <= _compile_distributions()


@pytest.mark.slow  # _compile_distributions: finegate compile in a fresh interpreter, every module mapped to its wheel
def test_every_image_with_finegate_can_run_finegate_compile():
    needed = _compile_distributions()
    problems = []
    for dockerfile in sorted(IMAGES.glob("*/Dockerfile")):
        name = dockerfile.parent.name
        installs = pip_installs(dockerfile_instructions(dockerfile))
        if not any("/src" in words for _, words in installs):
            continue  # no finegate package in this image (mlflow)
        wanted = {requirement_name(line) for line in _requirements(name)} | INSTALLED_APART.get(name, set())
        missing = needed - closure(wanted)
        if missing:
            problems.append(f"images/{name}: `finegate compile` needs {sorted(missing)}, which its requirements "
                            "do not install")
    assert not problems, "\n".join(problems)


@pytest.mark.slow  # _compile_distributions: finegate compile in a fresh interpreter, every module mapped to its wheel
def test_pyproject_platform_extra_covers_finegate_compile():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["platform"]
    missing = _compile_distributions() - closure({Requirement(r).name for r in declared})
    assert not missing, f"pip install 'finegate[platform]' cannot run `finegate compile`: it lacks {sorted(missing)}"


# ---- non-root users ----

def _final_stage(dockerfile: Path):
    instructions = dockerfile_instructions(dockerfile)
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def test_every_image_runs_as_a_numeric_non_root_user_with_its_own_home():
    problems = []
    for dockerfile in sorted(IMAGES.glob("*/Dockerfile")):
        where = dockerfile.relative_to(REPO)
        final = _final_stage(dockerfile)
        users = [i.args for i in final if i.keyword == "USER"]
        if not users:
            problems.append(f"{where}: no USER, so the image runs as root")
            continue
        m = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
        if not m or int(m.group(1)) == 0:
            problems.append(f"{where}: USER {users[-1]} is not a numeric non-root uid (runAsNonRoot checks a number)")
            continue
        uid = m.group(1)
        runs = " ".join(i.args for i in final if i.keyword == "RUN")
        if not re.search(rf"useradd\b[^&;]*--uid {uid}\b[^&;]*--create-home", runs):
            problems.append(f"{where}: no `useradd --uid {uid} ... --create-home`: uid {uid} has no passwd entry or home")
        homes = [re.search(r"\bHOME=(\S+)", i.args) for i in final if i.keyword == "ENV"]
        homes = [h.group(1) for h in homes if h]
        if not homes or homes[-1] in ("/", "/root"):
            problems.append(f"{where}: HOME is not set to the user's own directory ({homes})")
    assert not problems, "\n".join(problems)


# ---- the build host's CA certificates stay out of the images ----

BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def _reaches_the_index(ins) -> bool:
    return ins.keyword == "RUN" and (bool(pip_installs([ins])) or "setup_llama_cpp.sh" in ins.args)


def test_every_step_that_reaches_the_package_index_borrows_the_ca_bundle_as_a_secret():
    problems = []
    for dockerfile in sorted(IMAGES.glob("*/Dockerfile")):
        for ins in dockerfile_instructions(dockerfile):
            if _reaches_the_index(ins) and \
                    f"--mount=type=secret,id=ca-bundle,target={BUNDLE}" not in run_flags(ins):
                problems.append(f"{dockerfile.relative_to(REPO)}: `RUN {ins.args[:80]}...` reaches the index "
                                f"without the ca-bundle secret mounted at {BUNDLE} (fails behind a TLS proxy)")
    assert not problems, "\n".join(problems)


def test_no_dockerfile_copies_certificates_into_a_layer():
    problems = [f"{d.relative_to(REPO)}: {i.keyword} {i.args}" for d in sorted(IMAGES.glob("*/Dockerfile"))
                for i in dockerfile_instructions(d) if i.keyword in ("COPY", "ADD")
                and re.search(r"ca-certificates|\.crt\b|\.pem\b", i.args)]
    assert not problems, "certificates copied into an image layer:\n" + "\n".join(problems)


def test_build_sh_lends_the_bundle_as_the_secret_the_dockerfiles_mount():
    text = (IMAGES / "build.sh").read_text(encoding="utf-8")
    assert re.search(r'--secret "id=ca-bundle,src=\$BUILD_CA_BUNDLE"', text)
    assert "DOCKER_BUILDKIT=1" in text, "secret mounts need BuildKit"
