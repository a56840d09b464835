"""`tiny_base` and `import_gguf`: the two ways finegate makes a base-model folder (components/base_models)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.common.section import Section


class TinyBaseSection(Section):
    """`finegate make-tiny-base`: the locally built stand-in for a hub model (demo, tests, CI)."""

    vocab_size: int = Field(2000, ge=300, description="SentencePiece BPE vocabulary, 256 byte-fallback pieces included.")
    character_coverage: float = Field(0.9995, gt=0, le=1, description="Rarer characters fall back to bytes.")
    hidden_size: int = Field(256, ge=256, description=(
        "Model width; a multiple of 256, because llama.cpp's k-quants (Q4_K_M) quantize rows in 256-wide "
        "super-blocks."))
    intermediate_size: int = Field(512, ge=256, description="MLP width; a multiple of 256, as hidden_size.")
    num_layers: int = Field(2, ge=1, description="Transformer layers.")
    num_heads: int = Field(4, ge=1, description="Attention heads; hidden_size must be a multiple of it.")
    num_kv_heads: int = Field(2, ge=1, description="Key/value heads (grouped-query attention); num_heads must be a multiple of it.")
    max_position_embeddings: int = Field(512, description="Longest sequence the model has positions for.")
    pretrain_steps: int = Field(250, ge=0, description=(
        "Pre-training steps: enough for the model to write Japanese in the sample's style. More steps loop less "
        "but memorise the train titles (configs/demo.yaml says how many it uses and why)."))
    learning_rate: float = Field(3e-3, gt=0, description="Peak learning rate of pre-training (AdamW, cosine decay).")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="Share of the pre-training steps spent warming up.")
    batch_size: int = Field(8, ge=1, description="Token blocks per pre-training step.")
    seq_length: int = Field(128, ge=8, description="Tokens per pre-training block.")
    seed: int = Field(0, description="Seed of the initial weights and the block order: the same seed builds the same model.")
    num_threads: int = Field(1, ge=1, description=(
        "torch CPU threads for pre-training: the matrices are too small to gain from more."))
    pretrain_template: str | None = Field(None, description=(
        "How a train pair is written for pre-training ({prompt} then the title). None: train.prompt_template, "
        "so the base already knows the task's format; another template leaves learning the format to the "
        "fine-tuning, as with a real base model that has read articles and titles but never this instruction."))
    prompt_loss_weight: float = Field(0.1, ge=0, le=1, description=(
        "Loss weight of a training prompt's tokens in pre-training (the title and EOS weigh 1). Low, so the base "
        "learns the task's answer format without spending its few steps on continuing articles: on the 2-layer "
        "demo model, unweighted pre-training left every greedy answer a loop."))


class ImportGgufSection(Section):
    """`finegate import-gguf`: a GGUF file turned into a Hugging Face base-model folder (components/base_models)."""

    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="Dtype of the saved safetensors; quantized GGUF weights are dequantized into it.")
    verify_texts: list[str] = Field(
        ["0歳児のいる家で在宅勤務をすると、オンライン会議の半分は『ミュートにします』で終わる。",
         "退職金の見込み額、思ったより300万円少なかった",
         "  全角　スペースと半角ｶﾀｶﾅ、絵文字😀\n改行も。",
         "Hello, world! 12345 and 3.14"],
        min_length=1,
        description="Texts (and, when the file has a chat template, the first one as a chat prompt) that llama.cpp, "
                    "the GGUF's tokenizer and the saved tokenizer must turn into the same token ids, and on which the "
                    "saved model's logits must match the GGUF-loaded model's.")
    max_logit_diff: float = Field(
        1e-3, ge=0,
        description="Largest |logit difference| allowed between the saved folder and the GGUF-loaded model (same "
                    "weights, same dtype: anything above float rounding means the save lost something).")
    num_threads: int | None = Field(
        1, ge=1, description="torch CPU threads while loading and verifying (None: torch's default).")
