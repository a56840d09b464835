"""The run configuration: one typed, validated object shared by the CLI, the pipeline and the tests.

Loaded from a YAML file (see `configs/`), then dotted overrides (`--set split.seed=7`).
Unknown keys are rejected with their full path, so a typo never silently falls back to a default.
Thresholds of the gates live here and nowhere else.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from components.common.cluster import ClusterSection
from components.common.errors import ConfigError, InputError
from components.common.report import JsonProblem, parse_json, read_text


class Section(BaseModel):
    # allow_inf_nan=False: a NaN or infinite threshold would switch its gate off (NaN compares false both
    # ways), so every float of every section must be finite; subclasses inherit this.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class RunSection(Section):
    name: str = "finegate"
    run_id: str | None = Field(None, description="Stable id of this run; a restarted run with the same id resumes.")
    seed: int = 42


class StorageSection(Section):
    # Endpoint and credentials come from the standard AWS variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...);
    # these fields only override them.
    endpoint_url: str | None = None
    region: str | None = None
    verify_sha256: bool = True
    external_raw_inputs: bool = Field(
        True, description="The raw inputs a person uploads (clean's data.input, an s3:// train.base_model, "
        "evaluate's base model) may lack a recorded sha256: it is then computed on read and recorded in the stage's "
        "report. Stage outputs never may. False demands a recorded digest on raw inputs too.")
    connect_timeout_s: float = Field(5.0, gt=0, le=300, description="Seconds to wait for the S3 endpoint to "
                                     "accept a connection, per attempt.")
    read_timeout_s: float = Field(5.0, gt=0, le=3600, description="Seconds to wait for any byte of an S3 answer, "
                                  "per attempt; an endpoint that never answers fails after about "
                                  "max_attempts x read_timeout_s.")
    max_attempts: int = Field(3, ge=1, le=10, description="Tries per S3 request (and per object download), the "
                              "first included, before the stage fails naming the endpoint.")


class ColumnMapping(Section):
    """Maps a custom schema's columns onto the unified record (data.schema=mapping, or auto with a mapping)."""

    prompt: str
    completion: str
    id: str | None = None
    category: str | None = None
    group: str | None = None


class DataSection(Section):
    input: str = "data/sample/note_titles.jsonl"
    format: Literal["auto", "jsonl", "csv", "parquet"] = "auto"
    schema_: Literal["auto", "alpaca", "prompt_completion", "chat", "mapping"] = Field("auto", alias="schema")
    column_mapping: ColumnMapping | None = None
    # How an alpaca row becomes one prompt: instruction and input joined by this separator; chat rows join
    # their system and user messages the same way.
    alpaca_join: str = "\n\n"
    # For this task an alpaca row's `input` is the article: a row with a null or blank input is incomplete.
    # Instruction-only datasets (the instruction is the whole prompt) set this to false.
    alpaca_input_required: bool = True
    # CSV field delimiter; "auto" is a tab for .tsv files and a comma otherwise.
    csv_delimiter: str = Field("auto", min_length=1)
    min_samples: int = Field(300, ge=1, description="Gate 0: fewer surviving rows than this fails the run.")

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @model_validator(mode="after")
    def _mapping_needs_columns(self) -> DataSection:
        if self.schema_ == "mapping" and self.column_mapping is None:
            raise ValueError("data.schema=mapping needs data.column_mapping (prompt and completion columns)")
        return self


class TagListRule(Section):
    # A title is a tag list when it is several short noun segments joined by list separators
    # (自己紹介｜子育て｜ワーママ｜30代); one ｜ between a title and its subtitle is not a list.
    min_segments: int = Field(3, ge=2)
    # Longer segments are phrases, not tags (Japanese tags are 2-8 characters; 12 leaves room for 【】 labels).
    max_segment_chars: int = Field(12, ge=1)
    # Two hashtags already make a tag list; a lone hashtag only when nothing else is there.
    min_hashtags: int = Field(2, ge=1)


class RepetitionRule(Section):
    # The same character or phrase repeated back to back this many times is runaway repetition.
    max_char_run: int = Field(4, ge=2)
    max_phrase_repeats: int = Field(3, ge=2)
    max_phrase_chars: int = Field(12, ge=1)


class NearDuplicateRule(Section):
    # 5-character shingles: one edited character changes 5 of them, so on a 150-character article a few
    # particle swaps or an appended sentence already bring Jaccard to 0.75-0.85. 0.7 catches those; distinct
    # articles, even in one series, stay under 0.2. num_perm 128 keeps the estimate within about ±0.04.
    threshold: float = Field(0.7, gt=0, le=1, description="Estimated Jaccard similarity of character n-grams.")
    ngram: int = Field(5, ge=1)
    num_perm: int = Field(128, ge=16)


