"""`split`: how kept rows become train, val and test (components/split/core.py)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, field_validator

from components.common.section import Section
from components.common.settings.rules import NearDuplicateRule


class SplitSection(Section):
    ratios: tuple[float, float, float] = Field((0.8, 0.1, 0.1), description=(
        "train/val/test shares. Also accepted: two values (train/val, no test: \"80/20\"), percentages "
        "([70, 15, 15]) and the string form \"70/15/15\" (handy with --set). Stored as three fractions; train and "
        "val must be above 0, and anything else (4 values, a wrong sum) is a config error saying why."))
    seed: int = Field(42, description="Seed of the assignment to splits: the same rows and seed give byte-identical files.")
    stratify_by: str | None = Field("category", description=(
        "Field of a kept row to stratify on; rows missing it form their own stratum. None: no stratification."))
    group_by: str | None = Field("group", description=(
        "Field of a kept row whose equal values must land in one split (same article, author, thread)."))
    cluster_near_duplicates: bool = Field(True, description=(
        "Rows that nearly or exactly duplicate each other (prompt or completion) are kept in one split, so a "
        "pair clean let through (e.g. a stricter threshold here) cannot leak; the leak check is then a safety net."))
    near_duplicates: NearDuplicateRule | None = Field(None, description=(
        "Rule for the clustering and the leak check; None: clean.near_duplicates."))
    min_train: int = Field(100, ge=1, description=(
        "Fewer train rows than this is an error: a LoRA run on a handful of rows memorises them."))
    min_val: int = Field(20, ge=1, description=(
        "Fewer val rows than this is an error: val loss on a handful of rows is noise (gate A). Not applied "
        "when the val ratio is 0."))
    min_test: int = Field(20, ge=1, description=(
        "Fewer test rows than this is an error: a test score on a handful of rows says nothing (evaluate). "
        "Not applied when the test ratio is 0."))

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
