"""`gates`: every threshold a gate reads (and data.min_samples, evaluate.must_beat and evaluate.min_gain, which
live beside what they judge). An override needs a written reason, recorded with the model."""

from __future__ import annotations

from pydantic import Field

from components.common.section import Section


class GatesSection(Section):
    """Every threshold a gate reads. An override needs a written reason, recorded with the model."""

    max_contamination_rate: float = Field(0.0, description=(
        "Gate 0 (clean): share of kept rows that still break a contamination rule (tag list, URL/HTML, "
        "repetition, incomplete, noise); none may survive cleaning."))
    max_val_loss: float = Field(2.5, description=(
        "Gate A (train): the best validation loss (nats per completion token) of the model that ships."))
    fail_on_overfit: bool = Field(True, description=(
        "Gate A (train): an overfitting verdict on the loss curves (train.overfit) fails the run."))
    max_degenerate_rate: float = Field(0.1, description=(
        "Gate B (hf_check) and the evaluate gate: share of greedy outputs with any degenerate flag (repetition, "
        "empty, tag list, prompt copy, over length, broken text, template markup)."))
    min_rouge_l: float = Field(0.2, description=(
        "Gate B and the evaluate gate: ROUGE-L (Japanese words) of the outputs against the reference titles."))
    min_chrf: float = Field(0.1, description="Gate B: chrF of the outputs against the reference titles.")
    min_greedy_agreement: float = Field(0.8, description=(
        "Gate C (gguf): share of held-out prompts whose greedy continuation is the same from the F16 GGUF and "
        "the HF model."))
    max_logit_diff: float = Field(1.0, description=(
        "Gate C: largest absolute logit difference between the F16 GGUF and the HF model, teacher-forced on "
        "held-out texts."))
    min_same_top_token_rate: float = Field(0.85, description=(
        "Gate D (gguf): share of held-out positions where the quantized model's top token is the F16 model's."))
    max_mean_kld: float = Field(0.1, description=(
        "Gate D: mean KL divergence KL(F16 || quantized) of the next-token distributions."))
    max_perplexity_ratio: float = Field(1.1, description=(
        "Gate D: perplexity of the quantized model over the F16 model's on held-out texts."))
    max_f16_perplexity_drift: float = Field(0.01, ge=0, description=(
        "Gate C: |perplexity(F16) / perplexity(HF) - 1|; the same weights in F16 move perplexity well under 1%."))
    min_output_rouge_l: float = Field(0.5, ge=0, le=1, description=(
        "Gate D: mean ROUGE-L (Japanese words) between the quantized and the F16 model's greedy outputs."))
    loosened: dict[str, str] = Field({}, description=(
        "Why each gate threshold that is looser than its production default (the built-in value) is loosened, "
        "by the threshold's setting path, e.g. {'gates.min_rouge_l': 'a 2-layer demo model cannot reach 0.2'}. "
        "A loosened threshold without a reason is a config error; reports and MLflow mark every loosened one."))
    override_reason: str | None = Field(None, description=(
        "Written reason to register a run whose gates failed; recorded with the model version, which then needs "
        "its own --override-reason to be promoted. None: a failed run is never registered."))
