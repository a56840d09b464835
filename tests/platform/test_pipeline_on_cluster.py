"""What the compiled pipeline asks of the cluster (kfp-kubernetes platform settings) must exist in k8s/:
the Secrets and ConfigMaps it names, in the namespace its pods run in, with the keys it reads."""

from __future__ import annotations

from tests.platform.repo_files import k8s_objects, secret_values

PIPELINE_NAMESPACE = "kubeflow"  # KFP standalone runs every pipeline pod there
S3_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"}


def _platform_executors(documents: list[dict]) -> dict[str, dict]:
    for doc in documents[1:]:
        if "platforms" in doc:
            return doc["platforms"].get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})
    return {}


def _keys(kind: str, name: str) -> set[str] | None:
    for o in k8s_objects():
        if o.kind == kind and o.name == name and o.namespace == PIPELINE_NAMESPACE:
            return set(secret_values(o)) if kind == "Secret" else set(o.body.get("data") or {})
    return None


def _secret_name(entry: dict) -> str:
    return entry.get("secretName") or entry["secretNameParameter"]["runtimeValue"]["constant"]


def _config_map_name(entry: dict) -> str:
    return entry.get("configMapName") or entry["configMapNameParameter"]["runtimeValue"]["constant"]


def test_secrets_and_config_maps_the_pipeline_reads_exist_with_their_keys(compiled_documents):
    problems = []
    for executor, settings in _platform_executors(compiled_documents).items():
        for entry in settings.get("secretAsEnv", []):
            name, wanted = _secret_name(entry), {m["secretKey"] for m in entry.get("keyToEnv", [])}
            keys = _keys("Secret", name)
            if keys is None or not wanted <= keys:
                problems.append(f"{executor}: Secret {name} keys {sorted(wanted)}; k8s/ has {keys} in "
                                f"{PIPELINE_NAMESPACE}")
        for entry in settings.get("configMapAsEnv", []):
            name, wanted = _config_map_name(entry), {m["configMapKey"] for m in entry.get("keyToEnv", [])}
            keys = _keys("ConfigMap", name)
            if keys is None or not wanted <= keys:
                problems.append(f"{executor}: ConfigMap {name} keys {sorted(wanted)}; k8s/ has {keys} in "
                                f"{PIPELINE_NAMESPACE}")
    assert not problems, "\n".join(problems)


def test_every_stage_task_gets_the_s3_credentials(compiled_documents, compiled_pipeline):
    settings = _platform_executors(compiled_documents)
    stages = [e for e in compiled_pipeline["deploymentSpec"]["executors"] if not e.startswith("exec-gate-failed")]
    without = []
    for executor in stages:
        env = {m["envVar"] for entry in settings.get(executor, {}).get("secretAsEnv", [])
               for m in entry.get("keyToEnv", [])}
        if not S3_ENV <= env:
            without.append(executor)
    assert not without, f"tasks that cannot reach S3 on a cluster (no {sorted(S3_ENV)} from a Secret): {without}"
