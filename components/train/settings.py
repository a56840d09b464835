"""`train`: LoRA SFT with trl (components/train/core.py), its policy check, overfitting rules and TrainJob."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.common.section import Section

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class LoraSection(Section):
    """The LoRA adapter (peft LoraConfig); the policy check holds it to the standard's ranges."""

    rank: int = Field(16, description="LoRA rank r (standard: 16-64).")
    alpha: int = Field(32, description="LoRA alpha, the update's scale (standard: alpha = rank or 2x rank).")
    dropout: float = Field(0.05, description="Dropout on the LoRA input (standard: 0-0.1).")
    use_rslora: bool = Field(True, description=(
        "rsLoRA: scale the update by alpha / sqrt(rank), which keeps it stable across ranks."))
    target_modules: list[str] = Field(ALL_LINEAR, description=(
        "Modules that get adapters; the standard wants every linear layer of attention and MLP."))


class PolicySection(Section):
    """The standard's rules for a LoRA SFT run; checked before any compute (components/train/policy.py)."""

    rank_range: tuple[int, int] = Field((16, 64), description="Allowed train.lora.rank (standard: 16-64).")
    alpha_multipliers: list[int] = Field([1, 2], description=(
        "Allowed train.lora.alpha, as multiples of the rank (standard: alpha = rank or 2x rank)."))
    dropout_range: tuple[float, float] = Field((0.0, 0.1), description="Allowed train.lora.dropout (standard: 0-0.1).")
    learning_rate_range: tuple[float, float] = Field((1e-4, 3e-4), description=(
        "Allowed train.learning_rate (standard: near 2e-4 for LoRA)."))
    warmup_ratio_range: tuple[float, float] = Field((0.03, 0.10), description=(
        "Allowed train.warmup_ratio (standard: warmup over 3-10% of the steps)."))
    epochs_range: tuple[float, float] = Field((1, 3), description=(
        "Allowed train.num_epochs (standard: 1-3; more passes over a small set memorise it)."))
    early_stopping_patience_range: tuple[int, int] = Field(
        (10, 20), description="Evaluations without improvement before early stopping (standard, Phase 3: 10-20).")
    schedulers: list[str] = Field(["cosine", "linear", "constant_with_warmup"], description=(
        "Allowed train.lr_scheduler (standard: cosine, or linear / constant decay after warmup)."))
    required_target_modules: list[str] = Field(ALL_LINEAR, description=(
        "Modules train.lora.target_modules must include (standard: every linear layer)."))