class CleanSection(Section):
    """The clean stage (components/clean): quality rules, then exact and near deduplication."""

    enabled: bool = Field(True, description=(
        "false replays a run without cleaning (the failed v1 run had none): rows are only parsed into the unified "
        "format and all kept, duplicates included; gate 0 still measures the contamination of what is kept."))

    # Length bounds on the normalized text. A note article body under 20 characters gives a model nothing
    # to title; a title over 60 characters is a summary, not a title.
    min_prompt_chars: int = Field(20, ge=0)
    max_prompt_chars: int = Field(4000, ge=1)
    min_completion_chars: int = Field(4, ge=0)
    max_completion_chars: int = Field(60, ge=1)
    truncate_prompt_chars: int | None = Field(
        None, ge=1,
        description="Cut each kept prompt to its first this many characters (after the length rules, before "
                    "deduplication), so every later stage trains and evaluates on the same shorter text; for runs "
                    "with a bounded CPU budget. None keeps prompts whole.")
    # Whole-text placeholders (compared after NFKC, case folding and stripping quotes/brackets).
    placeholders: list[str] = ["null", "none", "nan", "n/a", "undefined", "todo", "tbd", "untitled", "no title",
                               "title", "test", "sample", "xxx", "タイトル未定", "タイトル", "（タイトル）", "(タイトル)",
                               "仮タイトル", "仮題", "タイトルなし", "タイトルを入力", "無題", "未定", "なし", "テスト",
                               "サンプル", "-", "…", "..."]
    tag_list: TagListRule = TagListRule()
    repetition: RepetitionRule = RepetitionRule()
    near_duplicates: NearDuplicateRule = NearDuplicateRule()
    # The text two rows are compared on, for exact (after normalization) and near duplicates. With both, a
    # re-posted article under a slightly different title is still a near duplicate (the body dominates).
    dedup_on: Literal["prompt_completion", "prompt", "completion"] = "prompt_completion"
    # Control characters (C0/C1, DEL; not tab or newline) inside a field mean a corrupted export: the row is
    # rejected with its line and field ("reject"), or the characters are removed and the row kept ("strip").
    control_chars: Literal["reject", "strip"] = "reject"
    # report.json lists at most this many duplicate clusters (largest first); rejected.jsonl has every dropped row.
    report_max_clusters: int = Field(1000, ge=0)
    # A progress line on stderr every this many input rows (0: silent).
    progress_every: int = Field(50000, ge=0)
    # clean_rules.png (rows per rule) beside report.json; off saves about a second per run (property tests).
    write_chart: bool = True
    workers: int = Field(2, ge=0, description=(
        "Worker processes that parse, normalize, check and MinHash the rows while the stage's own process "
        "deduplicates them in input order and writes the files; 0 does everything in one process. The files are "
        "the same for any value. A fixed count, not one derived from the load average or the cores (a container "
        "sees the host's cores, not its CPU limit), so the cost per row is the same for every run and every input "
        "size. The default 2 suits two cores: the deduplicating process does about 30% of the work, the two "
        "workers share the rest; give it the CPUs the stage has. Inputs under 4096 rows run in one process "
        "whatever the value: starting workers would cost more than they save."))


class SplitSection(Section):
    # train/val/test shares. Also accepted: two values (train/val, no test: "80/20"), percentages
    # ([70, 15, 15]) and the string form "70/15/15" (handy with --set). Stored as three fractions.
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 42
    # Field of a kept row to stratify on; rows missing it form their own stratum.
    stratify_by: str | None = "category"
    # Field of a kept row whose equal values must land in one split (same article, author, thread).
    group_by: str | None = "group"
    # Rows that nearly or exactly duplicate each other (prompt or completion) are kept in one split, so a
    # pair clean let through (e.g. a stricter threshold here) cannot leak; the leak check is then a safety net.
    cluster_near_duplicates: bool = True
    # Rule for the clustering and the leak check; None means the same rule as clean.near_duplicates.
    near_duplicates: NearDuplicateRule | None = None
    # Fewer rows than this in a split is an error: val loss on a handful of rows is noise (gate A),
    # and a test score on a handful of rows says nothing (evaluate). Not applied to a split whose ratio is 0.
    min_train: int = Field(100, ge=1)
    min_val: int = Field(20, ge=1)
    min_test: int = Field(20, ge=1)

    @field_validator("ratios", mode="before")
    @classmethod
    def _ratio_shapes(cls, v: Any) -> Any:
        if isinstance(v, str):
            parts = [p for p in v.replace(",", "/").replace(":", "/").split("/") if p.strip()]
            try:
                v = [float(p) for p in parts]
                if not all(map(math.isfinite, v)):
                    raise ValueError
            except ValueError:
                raise ValueError(f"ratios as text look like '80/10/10' or '80/20', got '{v}'") from None
        if isinstance(v, (list, tuple)):
            if len(v) not in (2, 3):
                raise ValueError(f"give 2 (train/val) or 3 (train/val/test) ratios, got {len(v)}: {list(v)}")
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
                raise ValueError(f"ratios must be finite numbers, got {list(v)}")
            v = [float(x) for x in v] + [0.0] * (3 - len(v))
            if abs(sum(v) - 100.0) < 1e-6:
                v = [x / 100.0 for x in v]
        return v

    @field_validator("ratios")
    @classmethod
    def _accepted_ratios(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r < 0 for r in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"train/val/test ratios must be non-negative and sum to 1 (or 100), got {list(v)}")
        if v[0] <= 0:
            raise ValueError("the train ratio must be > 0")
        # A validation share of 0 is accepted here and refused by the training policy (components/train/policy.py),
        # which checks it before any compute, with the rule it breaks.
        return v


