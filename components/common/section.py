"""The base of every settings section: strict, validated on assignment, finite.

Each stage's settings module (components/<stage>/settings.py) and the shared ones (components/common/settings/)
import only this, so the run config (components/common/config.py) composes them without import cycles.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    # extra="forbid": an unknown key is an error naming its path, never a silent default.
    # allow_inf_nan=False: a NaN or infinite threshold would switch its gate off (NaN compares false both
    # ways), so every float of every section must be finite; subclasses inherit this.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False, populate_by_name=True)
