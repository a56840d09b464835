"""`run`: what names and seeds the whole run."""

from __future__ import annotations

from pydantic import Field

from components.common.section import Section


class RunSection(Section):
    name: str = Field("finegate", description=(
        "Name of the run: the registered model's name unless register.model_name is set, and the pipeline's "
        "unless kfp.pipeline_name is."))
    run_id: str | None = Field(None, description="Stable id of this run; a restarted run with the same id resumes.")
    seed: int = Field(42, description="Seed of training (LoRA initialisation, data order), of hf_check's sampled answers and of the human-eval pairs, so a rerun repeats itself.")