class LoraSection(Section):
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    use_rslora: bool = True
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class PolicySection(Section):
    """The standard's rules for a LoRA SFT run; checked before any compute."""

    rank_range: tuple[int, int] = (16, 64)
    alpha_multipliers: list[int] = [1, 2]
    dropout_range: tuple[float, float] = (0.0, 0.1)
    learning_rate_range: tuple[float, float] = (1e-4, 3e-4)
    warmup_ratio_range: tuple[float, float] = (0.03, 0.10)
    epochs_range: tuple[float, float] = (1, 3)
    early_stopping_patience_range: tuple[int, int] = Field(
        (10, 20), description="Evaluations without improvement before early stopping (standard, Phase 3: 10-20).")
    schedulers: list[str] = ["cosine", "linear", "constant_with_warmup"]
    required_target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class OverfitSection(Section):
    """How the train stage judges overfitting from its loss history (components/train/overfit.py)."""

    # Centered moving average over this many evaluation points (odd; 1 turns it off). Centered, so the
    # smoothed curve does not lag behind a rise at the end; shrunk on short histories so that a run with
    # only 3-8 evaluations is judged on its raw points rather than flattened away.
    smoothing_window: int = Field(5, ge=1)
    # "The last part of training" for the gap and correlation signals: this share of the run's steps,
    # never fewer than 3 evaluations.
    tail_fraction: float = Field(0.3, gt=0, lt=1)
    # Signal 1 (val rising while train falls): the smoothed val loss ends this far above its minimum,
    # relative to that minimum (3% is visible on any plot; relative so a loss of 1.2 and of 5.0 are judged alike)...
    min_val_rise: float = Field(0.03, ge=0)
    # ...and by more than this many times the val loss's own eval-to-eval noise, so a noisy plateau is no rise...
    noise_sigmas: float = Field(2.0, ge=0)
    # ...while the smoothed train loss fell at least this much (relative) since that minimum.
    min_train_drop: float = Field(0.01, ge=0)
    # Early stopping needs `patience` evaluations past the minimum to notice it (train.early_stopping_patience),
    # and the train stage restores the best checkpoint: a rise confined to that many evaluations at the end
    # is the system working, not overfitting, and those evaluations are left out of the judgement...
    # (Only with train.early_stopping and train.load_best_at_end on: without them the last step ships, rise and all.)
    grace_evals: int = Field(3, ge=0)
    # ...unless the rise is this steep (relative to the minimum): then the run overfits even in that short window.
    strong_val_rise: float = Field(0.10, ge=0)
    # The rise starts after the last evaluation whose smoothed val loss is within this share of the minimum,
    # so a flat stretch at the minimum is not counted as rising.
    rise_onset_tolerance: float = Field(0.01, ge=0)
    # Signal 2 (gap widening): over the tail, the smoothed val-minus-train gap grows by this share of the
    # val loss (a share of the loss level, not of the gap, so a tiny gap doubling is not an alarm).
    min_gap_growth: float = Field(0.15, ge=0)
    # ...and by this many standard errors of the trends fitted through the logged losses: a gate that fails
    # runs needs a rare false alarm, and at 2 sigma one noisy healthy run in ~40 shows a "widening" gap.
    gap_noise_sigmas: float = Field(3.0, ge=0)
    # Signal 3 (the curves decouple, arXiv 2401.10359): Pearson correlation of the smoothed curves over the
    # tail under this is "weak" (|r| < 0.3 is the usual reading of a weak correlation). Alone it fires on
    # every plateau, so it only counts together with signal 2.
    min_correlation: float = Field(0.3, ge=-1, le=1)
    # Signal 4, the standard's memorization rule: train loss under this (absolute, as the standard states it)...
    low_train_loss: float = Field(0.3, gt=0)
    # ...while val loss stays at least this many times the train loss (and itself above low_train_loss).
    high_val_loss_ratio: float = Field(2.0, gt=1)
    # Fewer evaluations than this cannot show a curve's shape: the verdict is "ok" with a note saying so.
    min_points: int = Field(3, ge=2)


class TrainJobSection(Section):
    """How the pipeline's train task runs a multi-node run (train.nodes > 1) as a Kubeflow Trainer TrainJob."""

    runtime: str = Field("torch-distributed", description=(
        "ClusterTrainingRuntime the TrainJob names in spec.runtimeRef (k8s/trainer installs Trainer v2.3.0's "
        "runtimes; torch-distributed runs the command with torchrun's PET_* environment)."))
    namespace: str | None = Field(None, description="Namespace of the TrainJob; None: the train task's own.")
    image: str | None = Field(None, description="Image of the training nodes; None: the train image the task runs in.")
    timeout_s: int = Field(172800, ge=1, description=(
        "The TrainJob's activeDeadlineSeconds, and how long the train task waits for it before deleting it."))
    poll_s: float = Field(30, gt=0, description="Seconds between two reads of the TrainJob's status.")
    shm_size: str = Field("8Gi", description=(
        "Size of the memory-backed /dev/shm of every node (counted against its memory limit): NCCL passes data "
        "between the GPUs of a node through it, and a container's default 64Mi stalls or fails it."))


