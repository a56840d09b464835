"""Every setting documents itself in one place, and `finegate settings` shows exactly what the config accepts."""

from __future__ import annotations

import ast
import inspect
import io
import json
import textwrap
import tokenize
from pathlib import Path

import pytest
from pydantic import BaseModel

from components.common.config import RunConfig, dump_config, load_config
from components.common.section import Section
from pipelines.cli import main
from pipelines.settings_cli import describe, section_class

SETTINGS = list(describe(RunConfig()))
REPO = Path(__file__).resolve().parents[2]
SETTINGS_MODULES = [*sorted(REPO.glob("components/*/settings.py")), *sorted(REPO.glob("components/common/settings/*.py")),
                    REPO / "pipelines" / "settings.py"]


def _section_classes(cls: type[BaseModel], found: dict[str, type[BaseModel]]) -> dict[str, type[BaseModel]]:
    found[cls.__qualname__] = cls
    for inner in {section_class(f.annotation) for f in cls.model_fields.values()} - {None}:
        _section_classes(inner, found)
    return found


SECTIONS = _section_classes(RunConfig, {})


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.path)
def test_every_setting_and_section_has_a_description(setting):
    assert setting.description.strip(), f"{setting.path}: give it Field(description=...)"


@pytest.mark.parametrize("cls", SECTIONS.values(), ids=list(SECTIONS))
def test_every_section_is_strict_and_finite(cls):
    assert issubclass(cls, Section)
    assert cls.model_config["extra"] == "forbid" and cls.model_config["allow_inf_nan"] is False


def _field_comments(cls: type[BaseModel]) -> list[str]:
    """`#` comments before or beside a field of the class body: help that belongs in its description."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments = {tok.start[0]: tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    found, previous_end = [], ast.parse(source).body[0].body[0].end_lineno  # the class docstring or first field
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign):
            found += [f"line {n}: {comments[n]}" for n in range(previous_end + 1, node.end_lineno + 1) if n in comments]
        previous_end = node.end_lineno
    return found


@pytest.mark.parametrize("cls", SECTIONS.values(), ids=list(SECTIONS))
def test_field_help_lives_only_in_its_description(cls):
    assert _field_comments(cls) == [], f"{cls.__qualname__}: move these into Field(description=...)"


@pytest.mark.parametrize("path", SETTINGS_MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_a_settings_module_imports_only_the_section_base_and_shared_settings(path):
    """So components/common/config.py can compose every stage's settings without an import cycle."""
    own = {node.module for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
           if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("components", "pipelines")}
    assert {m for m in own if m != "components.common.section" and not m.startswith("components.common.settings.")} == set()


def _settable(setting) -> bool:
    parents = [s for s in SETTINGS if setting.path.startswith(s.path + ".")]
    return not setting.section and not setting.required and all(p.value is not None for p in parents)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if _settable(s)], ids=lambda s: s.path)
def test_each_listed_path_and_default_is_what_set_accepts(setting):
    loaded = load_config(None, [f"{setting.path}={json.dumps(setting.default, ensure_ascii=False)}"])
    assert dump_config(loaded) == dump_config(RunConfig())


def _listing(capsys, *args: str) -> str:
    assert main(["settings", *args]) == 0
    return capsys.readouterr().out


def test_the_listing_shows_each_setting_with_its_type_default_and_description(capsys):
    out = _listing(capsys)
    assert "gates.max_val_loss = 2.5  (float)\n    Gate A (train): the best validation loss" in out
    assert 'data.schema = "auto"  (auto | alpaca | prompt_completion | chat | mapping)' in out
    assert "cluster.train.gpus = 1  (int)" in out and "cluster.clean.gpus = 0  (int)" in out  # each task's own
    assert "register.challenger_alias" in out and "register_" not in out  # the YAML key, not the attribute
    listed = [line.split(" ", 1)[0].rstrip(":") for line in out.splitlines() if line and not line.startswith(" ")]
    assert listed == [s.path for s in SETTINGS]


def test_a_section_lists_only_its_own_settings(capsys):
    out = _listing(capsys, "clean.tag_list")
    heads = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert heads[0] == "clean.tag_list:" and len(heads) == 4
    assert all(h.startswith("clean.tag_list") for h in heads)


def test_a_configs_values_are_shown_beside_the_defaults_they_change(capsys):
    out = _listing(capsys, "gates", "--config", "configs/demo.yaml", "--set", "gates.min_chrf=0.05")
    assert "gates.max_val_loss = 7.5  (float; default 2.5)" in out
    assert "gates.min_chrf = 0.05  (float; default 0.1)" in out
    assert "gates.max_degenerate_rate = 0.1  (float)\n" in out


def test_an_unknown_section_is_a_one_line_error_naming_the_sections(capsys):
    assert main(["settings", "gate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no setting or section 'gate'" in err and "gates" in err
