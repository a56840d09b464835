"""Which installed distributions a KFP component needs: every module its body imports, followed through
finegate's own modules (module-level and in-function imports alike, since a lazy import still runs in the
pod), mapped to the distributions that provide them."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
from functools import cache, lru_cache
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
OWN_PACKAGES = ("components", "pipelines")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _module_file(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(source: str, package: str = "") -> set[str]:
    """Absolute names of every module `source` imports (relative imports resolved against `package`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            # `from components.common import storage` imports a submodule, not a name.
            found.update(f"{module}.{alias.name}" for alias in node.names if _module_file(f"{module}.{alias.name}"))
    return found


def third_party_modules(source: str) -> set[str]:
    """Top-level third-party modules reachable from `source` through finegate's own modules."""
    return _walk(source)[0]


def missing_own_modules(source: str) -> set[str]:
    """finegate modules reachable from `source` that do not exist (the pod would die on ImportError)."""
    return _walk(source)[1]


def _walk(source: str) -> tuple[set[str], set[str]]:
    seen: set[str] = set()
    external: set[str] = set()
    missing: set[str] = set()
    todo = [(source, "")]
    while todo:
        text, package = todo.pop()
        for module in imported_modules(text, package):
            top = module.split(".")[0]
            if top in OWN_PACKAGES:
                # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
                parts = module.split(".")
                for i in range(1, len(parts) + 1):
                    name = ".".join(parts[:i])
                    path = _module_file(name)
                    if path is None:
                        missing.add(name)
                        break
                    if name in seen:
                        continue
                    seen.add(name)
                    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
                    todo.append((path.read_text(encoding="utf-8"), pkg))
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                external.add(top)
    return external, missing


@lru_cache(maxsize=1)
def _providers() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def distributions_for(modules: set[str]) -> dict[str, str]:
    """{module: canonical distribution name}; a module nothing installed provides maps to itself."""
    providers = _providers()
    return {m: canonical(providers.get(m, [m])[0]) for m in modules}


@cache
def _dependencies(dist: str) -> tuple[str, ...]:
    try:
        requires = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return ()
    deps = []
    for line in requires:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            deps.append(canonical(req.name))
    return tuple(deps)


def closure(names: set[str]) -> set[str]:
    """The distributions `names` install, their dependencies included (as resolved in this venv)."""
    done: set[str] = set()
    todo = [canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name not in done:
            done.add(name)
            todo.extend(_dependencies(name))
    return done
