"""The GPU smoke pod asks for what the pipeline's GPU tasks get and for no node label nothing sets, and
every file, test, make target and kustomization that k8s/'s READMEs name exists."""

from __future__ import annotations

import re

from tests.platform.repo_files import K8S, REPO, containers, k8s_objects, pod_spec


def _smoke_pod():
    return next(o for o in k8s_objects() if o.kind == "Pod" and o.name == "gpu-smoke-test")


def _platform_executors(documents):
    return next(d for d in documents[1:] if "platforms" in d)["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_gpu_smoke_pod_selects_no_node_label_that_nothing_in_k8s_sets():
    # k8s/gpu/device-plugin is NVIDIA's static DaemonSet: it advertises nvidia.com/gpu and labels nothing
    # (nvidia.com/gpu.present and friends come from GPU feature discovery, which k8s/ does not install).
    # Only the kubelet's well-known labels can be relied on.
    spec = pod_spec(_smoke_pod())
    labels = set(spec.get("nodeSelector") or {})
    for term in ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms", []):
        labels |= {e["key"] for e in term.get("matchExpressions", [])}
    assert all(label.startswith(("kubernetes.io/", "node.kubernetes.io/")) for label in labels), labels


def test_gpu_smoke_pod_gets_what_the_gpu_tasks_get(compiled_documents, compiled_pipeline):
    spec = pod_spec(_smoke_pod())
    limits = containers(spec)[0]["resources"]["limits"]
    settings = _platform_executors(compiled_documents)
    gpu_tasks = {name: e["container"]["resources"]["accelerator"]
                 for name, e in compiled_pipeline["deploymentSpec"]["executors"].items()
                 if "accelerator" in e["container"].get("resources", {})}
    assert set(gpu_tasks) == {"exec-train", "exec-hf-check"}
    for name, accelerator in gpu_tasks.items():
        assert limits == {accelerator["resourceType"]: int(accelerator["resourceCount"])}, name
        assert spec.get("tolerations") == settings[name].get("tolerations"), name
        assert "runtimeClassName" not in spec, "pipeline tasks set no runtimeClassName; neither may the smoke test"


def _docs() -> list:
    return sorted(K8S.rglob("*.md"))


def test_every_path_the_k8s_docs_name_exists():
    problems = []
    for doc in _docs():
        text = doc.read_text(encoding="utf-8")
        for path in set(re.findall(r"(?<![\w/.-])((?:k8s|tests|images|configs|components|pipelines|scripts)/[\w./-]*\w)", text)):
            if not (REPO / path).exists() and not path.startswith("k8s/secrets/generated"):
                problems.append(f"{doc.relative_to(REPO)}: {path} does not exist")
    assert not problems, "\n".join(problems)


def test_every_test_the_k8s_docs_cite_exists():
    tests = {name for path in (REPO / "tests").rglob("test_*.py")
             for name in re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.M)}
    cited = {(doc, name) for doc in _docs() for name in re.findall(r"\b(test_\w+)\b", doc.read_text(encoding="utf-8"))
             if not name.endswith(".py")}
    missing = [f"{doc.relative_to(REPO)}: {name}" for doc, name in cited if name not in tests
               and not (REPO / "tests" / "platform" / f"{name}.py").exists()]
    assert not missing, "cited tests that do not exist: " + ", ".join(missing)


def test_every_make_target_the_k8s_docs_name_exists():
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(encoding="utf-8"), re.M))
    named = {(doc, t) for doc in _docs() for t in re.findall(r"`make ([\w-]+)`", doc.read_text(encoding="utf-8"))}
    missing = [f"{doc.relative_to(REPO)}: make {t}" for doc, t in named if t not in targets]
    assert not missing, ", ".join(missing)
