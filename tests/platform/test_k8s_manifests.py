"""Static checks of k8s/: every object is well-formed against Kubernetes' own schemas, and the objects
agree with each other (selectors, references, URLs, credentials, buckets) and with the code (images,
KFP version, the buckets the production config writes to). No cluster needed."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml

from components.common import images
from components.common.config import load_config
from tests.platform.repo_files import (
    CONSTRAINTS,
    K8S,
    NOT_OBJECTS,
    REPO,
    build_script_images,
    containers,
    exact_pins,
    k8s_objects,
    kustomizations,
    load_all,
    pod_labels,
    pod_spec,
    secret_values,
    yaml_files,
)

# The oldest Kubernetes the manifests must work on: KFP 2.17's own floor, and kind's default node images
# are newer. A field added after it fails here, as it would on such a cluster.
KUBERNETES_VERSION = "1.31"
CLUSTER_SCOPED = {"Namespace", "RuntimeClass", "ClusterRole", "ClusterRoleBinding", "StorageClass",
                  "PersistentVolume", "CustomResourceDefinition", "PriorityClass"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet"}
SERVICE_URL = re.compile(r"(?:(?P<scheme>[a-z][a-z0-9+.-]*)://(?:[^@/\s]*@)?)?"
                         r"(?P<svc>[a-z0-9-]+)\.(?P<ns>[a-z0-9-]+)\.svc(?:\.cluster\.local)?(?::(?P<port>\d+))?")


def _objects_of(kind: str):
    return [o for o in k8s_objects() if o.kind == kind]


def _find(kind: str, name: str, namespace: str | None):
    return [o for o in k8s_objects() if o.kind == kind and o.name == name and o.namespace == namespace]


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_every_yaml_file_parses():
    assert yaml_files(), "k8s/ holds no YAML"
    for path in yaml_files():
        try:
            load_all(path)
        except yaml.YAMLError as exc:
            pytest.fail(f"{path.relative_to(REPO)}: not valid YAML: {exc}")


def test_every_object_has_api_version_kind_and_name():
    problems = [f"{o.where}: missing {field}" for o in k8s_objects()
                for field, value in (("apiVersion", o.body.get("apiVersion")), ("kind", o.kind),
                                     ("metadata.name", o.name)) if not value]
    assert not problems, "\n".join(problems)


def test_namespaced_objects_say_which_namespace():
    # The top kustomization sets no namespace (objects live in two), so one left out lands in `default`.
    problems = [o.where for o in k8s_objects() if o.kind not in CLUSTER_SCOPED and not o.namespace]
    assert not problems, "objects without metadata.namespace: " + ", ".join(problems)


def test_objects_match_the_kubernetes_schema():
    problems = []
    for o in k8s_objects():
        try:
            kubernetes_validate.validate(o.body, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path) if getattr(exc, "path", None) else ""
            problems.append(f"{o.where} ({o.kind} {o.name}) at {path or '<root>'}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{o.where}: no schema for {o.body.get('apiVersion')} {o.kind} in Kubernetes "
                            f"{KUBERNETES_VERSION} (misspelt kind or apiVersion?)")
    assert not problems, "\n".join(problems)


def test_schema_check_rejects_a_misspelt_field():
    # Guards the test above: strict validation must flag unknown fields, not only wrong types.
    deployment = next(o for o in k8s_objects() if o.kind == "Deployment").body
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_workload_selectors_match_their_own_pod_template():
    problems = []
    for o in k8s_objects():
        selector = o.body.get("spec", {}).get("selector", {}).get("matchLabels")
        if o.kind in ("Deployment", "StatefulSet", "DaemonSet") and selector:
            labels = pod_labels(o)
            if any(labels.get(k) != v for k, v in selector.items()):
                problems.append(f"{o.where}: selector {selector} does not match its pod labels {labels}")
    assert not problems, "\n".join(problems)


def test_services_select_pods_that_exist_and_expose_their_target_ports():
    problems = []
    workloads = [o for o in k8s_objects() if o.kind in WORKLOADS]
    for svc in _objects_of("Service"):
        selector = svc.body["spec"].get("selector") or {}
        matches = [w for w in workloads if w.namespace == svc.namespace and selector
                   and all(pod_labels(w).get(k) == v for k, v in selector.items())]
        if not matches:
            problems.append(f"{svc.where}: Service {svc.name} selects {selector}, which no pod template in "
                            f"namespace {svc.namespace} carries")
            continue
        ports = {(p.get("name"), p["containerPort"]) for w in matches for c in containers(pod_spec(w))
                 for p in c.get("ports", [])}
        for port in svc.body["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            if not any(target in (name, number) for name, number in ports):
                problems.append(f"{svc.where}: targetPort {target!r} is not a port of the selected pods {ports}")
    assert not problems, "\n".join(problems)


def _references(spec: dict):
    """(kind, name, key or None) for every Secret, ConfigMap and PVC a pod spec uses."""
    for c in containers(spec):
        for source in c.get("envFrom", []):
            if "secretRef" in source:
                yield "Secret", source["secretRef"]["name"], None
            if "configMapRef" in source:
                yield "ConfigMap", source["configMapRef"]["name"], None
        for env in c.get("env", []):
            ref = env.get("valueFrom", {})
            if "secretKeyRef" in ref:
                yield "Secret", ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
            if "configMapKeyRef" in ref:
                yield "ConfigMap", ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            yield "Secret", volume["secret"]["secretName"], None
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"]["name"], None
        if "persistentVolumeClaim" in volume:
            yield "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"], None


def _keys(obj) -> set[str]:
    if obj.kind == "Secret":
        return set(secret_values(obj))
    return set((obj.body.get("data") or {}).keys())


def test_referenced_secrets_config_maps_and_claims_exist_with_their_keys():
    problems = []
    for o in k8s_objects():
        spec = pod_spec(o)
        if spec is None:
            continue
        claim_templates = {t["metadata"]["name"] for t in o.body.get("spec", {}).get("volumeClaimTemplates", [])}
        mounted = {v["name"] for v in spec.get("volumes", [])} | claim_templates
        for c in containers(spec):
            for mount in c.get("volumeMounts", []):
                if mount["name"] not in mounted:
                    problems.append(f"{o.where}: container {c['name']} mounts undeclared volume {mount['name']}")
        for kind, name, key in _references(spec):
            found = _find(kind, name, o.namespace)
            if not found:
                problems.append(f"{o.where}: uses {kind} {name}, which k8s/ does not define in namespace "
                                f"{o.namespace}")
            elif key and key not in _keys(found[0]):
                problems.append(f"{o.where}: uses key {key} of {kind} {name}, which has {sorted(_keys(found[0]))}")
    assert not problems, "\n".join(problems)


def _launcher_config() -> dict:
    launcher = [o for o in k8s_objects() if o.kind == "ConfigMap" and o.name == "kfp-launcher"]
    assert len(launcher) == 1, "k8s/kfp must patch exactly one kfp-launcher ConfigMap"
    return launcher[0].body


def test_kfp_launcher_reads_a_secret_that_exists_in_its_namespace():
    launcher = _launcher_config()
    providers = yaml.safe_load(launcher["data"]["providers"])
    ref = providers["s3"]["default"]["credentials"]["secretRef"]
    secret = _find("Secret", ref["secretName"], launcher["metadata"]["namespace"])
    assert secret, f"kfp-launcher names Secret {ref['secretName']}, absent from namespace kubeflow"
    keys = _keys(secret[0])
    assert {ref["accessKeyKey"], ref["secretKeyKey"]} <= keys, f"kfp-launcher wants keys the Secret lacks: {keys}"


def test_in_cluster_urls_name_services_and_ports_that_exist():
    problems, seen = [], 0
    services = {(s.name, s.namespace): {p["port"] for p in s.body["spec"]["ports"]} for s in _objects_of("Service")}
    for o in k8s_objects():
        texts = list(_strings(o.body)) + [v for v in secret_values(o).values()] if o.kind == "Secret" \
            else list(_strings(o.body))
        for text in texts:
            for m in SERVICE_URL.finditer(text):
                seen += 1
                key = (m["svc"], m["ns"])
                if key not in services:
                    problems.append(f"{o.where}: {m[0]} names Service {m['svc']} in {m['ns']}, not in k8s/")
                elif m["port"] and int(m["port"]) not in services[key]:
                    problems.append(f"{o.where}: {m[0]}: Service {m['svc']} has ports {services[key]}")
    assert seen, "no in-cluster URL found; the S3 and MLflow endpoints should be written as service DNS names"
    assert not problems, "\n".join(problems)


def test_one_s3_identity_for_minio_components_mlflow_and_the_launcher():
    root = secret_values(_find("Secret", "minio-root", "finegate")[0])
    for o in _objects_of("Secret"):
        if o.name == "finegate-s3":
            values = secret_values(o)
            assert (values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]) == (
                root["MINIO_ROOT_USER"], root["MINIO_ROOT_PASSWORD"]), \
                f"{o.where}: finegate-s3 in {o.namespace} differs from MinIO's root user (k8s/secrets/kustomization.yaml)"


def test_mlflow_database_uri_is_built_from_the_postgres_secret():
    # The URI names user and database through $(VAR)s the container sets from mlflow-postgres, and the
    # password goes to libpq as PGPASSWORD: one Secret, no copy of a credential that could drift.
    mlflow = next(o for o in _objects_of("Deployment") if o.name == "mlflow")
    container = containers(pod_spec(mlflow))[0]
    uri = next(a.split("=", 1)[1] for a in container["args"] if a.startswith("--backend-store-uri="))
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]
                   if "secretKeyRef" in e.get("valueFrom", {})}
    assert urlparse(uri).password is None, f"the backend URI carries a password: {uri}"
    for var in re.findall(r"\$\((\w+)\)", uri):
        assert from_secret.get(var, {}).get("name") == "mlflow-postgres", f"{uri}: $({var}) is not from mlflow-postgres"
    wanted = {"POSTGRES_USER": "POSTGRES_USER", "POSTGRES_DB": "POSTGRES_DB", "PGPASSWORD": "POSTGRES_PASSWORD"}
    assert {var: from_secret[var]["key"] for var in wanted} == wanted


def _buckets(uri: str) -> str:
    return urlparse(uri).netloc


def test_create_buckets_job_makes_every_bucket_the_platform_and_production_config_use():
    job = next(o for o in _objects_of("Job") if o.name == "create-buckets")
    env = {e["name"]: e.get("value") for c in containers(pod_spec(job)) for e in c.get("env", [])}
    created = set(env["BUCKETS"].split())
    cfg = load_config(REPO / "configs" / "production.yaml")
    used = {"pipeline root (k8s/kfp)": _buckets(_launcher_config()["data"]["defaultPipelineRoot"]),
            "data.input (configs/production.yaml)": _buckets(cfg.data.input),
            "train.checkpoint_uri (configs/production.yaml)": _buckets(cfg.train.checkpoint_uri)}
    mlflow = next(o for o in _objects_of("Deployment") if o.name == "mlflow")
    for arg in containers(pod_spec(mlflow))[0].get("args", []):
        if arg.startswith("--artifacts-destination="):
            used["MLflow artifacts (k8s/mlflow)"] = _buckets(arg.split("=", 1)[1])
    missing = {what: b for what, b in used.items() if b not in created}
    assert not missing, f"buckets nobody creates: {missing} (k8s/minio/create-buckets-job.yaml makes {created})"


def test_images_in_manifests_are_built_here_or_pinned_upstream():
    built = build_script_images()
    registry_host = images.REGISTRY
    problems = []
    for o in k8s_objects():
        spec = pod_spec(o)
        for c in containers(spec) if spec else []:
            image = c["image"]
            if image.startswith(registry_host + "/"):
                name, _, tag = image[len(registry_host) + 1:].partition(":")
                if name not in built:
                    problems.append(f"{o.where}: {image}: images/build.sh builds no '{name}' ({built})")
                if tag != images.TAG:
                    problems.append(f"{o.where}: {image}: tag {tag!r} is not the tag built ({images.TAG})")
            elif ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
                problems.append(f"{o.where}: {image} has no pinned tag")
    assert not problems, "\n".join(problems)


def _remote_refs() -> dict[str, str]:
    refs = {}
    for path, kust in kustomizations():
        for entry in kust.get("resources", []):
            if "://" in entry and "kubeflow/pipelines" in entry:
                m = re.search(r"[?&]ref=([^&]+)", entry)
                refs[str(path.relative_to(REPO))] = m.group(1) if m else ""
    return refs


def test_kfp_backend_manifests_match_the_pinned_sdk_minor_version():
    refs = _remote_refs()
    assert len(refs) == 2, f"expected the cluster-scoped and the platform install, found {refs}"
    assert len(set(refs.values())) == 1, f"both KFP kustomizations must use one ref: {refs}"
    ref = next(iter(refs.values()))
    sdk = exact_pins(CONSTRAINTS)["kfp"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", ref), f"KFP ref {ref!r} is not a release tag"
    assert ref.split(".")[:2] == sdk.split(".")[:2], f"KFP backend {ref} vs SDK kfp=={sdk}: minor versions differ"


def test_kustomizations_reference_files_that_exist_and_every_manifest_beside_them():
    problems = []
    for path, kust in kustomizations():
        listed = set()
        entries = list(kust.get("resources", [])) + [p["path"] for p in kust.get("patches", []) if "path" in p]
        for entry in entries:
            if "://" in entry or entry.startswith("github.com/"):
                continue
            target = (path.parent / entry).resolve()
            if not target.exists():
                problems.append(f"{path.relative_to(REPO)}: {entry} does not exist")
            elif target.is_dir() and not (target / "kustomization.yaml").exists():
                problems.append(f"{path.relative_to(REPO)}: {entry} is a folder without kustomization.yaml")
            listed.add(target)
        for sibling in path.parent.glob("*.yaml"):
            if sibling.name not in NOT_OBJECTS and sibling.resolve() not in listed:
                problems.append(f"{path.relative_to(REPO)}: does not list {sibling.name}, so it is never applied")
    assert not problems, "\n".join(problems)


def test_kind_registry_is_the_one_images_are_pushed_to():
    script = (K8S / "kind" / "create.sh").read_text(encoding="utf-8")
    port = re.search(r"^reg_port='(\d+)'", script, re.M).group(1)
    assert images.REGISTRY.startswith(f"localhost:{port}/"), \
        f"images.REGISTRY {images.REGISTRY} is not kind's registry localhost:{port}"
    cluster = load_all(K8S / "kind" / "cluster.yaml")[0]
    assert cluster["kind"] == "Cluster" and cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert any("/etc/containerd/certs.d" in patch for patch in cluster.get("containerdConfigPatches", []))
