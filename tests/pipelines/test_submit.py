"""`finegate submit` against a KFP v2beta1 API on loopback (tests/fixtures/kfp_api_server.py): no live KFP server
runs here. The fake validates every request kfp.Client sends against the API's schemas and answers with
kfp-server-api's own models, so these tests prove the requests and the reading of the answers, not a cluster."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import kfp
import pytest
import yaml

from components.common.config import load_config
from components.common.errors import ConfigError
from pipelines import cli
from tests.fixtures.kfp_api_server import FakeKfp, KfpApiServer, RunPlan

pytestmark = pytest.mark.slow  # every test runs `finegate submit` in a child process that imports kfp

REPO = Path(__file__).resolve().parents[2]
# Inputs a pod can read (finegate compile refuses local paths for a cluster), and quick polling.
FAST = ["--set", "kfp.poll_interval_s=0.01", "--set", "kfp.request_timeout_s=5",
        "--set", "data.input=s3://finegate-data/note_titles.jsonl", "--set", "train.base_model=org/base-model"]
KFP_VARIABLES = ("KF_PIPELINES_ENDPOINT", "KF_PIPELINES_UI_ENDPOINT", "KF_PIPELINES_IAP_OAUTH2_CLIENT_ID",
                 "KF_PIPELINES_APP_OAUTH2_CLIENT_ID", "KF_PIPELINES_APP_OAUTH2_CLIENT_SECRET",
                 "KF_PIPELINES_SA_TOKEN_PATH", "FINEGATE_KFP_TOKEN")


@pytest.fixture(autouse=True)
def no_user_kfp_settings(monkeypatch, tmp_path):
    """kfp.Client reads ~/.config/kfp/context.json and KF_PIPELINES_* variables: none of this user's apply here."""
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    for name in KFP_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def kfp_api():
    with KfpApiServer(FakeKfp()) as server:
        yield server
    assert server.kfp.faults == [], "the fake KFP server failed itself"