class TrainSection(Section):
    """`finegate train`: LoRA SFT with trl; every field is described in components/train/core.py."""

    base_model: str = Field(".cache/tiny-base", description="Hub id, local folder or s3:// prefix (safetensors only).")
    trust_remote_code: bool = False  # a hub model's own Python code runs only when a person turns this on
    quantization: Literal["none", "4bit"] = Field("none", description="4bit = QLoRA (bitsandbytes NF4); needs CUDA.")
    lora: LoraSection = LoraSection()
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of the steps spent warming up (standard: 3-10%).")
    num_epochs: float = Field(2, gt=0)
    max_steps: int = Field(-1, description="Caps training steps (tests, smoke runs); -1 means no cap.")
    per_device_batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_seq_length: int = Field(512, ge=8, description="Tokens per example; rows whose completion would not fit at all are dropped and counted.")
    # Padding-free batches (trl flattens the batch into one row with position_ids; the attention keeps
    # examples apart) train on real tokens only; packing additionally fills rows up to max_seq_length.
    packing: bool = False
    packing_strategy: Literal["bfd", "bfd_split", "wrapped"] = "bfd"
    padding_free: bool = True
    # Recomputes activations in the backward pass: ~30% more compute for far less GPU memory (trl's default).
    gradient_checkpointing: bool = True
    # torch CPU threads while training on CPU (None: torch's default, one per core). Tiny models gain nothing
    # from more: on the shared 2-core dev machine one thread ran a tiny-Llama LoRA step 4-10x faster than two.
    cpu_threads: int | None = Field(None, ge=1)
    eval_steps: int = Field(20, ge=1, description="Validation loss every this many optimizer steps.")
    save_steps: int = Field(20, ge=1, description="A checkpoint every this many steps; a multiple of eval_steps.")
    save_total_limit: int | None = Field(3, ge=1, description="Local checkpoints kept (the best one always is); the mirror keeps all.")
    logging_steps: int = Field(5, ge=1)
    early_stopping: bool = Field(True, description="Stop when the validation loss stops improving (the standard "
                                 "requires it; off only to replay a run without it, with a policy override).")
    early_stopping_patience: int = Field(10, ge=1, description="Evaluations without improvement before training "
                                         "stops (standard: 10-20; checked by the policy).")
    load_best_at_end: bool = Field(True, description="Restore the checkpoint with the best validation loss at the "
                                   "end (the standard requires it; off only to replay a run that shipped its last step).")
    early_stopping_threshold: float = Field(0.0, ge=0, description="How much val loss must fall to count as improvement.")
    checkpoint_uri: str | None = Field(None, description="Local dir or s3:// prefix; checkpoints are mirrored here at every save.")
    resume: bool = Field(True, description="With run.run_id and checkpoint_uri: resume from the newest complete mirrored checkpoint.")
    keep_local_checkpoints: bool = Field(False, description="Keep output_dir/checkpoints after a successful run (the mirror keeps them anyway).")
    prompt_template: str = "### 指示\n{prompt}\n\n### タイトル\n"
    policy: PolicySection = PolicySection()
    policy_override_reason: str | None = None
    overfit: OverfitSection = OverfitSection()
    num_processes: int = Field(1, ge=1, description=(
        "Data-parallel processes in the train pod or on this machine, started by torchrun: one per GPU, or CPU "
        "processes (gloo). Each gets per_device_batch_size examples, so the global batch is per_device_batch_size "
        "x gradient_accumulation_steps x num_processes x nodes."))
    nodes: int = Field(1, ge=1, description=(
        "Machines to train on. Above 1 the pipeline's train task runs the stage as a Kubeflow Trainer TrainJob "
        "(nodes x num_processes processes) and waits for it; `finegate train` and `finegate run` use one machine."))
    process_group_timeout_s: int = Field(7200, ge=1, description=(
        "With more than one process: how long a process waits for the others at a step they take together "
        "(the first process of a node downloading the base model, rank 0 uploading a checkpoint) before the run "
        "fails. transformers' default, 30 minutes, is shorter than downloading a large base model from S3."))
    output_uri: str | None = Field(None, description=(
        "s3:// prefix a TrainJob writes the stage output under (<output_uri>/<run id>) before the train task copies "
        "it into its model artifact; None: beside that artifact."))
    trainjob: TrainJobSection = TrainJobSection()

    @field_validator("prompt_template")
    @classmethod
    def _template_has_prompt(cls, v: str) -> str:
        try:
            v.format(prompt="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"train.prompt_template must contain {{prompt}} and no other field: {exc}") from None
        if "{prompt}" not in v:
            raise ValueError("train.prompt_template must contain {prompt}")
        return v

    def overfit_rules(self) -> OverfitSection:
        """train.overfit as the detector applies it to this run: the early-stopping grace only exists when
        early stopping ends the run and the best checkpoint is what ships."""
        if self.early_stopping and self.load_best_at_end:
            return self.overfit
        return self.overfit.model_copy(update={"grace_evals": 0})

    @model_validator(mode="after")
    def _saves_land_on_evaluations(self) -> TrainSection:
        # The best checkpoint can only be restored if a save happens at every evaluation that may be the best.
        if self.save_steps % self.eval_steps:
            raise ValueError(f"train.save_steps ({self.save_steps}) must be a multiple of train.eval_steps "
                             f"({self.eval_steps}) so the best checkpoint can be restored")
        return self


class TinyBaseSection(Section):
    """`finegate make-tiny-base`: the locally built stand-in for a hub model (demo, tests, CI)."""

    vocab_size: int = Field(2000, ge=300, description="SentencePiece BPE vocabulary, 256 byte-fallback pieces included.")
    character_coverage: float = Field(0.9995, gt=0, le=1, description="Rarer characters fall back to bytes.")
    # Multiples of 256: llama.cpp k-quants (Q4_K_M) quantize rows in 256-wide super-blocks.
    hidden_size: int = Field(256, ge=256)
    intermediate_size: int = Field(512, ge=256)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    num_kv_heads: int = Field(2, ge=1)
    max_position_embeddings: int = 512
    # About a minute of one CPU core: enough for the model to write Japanese in the sample's style.
    pretrain_steps: int = Field(250, ge=0)
    learning_rate: float = Field(3e-3, gt=0)
    warmup_fraction: float = Field(0.05, ge=0, lt=1)
    batch_size: int = Field(8, ge=1)
    seq_length: int = Field(128, ge=8)
    seed: int = 0
    # torch CPU threads for pre-training: these matrices are too small to gain from more (two threads ran a
    # step 4x slower than one on a shared 2-core machine).
    num_threads: int = Field(1, ge=1)
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


class DegenerateSection(Section):
    """How hf_check (and check-outputs) tells a broken output from a real answer (components/common/degenerate.py)."""

    # Longer than the longest title the clean stage keeps (clean.max_completion_chars): the model did not stop.
    max_output_chars: int = Field(60, ge=1)
    # Fewer letters and digits than this is no answer (の, w), even when it is not blank.
    min_content_chars: int = Field(2, ge=1)
    # Prompt copy: output characters inside runs of >= prompt_copy_ngram characters shared with the prompt
    # (a phrase, not a shared word like ピアノ)...
    prompt_copy_ngram: int = Field(8, ge=2)
    # ...one of those runs at least this long (a title may lift one clause of the body: 朝の1時間を自分のために
    # is 12, and real titles recombine the body's phrases: 退職金の見込み額、思ったより300万円少なかった)...
    prompt_copy_min_chars: int = Field(16, ge=1)
    # ...and all of them making up this share of the output (a title quoting one phrase of the body stays a title).
    prompt_copy_min_coverage: float = Field(0.7, gt=0, le=1)
    opening_copy_min_chars: int = Field(4, ge=1, description=(
        "Prompt copy, however short: an output of at least this many letters and digits that is the opening of a "
        "prompt paragraph (the article's or the instruction's first words) cut off before its first sentence ends "
        "(小学生のころに), or run on past it. The first sentence taken whole, without its full stop and with no 、 "
        "inside, stays a title: writers title articles with it (ベビーカーで電車に乗るのが怖かった)."))
    # Loops: a character run (max_char_run), a unit of up to max_phrase_chars characters said
    # max_phrase_repeats times back to back; the same rule (and detector) the clean stage applies to titles,
    # here also across spaces (の の の の).
    repetition: RepetitionRule = RepetitionRule()
    # A phrase this long recurring max_phrase_repeats times anywhere (1. 朝活 2. 朝活 3. 朝活) is a loop;
    # shorter ones recur in natural parallel titles (ちゃんと食べて、ちゃんと寝て、ちゃんと休む).
    recurring_phrase_chars: int = Field(5, ge=2)
    # A phrase this long said even twice is a repeated title, not emphasis (ちゃんと、ちゃんと is 4).
    long_phrase_chars: int = Field(10, ge=2)
    # Only this much of an output is scanned for loops: a runaway output is flagged long before that.
    max_scan_chars: int = Field(2000, ge=100)


class HfCheckSection(Section):
    """Inference check of the merged HF model before any conversion (gate B reads its report)."""

    splits: list[str] = ["val", "test"]
    max_new_tokens: int | None = Field(None, ge=1, description=(
        "Tokens generated per answer. None: derived from the tokenizer so that any title of up to "
        "degenerate.max_output_chars characters fits with the token that ends it: max_output_chars x the most "
        "tokens the tokenizer spends per character of the titles (each character alone, and each training and "
        "reference title as a whole), + token_budget_margin. An integer overrides it; report.json records the "
        "budget used and how many titles would not fit in it."))
    token_budget_margin: int = Field(4, ge=1, description=(
        "Tokens added to the derived max_new_tokens (hf_check's and evaluate's): the EOS or newline that ends the "
        "answer, and slack for merges a per-character count cannot see."))
    # Prompts taken from each split (the first ones, so runs compare like with like).
    max_prompts: int = 64
    batch_size: int = 8
    # Titles are one line: generation stops at EOS or at the first newline.
    stop_at_newline: bool = True
    # An output cut off by max_new_tokens (no EOS, no newline) is rambling: flagged over_length.
    flag_unfinished: bool = True
    # Greedy outputs are gated; with do_sample, one sampled output per prompt is also flagged and reported.
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    degenerate: DegenerateSection = DegenerateSection()


class GgufSection(Section):
    quant_type: str = Field("Q4_K_M", description="The quantization type to ship (llama.cpp's name: Q4_K_M, Q8_0, ...).")
    ladder: list[str] = Field(["Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"], description=(
        "Larger types to climb to, in order, when gate D fails for gguf.quant_type: the first that passes ships "
        "and every rung tried is reported. [] ships quant_type or nothing."))
    # Held-out records (val first, then test) compared across HF, F16 and each quantized file.
    n_prompts: int = Field(16, ge=1)
    n_ctx: int = Field(512, ge=64, description="llama.cpp context; longer held-out texts are cut to it.")
    n_threads: int | None = None
    # -1 offloads every layer when llama.cpp was built with a GPU backend; a CPU build ignores it.
    n_gpu_layers: int = -1
    max_new_tokens: int = Field(32, ge=1, description="Greedy tokens generated per prompt for the agreement checks.")
    # The HF reference runs in float32 so gate C measures the conversion, not the reference's own rounding.
    hf_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    hf_device: str = Field("auto", description="torch device of the HF reference; auto: cuda when available.")
    converter_dir: str | None = Field(None, description="Folder holding convert_hf_to_gguf.py and gguf-py; default: the setup cache.")

    def rungs(self) -> list[str]:
        """quant_type, then every ladder type above it, in the order gate D tries them."""
        first, ladder = self.quant_type.upper(), [t.upper() for t in self.ladder]
        above = ladder[ladder.index(first) + 1 :] if first in ladder else ladder
        return list(dict.fromkeys([first, *above]))


class JudgeSection(Section):
    """Optional LLM-as-judge through any OpenAI-compatible chat endpoint (components/evaluate/judge.py)."""

    enabled: bool = False
    # Base URL of the endpoint (".../v1"; "/chat/completions" is appended) or the full chat completions URL.
    url: str | None = None
    model: str = "judge"
    # The API key is read from this environment variable (never from the config, which is logged with the run).
    api_key_env: str = "FINEGATE_JUDGE_API_KEY"
    rubric: str = (
        "記事本文に対するタイトルとして、内容との一致・自然さ・魅力を1から5で採点し、"
        '{"score": <1-5>, "reason": "..."} のJSONだけを返してください。'
    )
    user_template: str = "記事:\n{article}\n\nタイトル:\n{title}"
    # Key of the score in the judge's JSON, and its scale; a score outside it counts as malformed.
    score_key: str = "score"
    min_score: float = 1
    max_score: float = 5
    # Sent verbatim as the request's response_format when set: {"type": "json_object", "schema": {...}} for
    # llama.cpp, {"type": "json_schema", "json_schema": {...}} for OpenAI. Leave unset for endpoints without it.
    response_format: dict[str, Any] | None = None
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(256, ge=1)
    # Which systems' titles are judged ("finetuned", "base", "heuristic"), each on the first max_samples rows.
    systems: list[Literal["finetuned", "base", "heuristic"]] = ["finetuned", "base"]
    max_samples: int = Field(50, ge=1)
    # Retries on timeouts, refused connections, 429 and 5xx, waiting backoff_s, then twice as long each time.
    max_retries: int = Field(3, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    timeout_s: float = Field(60, gt=0)
    # The judge is advisory unless required: then an unreachable judge, or more unreadable replies than
    # max_malformed_rate, fails the evaluate gate instead of being recorded as a warning.
    required: bool = False
    max_malformed_rate: float = Field(0.2, ge=0, le=1)
    # The fine-tuned model's mean judge score under this fails the gate; None: reported, not gated.
    min_mean_score: float | None = None


class EvaluateSection(Section):
    """The evaluate stage: the quantized model and two baselines on test.jsonl (components/evaluate)."""

    # test.jsonl rows scored (the first ones, in file order); a bigger test set is cut, never sampled.
    max_samples: int = Field(200, ge=1)
    max_new_tokens: int | None = Field(None, ge=1, description=(
        "Tokens generated per title by every model system. None: derived per system from its tokenizer by "
        "hf_check's rule (hf_check.max_new_tokens), from the training and test titles; an integer overrides it."))
    # Context of the llama.cpp runtime; an article longer than n_ctx - max_new_tokens tokens is cut from its end.
    n_ctx: int = Field(2048, ge=64)
    # The heuristic baseline's title length in characters: the article's first sentence cut to this.
    # None: the median completion length of train.jsonl (the length the model learned), so the
    # baseline is as long as a real title without peeking at the test references.
    heuristic_title_chars: int | None = Field(None, ge=1)
    # A leading prompt paragraph that opens at least this many training prompts is an instruction
    # ("次の記事本文に…付けてください。"), not article text: the heuristic skips it and quotes the article.
    heuristic_instruction_min_rows: int = Field(3, ge=2)
    # Gate: the fine-tuned model must beat each of these baselines on gate_metric by at least min_gain
    # (absolute, on the metric's 0..1 scale). A fine-tuned model no better than its base is not worth shipping.
    must_beat: list[Literal["base", "heuristic"]] = ["base", "heuristic"]
    gate_metric: Literal["rouge_l", "bleu", "chrf"] = "rouge_l"
    min_gain: float = 0.0
    # Blind A/B pairs (base vs fine-tuned) written to human_eval.csv for raters; 0 writes none.
    human_eval_pairs: int = Field(50, ge=0)
    # Rows shown in report.html's sample table.
    report_samples: int = Field(30, ge=0)
    judge: JudgeSection = JudgeSection()


class GatesSection(Section):
    """Every threshold a gate reads. An override needs a written reason, recorded with the model."""

    max_contamination_rate: float = 0.0
    max_val_loss: float = 2.5
    fail_on_overfit: bool = True
    # Gate B (hf_check): share of greedy outputs with any degenerate flag, and their overlap with references.
    max_degenerate_rate: float = 0.1
    min_rouge_l: float = 0.2
    min_chrf: float = 0.1
    min_greedy_agreement: float = 0.8
    max_logit_diff: float = 1.0
    min_same_top_token_rate: float = 0.85
    max_mean_kld: float = 0.1
    max_perplexity_ratio: float = 1.1
    # Gate C: |perplexity(F16) / perplexity(HF) - 1|; the same weights in F16 move perplexity well under 1%.
    max_f16_perplexity_drift: float = Field(0.01, ge=0)
    # Gate D: mean ROUGE-L (Japanese words) between the quantized and the F16 model's greedy outputs.
    min_output_rouge_l: float = Field(0.5, ge=0, le=1)
    loosened: dict[str, str] = Field({}, description=(
        "Why each gate threshold that is looser than its production default (the built-in value) is loosened, "
        "by the threshold's setting path, e.g. {'gates.min_rouge_l': 'a 2-layer demo model cannot reach 0.2'}. "
        "A loosened threshold without a reason is a config error; reports and MLflow mark every loosened one."))
    override_reason: str | None = None


# Every stage of the chain whose report is a gate; register needs all of them unless a written reason narrows it.
CHAIN_GATE_STAGES = ("policy", "clean", "split", "train", "hf_check", "gguf", "evaluate")


class RegisterSection(Section):
    """The register stage (components/register): an MLflow run, the GGUF as a logged model, a registry version."""

    # None: the MLFLOW_TRACKING_URI environment variable (a cluster points it at its MLflow service), and
    # without that local_tracking_uri, so a run on a laptop with no server still registers. Resolved when
    # registering, never at config load: a config compiled on a laptop must not carry its local path to a pod.
    tracking_uri: str | None = None
    local_tracking_uri: str = "sqlite:///runs/mlflow.db"
    # Where a new experiment keeps its artifacts when the tracking URI is a database file (a server decides
    # for itself, e.g. its --artifacts-destination s3://...).
    local_artifact_location: str = "runs/mlartifacts"
    experiment: str = "finegate"
    # Registered model name; None: run.name.
    model_name: str | None = None
    # A new version gets the challenger alias; `finegate promote` moves champion (the one serving reads).
    challenger_alias: str = "challenger"
    champion_alias: str = "champion"
    required_stages: list[str] = Field(list(CHAIN_GATE_STAGES), description=(
        "Stages whose report.json must exist in the run dir and have passed (a missing report: the chain stopped "
        "before it); every other report found there must have passed too. Never empty; leaving out a gate stage "
        "of the chain needs register.required_stages_override_reason."))
    required_stages_override_reason: str | None = Field(None, description=(
        "Written reason for a required_stages that leaves out gate stages of the chain; recorded on the model "
        "version and in the report, and such a version needs its own --override-reason to be promoted."))
    # Top-level files of each stage dir logged with the MLflow run (reports, curves, HTML); data files
    # (.jsonl) stay in storage and are referenced by their sha256 instead.
    run_artifact_suffixes: list[str] = [".json", ".png", ".html"]
    # The LoRA adapter (tens of MB) goes with the run so the model can be rebuilt from the base model.
    log_adapter: bool = True
    # A refused registration still leaves an MLflow run (status FAILED, the reasons as tags, the reports),
    # so the failed gate is visible where people look for models; nothing reaches the registry.
    log_refused_runs: bool = True
    # MLflow's HTTP client reads these from MLFLOW_HTTP_REQUEST_* variables on every request; register,
    # promote and rollback set them for their own calls. Defaults: a server that accepts connections and never
    # answers fails the first call after (1 + 1) * 5 s plus about 1-2 s of backoff (13 s measured), where
    # mlflow's own defaults (120 s, 7 retries) wait about 20 minutes.
    http_timeout_s: int = Field(5, ge=1, description="Seconds an MLflow API call may wait for the server (MLFLOW_HTTP_REQUEST_TIMEOUT).")
    http_max_retries: int = Field(1, ge=0, le=10, description="Retries of a failed or timed-out MLflow call (MLFLOW_HTTP_REQUEST_MAX_RETRIES; mlflow allows 10).")
    http_backoff_factor: int = Field(1, ge=0, le=120, description="Backoff between retries: factor * 2^(n-1) s (MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR).")
    upload_timeout_s: int = Field(600, ge=1, description=(
        "Seconds an artifact upload may wait for the server's answer: a proxying server stores the whole file "
        "(a GGUF of GBs) in its artifact store before it answers."))
    reconcile_max_rounds: int = Field(20, ge=1, description=(
        "Rounds of read-check-write that concurrent registrations get to settle the challenger alias before "
        "register gives up with an error (each round ends early once the alias is on the newest version)."))

    @model_validator(mode="after")
    def _every_gate_stage_required(self) -> RegisterSection:
        missing = [s for s in CHAIN_GATE_STAGES if s not in self.required_stages]
        if not self.required_stages:
            raise ValueError(f"register.required_stages is empty: a registration needs the gate stages "
                             f"{', '.join(CHAIN_GATE_STAGES)} (no written reason makes an empty set acceptable)")
        if missing and not (self.required_stages_override_reason or "").strip():
            raise ValueError(
                f"register.required_stages leaves out the gate stage(s) {', '.join(missing)}: a model is registered "
                "only after every gate of the chain passed. Set register.required_stages_override_reason to a "
                "written reason (recorded on the model version) to narrow it")
        return self


class KfpSection(Section):
    """Where `finegate submit` sends the compiled pipeline (pipelines/submit.py). No credential lives here (the
    config is compiled into the pipeline and shown with the run): a token comes from token_env or token_file."""

    host: str | None = Field(None, description=(
        "KFP API endpoint with its scheme, e.g. http://localhost:8080 (a port-forward to svc/ml-pipeline-ui). "
        "None: $KF_PIPELINES_ENDPOINT, else kfp.Client's own discovery: the in-cluster service from a pod, or the "
        "current kubeconfig's cluster through the Kubernetes API server's service proxy."))
    ui_host: str | None = Field(None, description="Base URL of the KFP UI for the printed run link; None: host.")
    namespace: str | None = Field(None, description=(
        "Profile namespace of a multi-user KFP, where the pipeline, experiment and run are created; None on a "
        "single-user KFP. Without a host, kfp.Client also reaches KFP's service in this namespace."))
    experiment: str = Field("finegate", min_length=1, description="Experiment the run is filed under; created when missing.")
    pipeline_name: str | None = Field(None, min_length=1, description=(
        "Name of the pipeline on the server; when one of that name exists the upload becomes a new version of it. "
        "None: run.name."))
    pipeline_root: str | None = Field(None, description=(
        "Where the run's artifacts go (s3://bucket/prefix); None: the root KFP is configured with "
        "(k8s/kfp sets s3://finegate-pipelines)."))
    token_env: str = Field("FINEGATE_KFP_TOKEN", min_length=1, description=(
        "Environment variable holding a bearer token for the API (an OIDC or service-account token), sent as "
        "'Authorization: Bearer' and never printed."))
    token_file: str | None = Field(None, description=(
        "File holding a bearer token, re-read for every request (a projected service-account token such as "
        "/var/run/secrets/kubeflow/pipelines/token); used when token_env's variable is unset."))
    kube_context: str | None = Field(None, description="kubeconfig context used when there is no host; None: the current one.")
    ssl_ca_cert: str | None = Field(None, description="PEM bundle of the CA that signed the endpoint's certificate; None: certifi's.")
    proxy: str | None = Field(None, description="HTTP(S) proxy the API is reached through.")
    request_timeout_s: float = Field(10.0, gt=0, le=300, description=(
        "Seconds one API call may wait to connect, and then for each byte of the answer. urllib3 tries a "
        "failed connection 4 times, so an endpoint that never answers fails after about 4 x this."))
    wait_timeout_s: float = Field(6 * 3600.0, gt=0, description=(
        "With --wait: seconds to follow the run before giving up on it (exit 1; the run itself goes on)."))
    poll_interval_s: float = Field(15.0, gt=0, le=600, description="With --wait: seconds between two reads of the run's state.")

    @field_validator("host", "ui_host", "proxy")
    @classmethod
    def _url_without_credentials(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"'{v}' needs its scheme (http:// or https://)")
        if "@" in v.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError("a URL here may not carry credentials (user:password@): the config is compiled into "
                             "the pipeline; give a token through kfp.token_env or kfp.token_file")
        return v.rstrip("/")


class RunConfig(Section):
    run: RunSection = RunSection()
    storage: StorageSection = StorageSection()
    data: DataSection = DataSection()
    clean: CleanSection = CleanSection()
    split: SplitSection = SplitSection()
    tiny_base: TinyBaseSection = TinyBaseSection()
    import_gguf: ImportGgufSection = ImportGgufSection()
    train: TrainSection = TrainSection()
    hf_check: HfCheckSection = HfCheckSection()
    gguf: GgufSection = GgufSection()
    evaluate: EvaluateSection = EvaluateSection()
    gates: GatesSection = GatesSection()
    # `register` is taken on a pydantic model (ABC.register), so the attribute is register_ and the key stays register.
    register_: RegisterSection = Field(RegisterSection(), alias="register")
    cluster: ClusterSection = ClusterSection()
    kfp: KfpSection = KfpSection()

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @model_validator(mode="after")
    def _loosened_thresholds_say_why(self) -> RunConfig:
        reasons = self.gates.loosened
        unknown = sorted(set(reasons) - set(THRESHOLDS))
        if unknown:
            raise ValueError(f"gates.loosened names {unknown}, which are not gate thresholds (known: {sorted(THRESHOLDS)})")
        loose = loosened_thresholds(self)
        missing = [f"{p}={v['value']!r} (production {v['default']!r})" for p, v in loose.items()
                   if not (v["reason"] or "").strip()]
        if missing:
            raise ValueError("looser than the production default without a reason: " + ", ".join(missing)
                             + "; say why in gates.loosened (e.g. --set gates.loosened.gates.max_val_loss='why')")
        return self  # a reason for a threshold an override made strict again is simply not shown


# Every threshold a gate compares against, and which way it is strict: "max" (a measured value above it
# fails; raising it loosens), "min" (below fails; lowering loosens), "on" (a rule switched off loosens),
# "all_of" (a list of required baselines; dropping one loosens).
THRESHOLDS: dict[str, str] = {
    "data.min_samples": "min",
    "gates.max_contamination_rate": "max",
    "gates.max_val_loss": "max",
    "gates.fail_on_overfit": "on",
    "gates.max_degenerate_rate": "max",
    "gates.min_rouge_l": "min",
    "gates.min_chrf": "min",
    "gates.min_greedy_agreement": "min",
    "gates.max_logit_diff": "max",
    "gates.max_f16_perplexity_drift": "max",
    "gates.min_same_top_token_rate": "min",
    "gates.max_mean_kld": "max",
    "gates.max_perplexity_ratio": "max",
    "gates.min_output_rouge_l": "min",
    "evaluate.must_beat": "all_of",
    "evaluate.min_gain": "min",
}


def setting(cfg: BaseModel, path: str) -> Any:
    """The value at a dotted setting path (`gates.max_val_loss`); `register` is reached by its YAML key."""
    node: Any = cfg
    for part in path.split("."):
        node = getattr(node, "register_" if part == "register" else part)
    return node


def is_looser(path: str, value: Any, default: Any) -> bool:
    strictness = THRESHOLDS[path]
    if strictness == "max":
        return value > default
    if strictness == "min":
        return value < default
    if strictness == "on":
        return bool(default) and not value
    return not set(default) <= set(value)


def loosened_thresholds(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    """{path: {value, default, reason}} for every threshold looser than its production default."""
    found = {}
    for path in THRESHOLDS:
        value, default = setting(cfg, path), setting(_DEFAULTS, path)
        if is_looser(path, value, default):
            found[path] = {"value": value, "default": default, "reason": cfg.gates.loosened.get(path)}
    return found


_DEFAULTS = RunConfig.model_construct()


# Maps whose keys are setting paths themselves: `--set gates.loosened.data.min_samples=why` names one key.
_PATH_KEYED = ("gates.loosened.",)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keyed = next((p for p in _PATH_KEYED if dotted.startswith(p) and len(dotted) > len(p)), None)
    if keyed:
        *parents, leaf = [*keyed[:-1].split("."), dotted[len(keyed):]]
    else:
        *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: '{part}' is a value, not a section")
        node = child
    node[leaf] = value


def parse_override(item: str) -> tuple[str, Any]:
    """`key.path=value`; the value is read as YAML so numbers, booleans and lists keep their type."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got '{item}'")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects key=value, got '{item}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, ValueError, RecursionError):  # not YAML, or a number or nesting it refuses: text
        value = raw
    return key, value


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "config"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {path}: {msg}")
    return "; ".join(lines)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    tree: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            text = read_text(p, "a YAML run config")
        except InputError as exc:
            raise ConfigError(str(exc)) from None
        try:
            # A run's config.json is JSON: YAML would read its escaped surrogate pairs (an emoji) as two lone halves.
            loaded = (parse_json(text) if p.suffix == ".json" else yaml.safe_load(text)) or {}
        except JsonProblem as exc:
            raise ConfigError(f"{p}: {exc.reason}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(_yaml_problem(p, exc)) from None
        except (ValueError, RecursionError) as exc:  # an integer too long for Python, nesting too deep
            raise ConfigError(f"{p}: unreadable YAML ({type(exc).__name__}: {str(exc)[:120]})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections")
        tree = loaded
        source = str(p)
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(tree, key, value)
    if overrides:
        source += " + --set"
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def _yaml_problem(p: Path, exc: yaml.YAMLError) -> str:
    """One line: file:line:column, what is wrong and inside what (PyYAML's own message spans 4-8 lines)."""
    mark, context_mark = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(p)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if context and context_mark is not None:
        context += f" at line {context_mark.line + 1}, column {context_mark.column + 1}"
    return f"{where}: invalid YAML: {problem}" + (f" ({context})" if context else "")


def dump_config(cfg: RunConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json", by_alias=True)
