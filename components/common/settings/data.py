"""`data`: the raw input the clean stage reads, and gate 0's size threshold."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.common.section import Section


class ColumnMapping(Section):
    """Maps a custom schema's columns onto the unified record (data.schema=mapping, or auto with a mapping)."""

    prompt: str = Field(description="Column holding the prompt (for this task: the article).")
    completion: str = Field(description="Column holding the completion (the title).")
    id: str | None = Field(None, description="Column holding a row id; None: each row is named row-<its line number>.")
    category: str | None = Field(None, description="Column holding a category, which split can stratify on.")
    group: str | None = Field(None, description="Column whose equal values split keeps in one split.")


class DataSection(Section):
    input: str = Field("data/sample/note_titles.jsonl", description=(
        "The raw data set: a JSONL, CSV or Parquet file, local or s3://."))
    format: Literal["auto", "jsonl", "csv", "parquet"] = Field("auto", description=(
        "File format; auto: from the file's suffix."))
    schema_: Literal["auto", "alpaca", "prompt_completion", "chat", "mapping"] = Field("auto", alias="schema", description=(
        "Row shape: alpaca (instruction, input, output), prompt_completion, chat (messages), or mapping "
        "(data.column_mapping); auto: recognised from the columns."))
    column_mapping: ColumnMapping | None = Field(None, description=(
        "Columns of a custom schema; needed with data.schema=mapping."))
    alpaca_join: str = Field("\n\n", description=(
        "How an alpaca row becomes one prompt: instruction and input joined by this separator; chat rows join "
        "their system and user messages the same way."))
    alpaca_input_required: bool = Field(True, description=(
        "For this task an alpaca row's `input` is the article: a row with a null or blank input is incomplete. "
        "Instruction-only datasets (the instruction is the whole prompt) set this to false."))
    csv_delimiter: str = Field("auto", min_length=1, description=(
        "CSV field delimiter; auto: a tab for .tsv files and a comma otherwise."))
    min_samples: int = Field(300, ge=1, description="Gate 0: fewer surviving rows than this fails the run.")

    @model_validator(mode="after")
    def _mapping_needs_columns(self) -> DataSection:
        if self.schema_ == "mapping" and self.column_mapping is None:
            raise ValueError("data.schema=mapping needs data.column_mapping (prompt and completion columns)")
        return self
