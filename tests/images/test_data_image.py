"""The clean and split components run in the data image through KFP's DockerRunner (the container command
a pod gets: `python3 -m kfp.dsl.executor_main` on the component's base_image), and hand on what the same
stages hand on when they run in this process."""

# No `from __future__ import annotations`: KFP reads the pipeline's return annotation as a type.
import os
import shutil

import pytest

from components.common.config import load_config
from components.common.kfp_glue import config_to_json
from components.common.stage_output import read_output
from components.split.outputs import SPLITS, read_splits
from tests.conftest import REPO
from tests.images.docker_cli import image_uid_gid

pytestmark = pytest.mark.docker


def test_clean_and_split_components_run_in_the_data_image_and_agree_with_the_host(images, sample_path, tmp_path):
    from kfp import dsl, local

    from components.clean.component import clean
    from components.clean.core import run_clean
    from components.split.component import split
    from components.split.core import run_split

    ref = images["data"]
    for component in (clean, split):
        assert component.component_spec.implementation.container.image == ref, \
            f"{component.name} runs {component.component_spec.implementation.container.image}, not the image built"
    cfg = load_config(REPO / "configs" / "demo.yaml")
    # The runner mounts the pipeline root at the same path; the image's user writes the outputs there.
    root = tmp_path / "pipeline-root"
    root.mkdir()
    uid, gid = image_uid_gid(ref)
    os.chown(root, uid, gid)
    raw = root / sample_path.name
    shutil.copy(sample_path, raw)

    # A pipeline, as on a cluster: KFP's local runner hands an artifact from task to task only inside one.
    @dsl.pipeline(name="images-check-clean-split")
    def clean_then_split(raw_data_uri: str, config_json: str) -> dsl.Dataset:
        cleaned = clean(raw_data_uri=raw_data_uri, config_json=config_json)
        return split(cleaned=cleaned.outputs["cleaned"], config_json=config_json).outputs["splits"]

    local.init(runner=local.DockerRunner(network_mode="none"), pipeline_root=str(root), raise_on_error=True)
    run = clean_then_split(raw_data_uri=str(raw), config_json=config_to_json(cfg))
    [cleaned_dir] = root.glob("*/clean/cleaned")
    read_output(cleaned_dir, "clean", tmp_path / "cache")  # verified, and gate 0 passed
    in_container = read_splits(run.output.path, tmp_path / "cache")
    assert in_container.report["passed"], in_container.report.get("reasons")
    assert (in_container.directory / "report.json").stat().st_uid == uid, "the component did not run as the image's user"

    run_clean(raw, tmp_path / "host" / "clean", cfg)
    run_split(tmp_path / "host" / "clean" / "kept.jsonl", tmp_path / "host" / "split", cfg)
    on_host = read_splits(tmp_path / "host" / "split", tmp_path / "cache")
    for name in SPLITS:
        container_ids = [row.id for row in in_container.rows(name)]
        assert container_ids, f"{name}.jsonl is empty"
        assert container_ids == [row.id for row in on_host.rows(name)], f"{name}.jsonl differs from the host's run"
