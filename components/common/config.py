"""The run configuration: one typed, validated object shared by the CLI, the pipeline and the tests.

Loaded from a YAML file (see `configs/`), then dotted overrides (`--set split.seed=7`).
Unknown keys are rejected with their full path, so a typo never silently falls back to a default.
Each stage owns its section (components/<stage>/settings.py); what several stages read lives in
components/common/settings/. RunConfig composes them, and gathers the narrow settings objects a stage needs
from another's section (`output_rules`). `finegate settings [SECTION]` lists every setting with its default
and description. Thresholds of the gates live here and nowhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from components.base_models.settings import ImportGgufSection, TinyBaseSection
from components.clean.settings import CleanSection
from components.common.cluster import ClusterSection
from components.common.errors import ConfigError, InputError
from components.common.report import JsonProblem, parse_json, read_text
from components.common.section import Section
from components.common.settings.data import DataSection
from components.common.settings.degenerate import OutputRules
from components.common.settings.gates import GatesSection
from components.common.settings.rules import NearDuplicateRule
from components.common.settings.run import RunSection
from components.common.settings.storage import StorageSection
from components.common.token_budget import BudgetRule
from components.evaluate.settings import EvaluateSection
from components.gguf.settings import GgufSection
from components.hf_check.settings import HfCheckSection
from components.register.settings import RegisterSection
from components.split.settings import SplitSection
from components.train.settings import TrainSection
from pipelines.settings import KfpSection


class RunConfig(Section):
    """Every section of a run. `register` is taken on a pydantic model (ABC.register), so that section's
    attribute is `register_`; its key in YAML and `--set` stays `register`."""

    run: RunSection = Field(RunSection(), description="What names and seeds the whole run.")
    storage: StorageSection = Field(StorageSection(), description="How stages read and write local paths and s3:// URIs.")
    data: DataSection = Field(DataSection(), description="The raw data set and gate 0's size threshold.")
    clean: CleanSection = Field(CleanSection(), description="The clean stage: quality rules and deduplication.")
    split: SplitSection = Field(SplitSection(), description="The split stage: train/val/test without leaks.")
    tiny_base: TinyBaseSection = Field(TinyBaseSection(), description=(
        "`finegate make-tiny-base`: the tiny base model of the demo, the tests and CI."))
    import_gguf: ImportGgufSection = Field(ImportGgufSection(), description=(
        "`finegate import-gguf`: a GGUF file turned into a verified base-model folder."))
    train: TrainSection = Field(TrainSection(), description="The train stage: LoRA SFT, its policy check and gate A.")
    hf_check: HfCheckSection = Field(HfCheckSection(), description=(
        "The hf_check stage: the merged model's answers, judged before any conversion (gate B)."))
    gguf: GgufSection = Field(GgufSection(), description="The gguf stage: conversion, quantization, gates C and D.")
    evaluate: EvaluateSection = Field(EvaluateSection(), description=(
        "The evaluate stage: the quantized model against its baselines on the test split."))
    gates: GatesSection = Field(GatesSection(), description="Every threshold a gate reads.")
    register_: RegisterSection = Field(RegisterSection(), alias="register", description=(
        "The register stage: MLflow run, logged model, registry version and aliases."))
    cluster: ClusterSection = Field(ClusterSection(), description="Pod settings of each task of the compiled pipeline.")
    kfp: KfpSection = Field(KfpSection(), description="Where `finegate submit` sends the compiled pipeline.")

    def output_rules(self) -> OutputRules:
        """The degenerate-output rules as hf_check, evaluate and check-outputs apply them: hf_check.degenerate
        and hf_check.flag_unfinished, with the clean stage's placeholders and tag-list rule."""
        return OutputRules(degenerate=self.hf_check.degenerate, placeholders=tuple(self.clean.placeholders),
                           tag_list=self.clean.tag_list, flag_unfinished=self.hf_check.flag_unfinished)

    def token_budget_rule(self, max_new_tokens: int | None) -> BudgetRule:
        """hf_check's rule for a generation budget (components/common/token_budget.py) with a stage's explicit
        `max_new_tokens` (hf_check.max_new_tokens or evaluate.max_new_tokens; None: derived)."""
        return BudgetRule(max_new_tokens, self.hf_check.degenerate.max_output_chars, self.hf_check.token_budget_margin)

    def split_near_duplicates(self) -> NearDuplicateRule:
        """The rule split clusters and checks leaks with: split.near_duplicates, else clean's."""
        return self.split.near_duplicates or self.clean.near_duplicates

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
