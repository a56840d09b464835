"""`finegate replay`: each fault of the failed v1 run replayed alone on the v1 data, each expected to be stopped
by its own gate, with nothing registered.

    finegate replay                                    (= make replay; every scenario of configs/v1-scenarios.yaml)
    finegate replay --only memorising --output-dir runs/replay

A scenario is the scenarios file's `base` config plus its `common` and own `set` overrides (the same
`key=value` form as `--set`); it runs the whole chain (pipelines/local_chain.py) into <output-dir>/<name>.
It counts as caught when the run stops at the scenario's `caught_by` gate and registers nothing. The printed
table gives, per fault: the gate that caught it, the reason it gave, and the standard's remedy. Exit 0 when
every fault was caught by its gate, 1 when one slipped through or was caught elsewhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.common.config import load_config
from components.common.errors import ConfigError
from components.common.report import read_text

DEFAULT_SCENARIOS = "configs/v1-scenarios.yaml"


@dataclass
class Scenario:
    name: str
    fault: str
    caught_by: str
    remedy: str
    overrides: list[str] = field(default_factory=list)
    reason_contains: str = ""  # the gate's reason must say this (the fault it saw, not another one)


@dataclass
class Outcome:
    scenario: Scenario
    stopped_at: str | None
    stage: str | None
    reason: str
    registered: str | None
    reasons: list[str] = field(default_factory=list)

    @property
    def caught(self) -> bool:
        return (self.stopped_at == self.scenario.caught_by and self.registered is None
                and self.scenario.reason_contains in " ".join(self.reasons))


def load_scenarios(path: str | Path) -> tuple[str, list[Scenario]]:
    import yaml

    try:
        tree = yaml.safe_load(read_text(Path(path), "a scenarios file"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(tree, dict) or not isinstance(tree.get("scenarios"), list) or not tree.get("base"):
        raise ConfigError(f"{path}: needs `base` (a run config) and a `scenarios` list")
    common = [str(s) for s in tree.get("common") or []]
    scenarios = []
    for i, item in enumerate(tree["scenarios"]):
        missing = [k for k in ("name", "fault", "caught_by", "remedy") if not isinstance(item, dict) or not item.get(k)]
        if missing:
            raise ConfigError(f"{path}: scenario {i + 1} lacks {', '.join(missing)}")
        scenarios.append(Scenario(str(item["name"]), str(item["fault"]), str(item["caught_by"]), str(item["remedy"]),
                                  common + [str(s) for s in item.get("set") or []],
                                  str(item.get("reason_contains") or "")))
    return str(tree["base"]), scenarios


def run_scenario(base: str, scenario: Scenario, output_dir: Path, extra: list[str] | tuple[str, ...] = ()) -> Outcome:
    """`extra`: overrides on top of the scenario's own (e.g. the base model the tests build)."""
    from pipelines.local_chain import run_chain

    cfg = load_config(base, [*scenario.overrides, *extra])
    print(f"[replay] {scenario.name}: {scenario.fault}", file=sys.stderr, flush=True)
    summary = run_chain(cfg, output_dir / scenario.name)
    stage = summary.get("failed_stage")
    reasons = summary["stages"].get(stage, {}).get("reasons", []) if stage else []
    reason = next((r for r in reasons if scenario.reason_contains and scenario.reason_contains in r),
                  reasons[0] if reasons else "")
    return Outcome(scenario, summary.get("failed_gate"), stage, reason, summary.get("model_uri"), reasons)


def table(outcomes: list[Outcome], width: int = 110) -> list[str]:
    lines = []
    for o in outcomes:
        verdict = "caught" if o.caught else "NOT CAUGHT AS EXPECTED"
        got = f"gate {o.stopped_at}" if o.stopped_at else "no gate (registered)" if o.registered else "no gate"
        lines += [f"v1 fault: {o.scenario.fault}",
                  f"  caught by: {got} (stage {o.stage or '-'}; expected gate {o.scenario.caught_by}): {verdict}",
                  f"  reason:    {_cut(o.reason, width)}",
                  f"  remedy:    {o.scenario.remedy}", ""]
    return lines


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def register(subparsers) -> None:
    p = subparsers.add_parser("replay", help="replay each fault of the failed v1 run and check its gate stops it",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", default=DEFAULT_SCENARIOS, help=f"scenarios file (default: {DEFAULT_SCENARIOS})")
    p.add_argument("--output-dir", default="runs/replay", help="each scenario runs into <dir>/<name>")
    p.add_argument("--only", action="append", default=[], metavar="NAME", help="run only this scenario (repeatable)")
    p.set_defaults(func=_replay)


def _replay(args: argparse.Namespace) -> int:
    base, scenarios = load_scenarios(args.scenarios)
    unknown = sorted(set(args.only) - {s.name for s in scenarios})
    if unknown:
        raise ConfigError(f"--only {', '.join(unknown)}: no such scenario in {args.scenarios} "
                          f"(there are {', '.join(s.name for s in scenarios)})")
    chosen = [s for s in scenarios if not args.only or s.name in args.only]
    for s in chosen:  # every scenario's config is valid before anything runs
        load_config(base, s.overrides)
    out = Path(args.output_dir)
    outcomes = [run_scenario(base, s, out) for s in chosen]
    print("\n".join(table(outcomes)))
    result: list[dict[str, Any]] = [{"name": o.scenario.name, "fault": o.scenario.fault, "expected": o.scenario.caught_by,
                                     "stopped_at": o.stopped_at, "stage": o.stage, "reason": o.reason,
                                     "registered": o.registered, "caught": o.caught} for o in outcomes]
    out.mkdir(parents=True, exist_ok=True)
    (out / "replay.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    caught = sum(o.caught for o in outcomes)
    print(f"{caught} of {len(outcomes)} v1 faults caught by their gate; nothing registered"
          if caught == len(outcomes) else f"{len(outcomes) - caught} v1 fault(s) NOT caught as expected: see above")
    return 0 if caught == len(outcomes) else 1