def submit(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["submit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_new_pipeline_is_uploaded_and_a_run_of_it_is_created(kfp_api, capsys):
    code, out, err = submit(capsys, "--host", kfp_api.url, "--set", "gates.max_val_loss=1.5",
                            "--set", "gates.loosened.gates.max_val_loss=test", *FAST)
    fake = kfp_api.kfp
    assert code == 0, err
    assert fake.refused == []
    [pipeline] = fake.pipelines.values()
    [version] = fake.versions[pipeline.pipeline_id]
    [experiment] = fake.experiments.values()
    [run] = fake.runs.values()
    assert pipeline.display_name == "finegate" and experiment.display_name == "finegate"
    assert run.experiment_id == experiment.experiment_id
    assert run.pipeline_version_reference.pipeline_version_id == version.pipeline_version_id
    # the uploaded package is this run config's pipeline, thresholds compiled in
    spec = fake.packages[version.pipeline_version_id]
    compiled_config = json.loads(spec["root"]["inputDefinitions"]["parameters"]["config_json"]["defaultValue"])
    assert compiled_config["gates"]["max_val_loss"] == 1.5
    assert f"pipeline 'finegate': new, id {pipeline.pipeline_id}" in out
    assert f"run URL: {kfp_api.url}/#/runs/details/{run.run_id}" in out.splitlines()


def test_existing_pipeline_gets_a_new_version_and_the_experiment_is_reused(kfp_api, capsys):
    assert submit(capsys, "--host", kfp_api.url, *FAST)[0] == 0
    code, out, err = submit(capsys, "--host", kfp_api.url, "--run-name", "second", *FAST)
    fake = kfp_api.kfp
    assert code == 0, err
    assert fake.refused == []
    [pipeline] = fake.pipelines.values()
    first, second = fake.versions[pipeline.pipeline_id]
    assert second.display_name.startswith("finegate-") and second.display_name != first.display_name
    assert len(fake.experiments) == 1
    runs = list(fake.runs.values())
    assert [r.pipeline_version_reference.pipeline_version_id for r in runs] == [first.pipeline_version_id,
                                                                               second.pipeline_version_id]
    assert runs[1].display_name == "second"
    assert f"new version '{second.display_name}' ({second.pipeline_version_id})" in out


def test_wait_follows_a_run_that_succeeds_to_exit_0(kfp_api, capsys):
    kfp_api.kfp.plan = RunPlan(states=("PENDING", "RUNNING", "RUNNING", "SUCCEEDED"))
    code, out, err = submit(capsys, "--host", kfp_api.url, "--wait", *FAST)
    assert code == 0, err
    [run_id] = kfp_api.kfp.runs
    assert kfp_api.kfp.reads[run_id] == 4
    assert [line for line in err.splitlines() if line.startswith("run state:")] == [
        "run state: PENDING", "run state: RUNNING", "run state: SUCCEEDED"]
    assert out.splitlines()[-1] == f"run SUCCEEDED: {kfp_api.url}/#/runs/details/{run_id}"


def test_wait_on_a_failed_run_exits_1_naming_the_failed_tasks(kfp_api, capsys):
    message = "gate A (validation loss) stopped the run after stage 'train': value 2.31 does not meet best_val_loss <= 1.75"
    kfp_api.kfp.plan = RunPlan(states=("RUNNING", "FAILED"), failed_tasks={"gate-failed": message})
    code, out, err = submit(capsys, "--host", kfp_api.url, "--wait", *FAST)
    assert code == 1
    assert f"task failed: gate-failed (FAILED): {message}" in err.splitlines()
    assert "task failed: clean" not in err  # tasks that passed are not reported
    assert any(line.startswith("run FAILED: ") for line in err.splitlines())


def test_wait_gives_up_on_a_run_that_outlives_the_timeout(kfp_api, capsys):
    kfp_api.kfp.plan = RunPlan(states=("RUNNING",))
    code, _, err = submit(capsys, "--host", kfp_api.url, "--wait", "--wait-timeout-s", "0.05", *FAST)
    assert code == 1
    assert "run still RUNNING after 0.05 s (kfp.wait_timeout_s)" in err


def test_unreachable_host_is_one_line_and_exit_2(capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = submit(capsys, "--host", f"http://127.0.0.1:{port}", *FAST)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"finegate submit: error: KFP API at http://127.0.0.1:{port} unreachable: ")
    assert "Connection refused" in err


@pytest.mark.timeout(60)  # unbounded, kfp.Client would wait for that answer forever
def test_a_server_that_never_answers_fails_on_the_request_timeout(capsys):
    with socket.socket() as listener:  # accepts connections (the backlog), never reads or answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        code, out, err = submit(capsys, "--host", url, *FAST, "--set", "kfp.request_timeout_s=0.2")
    assert code == 2
    assert err.count("\n") == 1 and out == ""
    assert err.startswith(f"finegate submit: error: KFP API at {url} unreachable: ") and "timed out" in err


def test_token_from_the_environment_is_sent_as_bearer_and_never_printed(monkeypatch, capsys):
    token = "kfp-test-token-7f3a9c"
    monkeypatch.setenv("FINEGATE_KFP_TOKEN", token)
    with KfpApiServer(FakeKfp(token=token)) as server:
        code, out, err = submit(capsys, "--host", server.url, "--wait", *FAST)
    assert code == 0, err
    assert server.kfp.refused == []
    assert len(server.kfp.seen) >= 6
    assert {seen.authorization for seen in server.kfp.seen} == {f"Bearer {token}"}
    assert token not in out + err


def test_token_file_is_read_for_the_bearer_header(tmp_path, capsys):
    token = "projected-sa-token-51c2"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    with KfpApiServer(FakeKfp(token=token)) as server:
        code, out, err = submit(capsys, "--host", server.url, "--set", f"kfp.token_file={token_file}", *FAST)
    assert code == 0, err
    assert {seen.authorization for seen in server.kfp.seen} == {f"Bearer {token}"}
    assert token not in out + err


def test_a_refused_token_is_one_line_exit_2_without_the_token(capsys):
    with KfpApiServer(FakeKfp(token="the-right-one")) as server:
        code, out, err = submit(capsys, "--host", server.url, "--token", "a-wrong-token-0d1e", *FAST)
    assert code == 2
    assert err.count("\n") == 1 and out == ""
    assert "HTTP 401" in err and "a valid bearer token is required, got 'Bearer ***'" in err
    assert "a-wrong-token-0d1e" not in err


def test_namespace_files_pipeline_experiment_and_run_in_that_profile(kfp_api, capsys):
    code, _, err = submit(capsys, "--host", kfp_api.url, "--namespace", "team-a", "--experiment", "titles", *FAST)
    fake = kfp_api.kfp
    assert code == 0, err
    [pipeline] = fake.pipelines.values()
    [experiment] = fake.experiments.values()
    assert (pipeline.namespace, experiment.namespace, experiment.display_name) == ("team-a", "team-a", "titles")
    assert not any(seen.path.endswith("/healthz") for seen in fake.seen)  # kfp.Client asks it only without a namespace


def test_kfp_settings_refuse_a_host_without_scheme_or_with_credentials():
    with pytest.raises(ConfigError, match=r"kfp\.host: 'kfp:8080' needs its scheme"):
        load_config(None, ["kfp.host=kfp:8080"])
    with pytest.raises(ConfigError, match=r"kfp\.host: a URL here may not carry credentials") as raised:
        load_config(None, ["kfp.host=http://admin:hunter2@kfp:8080"])
    assert "hunter2" not in str(raised.value)


def test_the_fake_server_refuses_what_breaks_the_spec(kfp_api):
    """The checks the tests above rely on can fail: a body missing a required field, an unknown field, a query
    parameter the spec does not define, an upload that is not a pipeline."""

    def post(path: str, data: bytes, content_type: str = "application/json") -> tuple[int, dict]:
        request = urllib.request.Request(kfp_api.url + path, data=data, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    status, body = post("/apis/v2beta1/experiments", json.dumps({"description": "no name"}).encode())
    assert (status, body["code"]) == (400, 3) and "'display_name' is a required property" in body["message"]
    status, body = post("/apis/v2beta1/experiments", json.dumps({"display_name": "x", "colour": "red"}).encode())
    assert status == 400 and "'colour' was unexpected" in body["message"]
    status, body = post("/apis/v2beta1/runs?dry_run=true", json.dumps({"display_name": "r"}).encode())
    assert status == 400 and "dry_run" in body["message"]
    boundary = "b0undary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"uploadfile\"; filename=\"p.yaml\"\r\n\r\n"
            f"{yaml.safe_dump({'not': 'a pipeline'})}\r\n--{boundary}--\r\n").encode()
    status, body = post("/apis/v2beta1/pipelines/upload?name=p", form, f"multipart/form-data; boundary={boundary}")
    assert status == 400 and body["error_message"] == "Failed to read a pipeline spec file"
    assert kfp_api.kfp.pipelines == {} and kfp_api.kfp.experiments == {}


def test_a_multi_user_kfp_without_a_namespace_is_refused_before_any_upload(capsys):
    with KfpApiServer(FakeKfp(multi_user=True)) as server:
        code, out, err = submit(capsys, "--host", server.url, *FAST)
    assert code == 2 and out == ""
    assert err == f"finegate submit: error: KFP API at {server.url} is a multi-user KFP: set kfp.namespace " \
                  "(or --namespace) to your profile's namespace\n"
    assert [seen.path for seen in server.kfp.seen] == ["/apis/v2beta1/healthz"]


def test_a_missing_token_file_is_one_line_exit_2(kfp_api, tmp_path, capsys):
    code, out, err = submit(capsys, "--host", kfp_api.url, "--set", f"kfp.token_file={tmp_path / 'absent'}", *FAST)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and f"{tmp_path / 'absent'}: No such file or directory" in err
    assert kfp_api.kfp.seen == []


def test_without_a_host_the_kubeconfig_leads_to_kfp_with_its_credentials(tmp_path):
    """kfp.Client's kubeconfig path: the cluster's API server proxy to the ml-pipeline service, with the
    kubeconfig user's token (the proxy is emulated by the fake; no cluster runs here). A process of its own:
    the kubernetes client reads $KUBECONFIG once, when it is imported."""
    proxy = "/api/v1/namespaces/kubeflow/services/ml-pipeline:http/proxy"
    with KfpApiServer(FakeKfp(token="kubeconfig-user-token", proxy_prefix=proxy)) as server:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": server.url}}],
            "users": [{"name": "me", "user": {"token": "kubeconfig-user-token"}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "me"}}]}))
        env = {k: v for k, v in os.environ.items() if k not in KFP_VARIABLES and k != "KUBERNETES_SERVICE_HOST"}
        env.update(KUBECONFIG=str(kubeconfig), HOME=str(tmp_path), PYTHONPATH=str(REPO))
        done = subprocess.run([sys.executable, "-m", "pipelines.cli", "submit", *FAST], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert server.kfp.refused == [] and len(server.kfp.runs) == 1
    assert {seen.authorization for seen in server.kfp.seen} == {"Bearer kubeconfig-user-token"}
    assert "kubeconfig-user-token" not in done.stdout + done.stderr
    assert "run URL: unknown through a kubeconfig proxy; set kfp.ui_host to the KFP UI's address" in done.stdout


def test_without_a_host_or_a_kubeconfig_there_is_nothing_to_reach(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code, out, err = submit(capsys, *FAST)
    assert code == 2 and out == ""
    assert err == ("finegate submit: error: no KFP endpoint: set kfp.host (or --host, or $KF_PIPELINES_ENDPOINT), "
                   "or run where a kubeconfig or an in-cluster service account leads to the cluster\n")