class OverfitSection(Section):
    """How the train stage judges overfitting from its loss history (components/train/overfit.py)."""

    smoothing_window: int = Field(5, ge=1, description=(
        "Centered moving average over this many evaluation points (odd; 1 turns it off). Centered, so the "
        "smoothed curve does not lag behind a rise at the end; shrunk on short histories so that a run with only "
        "3-8 evaluations is judged on its raw points rather than flattened away."))
    tail_fraction: float = Field(0.3, gt=0, lt=1, description=(
        "\"The last part of training\" for the gap and correlation signals: this share of the run's steps, never "
        "fewer than 3 evaluations."))
    min_val_rise: float = Field(0.03, ge=0, description=(
        "Signal 1 (val rising while train falls): the smoothed val loss ends this far above its minimum, relative "
        "to that minimum (3% is visible on any plot; relative so a loss of 1.2 and of 5.0 are judged alike)..."))
    noise_sigmas: float = Field(2.0, ge=0, description=(
        "...and by more than this many times the val loss's own eval-to-eval noise, so a noisy plateau is no "
        "rise..."))
    min_train_drop: float = Field(0.01, ge=0, description=(
        "...while the smoothed train loss fell at least this much (relative) since that minimum."))
    grace_evals: int = Field(3, ge=0, description=(
        "Early stopping needs `patience` evaluations past the minimum to notice it (train.early_stopping_patience), "
        "and the train stage restores the best checkpoint: a rise confined to this many evaluations at the end is "
        "the system working, not overfitting, and those evaluations are left out of the judgement. Only with "
        "train.early_stopping and train.load_best_at_end on: without them the last step ships, rise and all."))
    strong_val_rise: float = Field(0.10, ge=0, description=(
        "A rise this steep (relative to the minimum) overfits even inside the grace_evals window."))
    rise_onset_tolerance: float = Field(0.01, ge=0, description=(
        "The rise starts after the last evaluation whose smoothed val loss is within this share of the minimum, "
        "so a flat stretch at the minimum is not counted as rising."))
    min_gap_growth: float = Field(0.15, ge=0, description=(
        "Signal 2 (gap widening): over the tail, the smoothed val-minus-train gap grows by this share of the val "
        "loss (a share of the loss level, not of the gap, so a tiny gap doubling is not an alarm)..."))
    gap_noise_sigmas: float = Field(3.0, ge=0, description=(
        "...and by this many standard errors of the trends fitted through the logged losses: a gate that fails "
        "runs needs a rare false alarm, and at 2 sigma one noisy healthy run in ~40 shows a \"widening\" gap."))
    min_correlation: float = Field(0.3, ge=-1, le=1, description=(
        "Signal 3 (the curves decouple, arXiv 2401.10359): Pearson correlation of the smoothed curves over the "
        "tail under this is \"weak\" (|r| < 0.3 is the usual reading of a weak correlation). Alone it fires on "
        "every plateau, so it only counts together with signal 2."))
    low_train_loss: float = Field(0.3, gt=0, description=(
        "Signal 4, the standard's memorization rule: train loss under this (absolute, as the standard states it)..."))
    high_val_loss_ratio: float = Field(2.0, gt=1, description=(
        "...while val loss stays at least this many times the train loss (and itself above low_train_loss)."))
    min_points: int = Field(3, ge=2, description=(
        "Fewer evaluations than this cannot show a curve's shape: the verdict is \"ok\" with a note saying so."))


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
    """`finegate train`: LoRA SFT with trl; components/train/core.py's docstring is the stage's manual."""

    base_model: str = Field(".cache/tiny-base", description="Hub id, local folder or s3:// prefix (safetensors only).")
    trust_remote_code: bool = Field(False, description=(
        "Let a hub model run its own Python code; off unless a person turns it on for a model they trust."))
    quantization: Literal["none", "4bit"] = Field("none", description="4bit = QLoRA (bitsandbytes NF4); needs CUDA.")
    lora: LoraSection = Field(LoraSection(), description="The LoRA adapter.")
    learning_rate: float = Field(2e-4, description="Peak learning rate (standard: 2e-4 is the LoRA SFT starting point).")
    lr_scheduler: str = Field("cosine", description="transformers' scheduler name (lr_scheduler_type).")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description=(
        "Share of the steps spent warming up (standard: 3-10%); passed to transformers 5 as a fractional "
        "warmup_steps, since its warmup_ratio is gone."))
    num_epochs: float = Field(2, gt=0, description="Passes over the train split (standard: 1-3).")
    max_steps: int = Field(-1, description="Caps training steps (tests, smoke runs); -1 means no cap.")
    per_device_batch_size: int = Field(8, ge=1, description="Examples per process per forward pass.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Forward passes per optimizer step.")
    max_seq_length: int = Field(512, ge=8, description=(
        "Tokens per example; rows whose completion would not fit at all are dropped and counted."))
    packing: bool = Field(False, description=(
        "Fill each row up to max_seq_length with several examples (trl packing; the attention keeps them apart)."))
    packing_strategy: Literal["bfd", "bfd_split", "wrapped"] = Field("bfd", description=(
        "trl's packing strategy, with packing on (bfd: best-fit decreasing)."))
    padding_free: bool = Field(True, description=(
        "Padding-free batches: trl flattens the batch into one row with position_ids (the attention keeps "
        "examples apart), so training spends compute on real tokens only."))
    gradient_checkpointing: bool = Field(True, description=(
        "Recompute activations in the backward pass: ~30% more compute for far less GPU memory (trl's default)."))
    cpu_threads: int | None = Field(None, ge=1, description=(
        "torch CPU threads while training on CPU; None: torch's default, one per core. A tiny model's matrices "
        "are too small to split across threads, so one thread trains it faster than several."))
    eval_steps: int = Field(20, ge=1, description="Validation loss every this many optimizer steps.")
    save_steps: int = Field(20, ge=1, description="A checkpoint every this many steps; a multiple of eval_steps.")
    save_total_limit: int | None = Field(3, ge=1, description=(
        "Local checkpoints kept (the best one always is); the mirror keeps all."))
    logging_steps: int = Field(5, ge=1, description="Train loss logged every this many optimizer steps.")
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
    prompt_template: str = Field("### 指示\n{prompt}\n\n### タイトル\n", description=(
        "How a prompt is written for a base model without a chat template ({prompt} is the article); train stamps "
        "the format it used into merged/, and every later stage reads it from there."))
    policy: PolicySection = Field(PolicySection(), description="The standard's rules, checked before any compute.")
    policy_override_reason: str | None = Field(None, description=(
        "Written reason to train although the policy check found violations; recorded in the train report."))
    overfit: OverfitSection = Field(OverfitSection(), description="How gate A judges overfitting from the loss curves.")
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
        "it into its model artifact; None: <the model artifact's URI>-trainjob."))
    trainjob: TrainJobSection = Field(TrainJobSection(), description="The TrainJob of a multi-node run.")

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
