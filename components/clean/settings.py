"""`clean`: the clean stage's quality rules and deduplication (components/clean/core.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.common.section import Section
from components.common.settings.rules import PLACEHOLDERS, NearDuplicateRule, RepetitionRule, TagListRule


class CleanSection(Section):
    """The clean stage (components/clean): quality rules, then exact and near deduplication."""

    enabled: bool = Field(True, description=(
        "false replays a run without cleaning (the failed v1 run had none): rows are only parsed into the unified "
        "format and all kept, duplicates included; gate 0 still measures the contamination of what is kept."))
    min_prompt_chars: int = Field(20, ge=0, description=(
        "Shortest prompt kept (normalized text): a note article body under 20 characters gives a model nothing "
        "to title."))
    max_prompt_chars: int = Field(4000, ge=1, description="Longest prompt kept (normalized text).")
    min_completion_chars: int = Field(4, ge=0, description="Shortest title kept (normalized text).")
    max_completion_chars: int = Field(60, ge=1, description=(
        "Longest title kept (normalized text): a title over 60 characters is a summary, not a title."))
    truncate_prompt_chars: int | None = Field(
        None, ge=1,
        description="Cut each kept prompt to its first this many characters (after the length rules, before "
                    "deduplication), so every later stage trains and evaluates on the same shorter text; for runs "
                    "with a bounded CPU budget. None keeps prompts whole.")
    placeholders: list[str] = Field(PLACEHOLDERS, description=(
        "Whole-text placeholders (compared after NFKC, case folding and stripping quotes and brackets): a title "
        "or prompt that is only one of these is rejected, and a model answer that is one is empty."))
    tag_list: TagListRule = Field(TagListRule(), description="When a title is a list of tags, not a title.")
    repetition: RepetitionRule = Field(RepetitionRule(), description="When a title repeats itself.")
    near_duplicates: NearDuplicateRule = Field(NearDuplicateRule(), description=(
        "When two rows are near duplicates (only the first is kept); split uses it too unless "
        "split.near_duplicates is set."))
    dedup_on: Literal["prompt_completion", "prompt", "completion"] = Field("prompt_completion", description=(
        "The text two rows are compared on, for exact (after normalization) and near duplicates. With both, a "
        "re-posted article under a slightly different title is still a near duplicate (the body dominates)."))
    control_chars: Literal["reject", "strip"] = Field("reject", description=(
        "Control characters (C0/C1, DEL; not tab or newline) inside a field mean a corrupted export: the row is "
        "rejected with its line and field (reject), or the characters are removed and the row kept (strip)."))
    report_max_clusters: int = Field(1000, ge=0, description=(
        "report.json lists at most this many duplicate clusters (largest first); rejected.jsonl has every "
        "dropped row."))
    progress_every: int = Field(50000, ge=0, description="A progress line on stderr every this many input rows (0: silent).")
    write_chart: bool = Field(True, description=(
        "Draw clean_rules.png (rows per rule) beside report.json; off for runs that need no picture (property "
        "tests, the tiny base model's build)."))
    workers: int = Field(2, ge=0, description=(
        "Worker processes that parse, normalize, check and MinHash the rows while the stage's own process "
        "deduplicates them in input order and writes the files; 0 does everything in one process. The files are "
        "the same for any value. A fixed count, not one derived from the load average or the cores (a container "
        "sees the host's cores, not its CPU limit), so the cost per row is the same for every run and every input "
        "size. The default 2 suits two cores: the deduplicating process does about 30% of the work, the two "
        "workers share the rest; give it the CPUs the stage has. Inputs under 4096 rows run in one process "
        "whatever the value: starting workers would cost more than they save."))
