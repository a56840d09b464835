"""Data-parallel training: two gloo processes on this CPU started by `finegate train` (train.num_processes),
and a two-node TrainJob (train.nodes) run by the train task through the fake TrainJob API, whose nodes are
local processes (tests/fixtures/trainjob_api.py), against one process with the same global batch; real trl +
LoRA on the tiny base, data and model on moto's S3 server for the TrainJob.

Why these runs are comparable step by step, and the tolerance:
- Same examples in every optimizer step. Both runs draw one permutation of the train rows (accelerate's
  seedable sampler, seeded by run.seed); with per_device_batch_size=4 the two processes take alternate
  batches of 4 of it, exactly the two micro-batches one process takes with gradient_accumulation_steps=2.
  The global batch is 4 x 2 x 1 = 4 x 1 x 2 = 8.
- Same gradient: the loss of each micro-batch is divided by the token count of the whole global batch
  (transformers' average_tokens_across_devices), so averaging the two processes' gradients gives the
  one-process gradient. What remains is float32 summation order: the runs agreed to 1.2e-7 relative over 12
  steps on this machine.
- LoRA dropout off: each process draws its own dropout masks, which alone moved the logged train loss by
  1.5e-4 relative (measured with train.lora.dropout=0.05), noise that would hide a real mismatch.
- The tolerance, 1e-5 relative, is 15x below that dropout noise and 80x above the measured float difference.
- Validation loss: the Trainer averages the mean loss of each evaluation batch (per_device_batch_size rows),
  so runs with different per-device batches evaluate differently (one process with batch 8 vs 4x2: 0.019 on
  the sample's val split, same weights). Hence the one-process run uses batch 4 with accumulation 2, not batch
  8 (whose train losses equalled 4x2's to every printed digit), and the val split is cut to 40 rows: when the
  rows do not divide into batches x processes, DDP pads the last batch with repeated rows (8e-4 on 45 rows).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.common import storage
from components.common.report import read_jsonl, read_report
from components.common.stage_output import verify_output
from tests.fixtures.data import DEMO_CONFIG
from tests.fixtures.models import SHORT_TRAIN_SETTINGS, fixture_config
from tests.fixtures.stage_outputs import write_splits
from tests.fixtures.trainjob_api import FakeTrainJobs, TrainJobApiServer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VAL_ROWS = 40  # a multiple of per_device_batch_size x processes: no padded evaluation batch
SAME_RUN = [*SHORT_TRAIN_SETTINGS, "train.lora.dropout=0", "train.per_device_batch_size=4"]
RELATIVE_TOLERANCE = 1e-5


def finegate_train(splits: Path, base: Path, out: Path, tmp: Path, *settings: str) -> subprocess.CompletedProcess:
    """`finegate train` in its own process, as a person runs it; TMPDIR is where the node folder goes."""
    tmp.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pipelines.cli", "train", "--data-dir", str(splits), "--base-model", str(base),
               "--output-dir", str(out)]
    if DEMO_CONFIG.is_file():
        command += ["--config", str(DEMO_CONFIG)]
    for setting in settings:
        command += ["--set", setting]
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(REPO)}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=1200)


@pytest.fixture(scope="module")
def even_splits(tmp_path_factory, sample_splits) -> Path:
    train = read_jsonl(sample_splits / "train.jsonl")
    val = read_jsonl(sample_splits / "val.jsonl")[:VAL_ROWS]
    return write_splits(tmp_path_factory.mktemp("even") / "split", train, val)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_base, even_splits) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    root = tmp_path_factory.mktemp("runs")
    done = {}
    for name, settings in {"one": ["train.gradient_accumulation_steps=2"], "two": ["train.num_processes=2"]}.items():
        out = root / name / "out"
        done[name] = out, finegate_train(even_splits, tiny_base, out, root / name / "tmp", *SAME_RUN, *settings)
        assert done[name][1].returncode == 0, done[name][1].stderr[-3000:]
    return done


def _logged(run_dir: Path, key: str) -> dict[int, float]:
    state = json.loads((run_dir / "trainer_state.json").read_text())
    return {e["step"]: e[key] for e in state["log_history"] if key in e}


@pytest.mark.parametrize("key", ["loss", "eval_loss"])
def test_two_processes_log_the_losses_of_one_process_with_the_same_global_batch(runs, key):
    one, two = _logged(runs["one"][0], key), _logged(runs["two"][0], key)
    assert sorted(one) == sorted(two) and len(one) >= 2, (one, two)
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=RELATIVE_TOLERANCE), (step, one[step], two[step])


def test_the_report_says_how_many_processes_and_the_global_batch(runs):
    one, two = read_report(runs["one"][0])["metrics"], read_report(runs["two"][0])["metrics"]
    assert (one["processes"], one["nodes"], one["global_batch_size"]) == (1, 1, 8)
    assert (two["processes"], two["nodes"], two["global_batch_size"]) == (2, 1, 8)
    assert two["global_step"] == one["global_step"] == 12
    assert two["best_val_loss"] == pytest.approx(one["best_val_loss"], rel=RELATIVE_TOLERANCE)


def test_only_rank_0_writes_one_stage_output(runs):
    out, done = runs["two"]
    report = verify_output(out, "train", str(out))  # every file the manifest lists, and nothing torn
    assert json.loads(done.stdout) == report  # stdout: the one report, nothing the processes printed
    assert done.stderr.count("starting 2 data-parallel processes") == 1
    assert done.stderr.count("train: best val loss") == 1  # the summary rank 0 prints after writing
    assert sorted(p.name for p in out.parent.iterdir()) == ["out", "tmp"]  # no second staging folder left behind
    assert list((out.parent / "tmp").glob("finegate-train-*")) == []  # node folder removed
    for name in ("adapter/adapter_model.safetensors", "merged/model.safetensors", "loss_curve.png"):
        assert (out / name).is_file(), name


def test_both_runs_ship_the_same_adapter(runs):
    from safetensors.torch import load_file

    one = load_file(runs["one"][0] / "adapter" / "adapter_model.safetensors")
    two = load_file(runs["two"][0] / "adapter" / "adapter_model.safetensors")
    assert one.keys() == two.keys()
    for name in one:
        assert (one[name] - two[name]).abs().max().item() <= 1e-4 * max(one[name].abs().max().item(), 1e-8), name


# ---------------------------------------------------------------- two nodes: a TrainJob


@pytest.fixture(scope="module")
def trainjob_run(tmp_path_factory, tiny_base, even_splits, s3_endpoint):
    from components.train.trainjob_run import run_trainjob

    root = tmp_path_factory.mktemp("trainjob")
    bucket = "trainjob-e2e"
    storage.s3_client().create_bucket(Bucket=bucket)
    storage.publish(even_splits, f"s3://{bucket}/pipe/split")
    storage.publish(tiny_base, f"s3://{bucket}/models/base")
    cfg = fixture_config(*SAME_RUN, "train.nodes=2", "train.num_processes=1", "cluster.train.gpus=0",
                         "run.run_id=tj-e2e", f"train.checkpoint_uri=s3://{bucket}/ckpt",
                         "train.trainjob.namespace=kubeflow", "train.trainjob.poll_s=1")
    secret = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": s3_endpoint,
              "AWS_DEFAULT_REGION": "us-east-1"}
    fake = FakeTrainJobs(root / "cluster", secrets={"finegate-s3": secret}, run_nodes=True)
    with TrainJobApiServer(fake) as server:
        try:
            report = run_trainjob(f"s3://{bucket}/pipe/split", f"s3://{bucket}/models/base", root / "model",
                                  f"s3://{bucket}/pipe/train/model", cfg, api=server.api())
        except Exception:
            name = next(iter(fake.jobs))[1] if fake.jobs else "?"
            print("\n".join(fake.node_log(name, i)[-3000:] for i in range(2)))
            raise
    return root, bucket, report, fake


def test_two_nodes_log_the_losses_of_one_process_with_the_same_global_batch(trainjob_run, runs):
    root, _, report, _ = trainjob_run
    assert (report.metrics["processes"], report.metrics["nodes"], report.metrics["global_batch_size"]) == (2, 2, 8)
    for key in ("loss", "eval_loss"):
        one, nodes = _logged(runs["one"][0], key), _logged(root / "model", key)
        assert sorted(one) == sorted(nodes), (one, nodes)
        for step in one:
            assert nodes[step] == pytest.approx(one[step], rel=RELATIVE_TOLERANCE), (key, step, one[step], nodes[step])


def test_the_trainjob_output_lands_in_the_model_artifact_and_checkpoints_on_s3(trainjob_run):
    root, bucket, report, fake = trainjob_run
    assert verify_output(root / "model", "train", "model") == report.to_dict()
    assert (root / "model" / "merged" / "model.safetensors").is_file()
    assert storage.exists(f"s3://{bucket}/pipe/train/model-trainjob/report.json")  # where rank 0 wrote it
    for step in (6, 12):  # mirrored by rank 0 for a retried task to resume from
        assert storage.exists(f"s3://{bucket}/ckpt/tj-e2e/checkpoint-{step}/COMPLETE.json")
    [job] = fake.jobs.values()
    assert job["status"]["conditions"][-1]["type"] == "Complete"
    for node in (0, 1):  # each node's scratch folder is removed, and no process crashed
        assert list((root / "cluster" / job["metadata"]["name"] / f"node-{node}-disk").glob("finegate-train-*")) == []
        assert "Traceback" not in fake.node_log(job["metadata"]["name"], node)
