"""Runs the train KFP component's function the way KFP's launcher does in a pod (inputs and outputs as
artifacts at local paths), for the resume-by-run-id test.

    python -m tests.train.train_component_task SPLITS BASE OUT RUN_ID CONFIG_JSON
"""

import sys

from kfp import dsl

from components.train.component import train


def main(splits: str, base: str, out: str, run_id: str, config_json: str) -> None:
    passed = train.python_func(
        splits=dsl.Dataset(uri=splits, name="splits"), base_model=base, config_json=config_json, run_id=run_id,
        model=dsl.Model(uri=f"{out}/model", name="model"), adapter=dsl.Model(uri=f"{out}/adapter", name="adapter"),
        train_report=dsl.Artifact(uri=f"{out}/train_report", name="train_report"),
        metrics=dsl.Metrics(uri=f"{out}/metrics", name="metrics"),
        gate=dsl.Markdown(uri=f"{out}/gate", name="gate"), loss_curve=dsl.HTML(uri=f"{out}/loss_curve", name="loss_curve"))
    print(passed)


if __name__ == "__main__":
    main(*sys.argv[1:6])
