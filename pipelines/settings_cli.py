"""`finegate settings [SECTION]`: every setting of the run config with its type, default and description.

    finegate settings                      every section and setting
    finegate settings clean.tag_list       one section (or one setting: gates.max_val_loss)
    finegate settings gates --config configs/demo.yaml --set gates.min_chrf=0.05
                                           that config's values, each changed one with its default

The text is the `Field(description=...)` of each setting: the one place its help lives. Paths are the ones
YAML files and `--set` use (`register`, not the attribute name).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from components.common.cli import add_config_args
from components.common.errors import ConfigError

WIDTH = 100


@dataclass
class Setting:
    path: str
    type: str
    description: str
    default: Any
    value: Any
    section: bool = False  # a group of settings (its own settings follow it)
    required: bool = False  # no default: it must be given once its section is (data.column_mapping.prompt)


def type_name(annotation: Any) -> str:
    """A field's type as a person reads it: `int | None`, `auto | jsonl | csv`, `list[str]`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if annotation is type(None):
        return "None"
    if origin is not None:
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def section_class(annotation: Any) -> type[BaseModel] | None:
    """The settings class inside an annotation (`NearDuplicateRule | None`), if any."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json", by_alias=True) if isinstance(value, BaseModel) else value


def describe(defaults: BaseModel | type[BaseModel], values: BaseModel | None = None,
             prefix: str = "") -> Iterator[Setting]:
    """Every section and setting below `defaults` (an instance, or a class whose own defaults apply), in
    declaration order, with the value `values` gives it (the defaults when None)."""
    cls = defaults if isinstance(defaults, type) else type(defaults)
    for name, field in cls.model_fields.items():
        path = prefix + (field.alias or name)
        required = field.is_required()
        default = None if required else (field.get_default(call_default_factory=True) if isinstance(defaults, type)
                                         else getattr(defaults, name))
        value = getattr(values, name) if values is not None else default
        inner = section_class(field.annotation)
        doc = Setting(path, type_name(field.annotation), field.description or "", _plain(default), _plain(value),
                      section=inner is not None, required=required)
        yield doc
        if inner is not None:
            inner_defaults = default if isinstance(default, BaseModel) else inner
            inner_values = value if isinstance(value, BaseModel) else None
            yield from describe(inner_defaults, inner_values, path + ".")


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def render(doc: Setting) -> str:
    if doc.section:
        head = f"{doc.path}:"
        if not isinstance(doc.value, dict):  # an optional section that is not set (None)
            head += f" {_shown(doc.value)}  ({doc.type})"
    elif doc.required:
        head = f"{doc.path}: required  ({doc.type})"
    else:
        changed = f"; default {_shown(doc.default)}" if doc.value != doc.default else ""
        head = f"{doc.path} = {_shown(doc.value)}  ({doc.type}{changed})"
    body = textwrap.fill(doc.description, WIDTH, initial_indent="    ", subsequent_indent="    ")
    return f"{head}\n{body}" if body else head


def select(docs: list[Setting], section: str | None) -> list[Setting]:
    """The settings at or below `section` (a dotted path); an unknown one is a one-line error."""
    if not section:
        return docs
    chosen = [d for d in docs if d.path == section or d.path.startswith(section + ".")]
    if not chosen:
        tops = ", ".join(d.path for d in docs if "." not in d.path)
        raise ConfigError(f"no setting or section '{section}' (sections: {tops})")
    return chosen


def register(subparsers) -> None:
    p = subparsers.add_parser("settings", help="list the run config's settings with their defaults and descriptions",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("section", nargs="?", metavar="SECTION",
                   help="a section or setting by its dotted path, e.g. clean, hf_check.degenerate, gates.max_val_loss")
    add_config_args(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from components.common.config import RunConfig, load_config

    values = load_config(args.config, args.overrides) if args.config or args.overrides else None
    docs = select(list(describe(RunConfig(), values)), args.section)
    text = "\n".join(("\n" if "." not in d.path and i else "") + render(d) for i, d in enumerate(docs))
    try:
        print(text, flush=True)
    except BrokenPipeError:  # the reader (head, less) stopped early: not an error of this listing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
