"""The generation budget comes from the character limit and the tokenizer: every title fits, whatever the tokenizer.

A byte-level BPE (SmolLM2's, Llama 3's kind) spends up to 3 tokens on a Japanese character, so a fixed 48-token
budget cut real titles off and a perfect model was flagged over_length; a character vocabulary needs 1 per
character. Both tokenizers here are real `tokenizers` objects built in the test (no hub).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from components.common.config import RunConfig
from components.common.report import read_jsonl
from components.common.token_budget import hf_token_counter, resolve_token_budget
from components.hf_check.core import run_hf_check
from tests.clean.titles_labelled import TITLES
from tests.fixtures.stage_outputs import write_stage_output
from tests.hf_check import tiny_model
from tests.hf_check.conftest import PAIRS, formatted

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
# A title of 26 characters: 50 tokens in the byte-level BPE below, more than a 48-token budget leaves room for.
LONG_PAIR = ("在宅勤務で腰を痛めてから、机と椅子を一年かけて見直した。", "在宅勤務で腰を痛めた私が一年かけて選んだ机と椅子の話")
BYTE_PAIRS = [*PAIRS, LONG_PAIR]
OLD_FIXED_BUDGET = 48


def _sample_titles() -> list[str]:
    labels = [json.loads(x) for x in (SAMPLE / "note_titles.labels.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [json.loads(x) for x in (SAMPLE / "note_titles.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r["output"] for r, label in zip(rows, labels, strict=True) if label["kind"] == "clean"]


def _references() -> list[str]:
    return _sample_titles() + TITLES + [t for _, t in BYTE_PAIRS]


def _byte_level_tokenizer():
    # Trained on the articles only, with few merges: most title characters stay 2-3 byte tokens, as in SmolLM2.
    return tiny_model.build_byte_level_tokenizer([p for p, _ in BYTE_PAIRS], vocab_size=300)


def _budget(tokenizer, titles: list[str], cfg: RunConfig, explicit: int | None):
    """The budget hf_check derives (or takes) for an HF tokenizer."""
    return cfg.token_budget_rule(explicit).resolve(titles, hf_token_counter(tokenizer))


def _fits(tokenizer, titles: list[str], budget: int, max_chars: int) -> list[str]:
    """The titles (within the character limit) whose tokens plus the one that ends them exceed `budget`."""
    within = [t for t in titles if len(t) <= max_chars]
    counts = hf_token_counter(tokenizer)(within)
    return [t for t, n in zip(within, counts, strict=True) if n + 1 > budget]


@pytest.mark.parametrize("kind", ["byte_level", "char_level"])
def test_derived_budget_fits_every_reference_title(kind):
    cfg = RunConfig()
    training_titles = [t for _, t in PAIRS]  # derived from a handful; checked on 500+ titles it never saw
    if kind == "byte_level":
        tokenizer = _byte_level_tokenizer()
    else:
        tokenizer = tiny_model.build_char_tokenizer([formatted(cfg, p) + t for p, t in PAIRS])
    budget = _budget(tokenizer, training_titles, cfg, explicit=None)
    limit = cfg.hf_check.degenerate.max_output_chars
    assert budget.derived and budget.titles == len(training_titles)
    assert _fits(tokenizer, _references(), budget.max_new_tokens, limit) == []
    # a title at the character limit in a kanji no title used (3 unmerged bytes in a byte-level BPE) fits too
    assert _fits(tokenizer, ["鬱" * limit], budget.max_new_tokens, limit) == []
    if kind == "byte_level":
        assert budget.tokens_per_char >= 2.5 and budget.max_new_tokens > 2 * limit
        assert _fits(tokenizer, _references(), OLD_FIXED_BUDGET, limit)  # what the fixed budget cut off
    else:
        assert budget.tokens_per_char == 1.0
        assert budget.max_new_tokens == limit + cfg.hf_check.token_budget_margin


def test_explicit_budget_overrides_and_counts_the_titles_it_cuts_off():
    tokenizer = _byte_level_tokenizer()
    titles = list(dict.fromkeys(_references()))  # each title counted once
    budget = _budget(tokenizer, titles, RunConfig(), explicit=OLD_FIXED_BUDGET)
    assert (budget.max_new_tokens, budget.derived) == (OLD_FIXED_BUDGET, False)
    assert budget.titles_cut_off == len(_fits(tokenizer, titles, OLD_FIXED_BUDGET, 10_000)) > 0
    assert f"{budget.titles_cut_off} of {budget.titles} titles do not fit" in budget.describe()


def test_budget_follows_the_character_limit_and_margin():
    tokenizer = _byte_level_tokenizer()
    short = RunConfig()
    short.hf_check.degenerate.max_output_chars = 20
    short.hf_check.token_budget_margin = 1
    wide = _budget(tokenizer, [t for _, t in PAIRS], RunConfig(), None)
    narrow = _budget(tokenizer, [t for _, t in PAIRS], short, None)
    assert narrow.tokens_per_char == wide.tokens_per_char
    assert narrow.max_new_tokens == math.ceil(20 * narrow.tokens_per_char) + 1


def test_without_titles_the_budget_is_the_utf8_worst_case():
    budget = resolve_token_budget(None, [], lambda texts: [len(t.encode()) for t in texts], max_output_chars=60,
                                  margin=4)
    assert budget.max_new_tokens == 60 * 4 + 4 and budget.derived


@pytest.fixture(scope="module")
def byte_level_model_dir(tmp_path_factory) -> Path:
    """A tiny Llama over the byte-level BPE that learned every BYTE_PAIRS title, the long one included."""
    cfg = RunConfig()
    model, tokenizer = tiny_model.build_tiny_llama([], tokenizer=_byte_level_tokenizer())
    prompts = [formatted(cfg, p) for p, _ in BYTE_PAIRS]
    loss = tiny_model.train_completions(model, tokenizer, prompts, [t for _, t in BYTE_PAIRS], steps=80)
    assert loss < 0.05, f"the byte-level tiny model did not learn its titles (loss {loss:.3f})"
    return tiny_model.save(model, tokenizer, tmp_path_factory.mktemp("byte_level"))


@pytest.fixture(scope="module")
def byte_level_splits(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("byte_splits")
    rows = [{"id": f"b{i}", "source_line": i + 1, "prompt": p, "completion": t} for i, (p, t) in enumerate(BYTE_PAIRS)]
    return write_stage_output(root, "split", {"train.jsonl": rows[:2], "val.jsonl": rows[:4], "test.jsonl": rows[4:]})


def test_perfect_byte_level_model_loses_nothing_to_the_derived_budget(byte_level_model_dir, byte_level_splits,
                                                                      tmp_path):
    cfg = RunConfig()
    cfg.hf_check.batch_size = 4
    report = run_hf_check(byte_level_model_dir, byte_level_splits, tmp_path / "derived", cfg)
    samples = read_jsonl(tmp_path / "derived" / "samples.jsonl")
    assert [s["output"] for s in samples] == [t for _, t in BYTE_PAIRS]
    assert all(s["finished"] and s["flags"] == [] for s in samples)
    assert report.metrics["degenerate_rate"] == 0.0
    generation = report.details["generation"]
    assert generation["derived"] and generation["titles_cut_off"] == 0
    assert report.metrics["max_new_tokens"] == generation["max_new_tokens"] > OLD_FIXED_BUDGET
    assert generation["titles"] == len(BYTE_PAIRS)  # train.jsonl's titles and the references, once each

    cfg.hf_check.max_new_tokens = OLD_FIXED_BUDGET  # the old fixed budget cuts the long title off
    fixed = run_hf_check(byte_level_model_dir, byte_level_splits, tmp_path / "fixed", cfg)
    cut = {s["reference"]: s for s in read_jsonl(tmp_path / "fixed" / "samples.jsonl") if s["flags"]}
    assert list(cut) == [LONG_PAIR[1]]
    assert cut[LONG_PAIR[1]]["finished"] is False and "over_length" in cut[LONG_PAIR[1]]["flags"]
    assert fixed.details["generation"] == fixed.details["generation"] | {"derived": False, "titles_cut_off": 1}


def test_char_level_model_gets_the_character_limit_as_its_budget(learned_model_dir, title_splits, tmp_path):
    cfg = RunConfig()
    report = run_hf_check(learned_model_dir, title_splits, tmp_path, cfg)
    assert report.passed, report.reasons
    limit, margin = cfg.hf_check.degenerate.max_output_chars, cfg.hf_check.token_budget_margin
    assert report.details["generation"]["max_new_tokens"] == limit + margin
    assert [s["output"] for s in read_jsonl(tmp_path / "samples.jsonl")] == [t for _, t in PAIRS]


def test_evaluate_base_system_derives_and_records_its_budget(learned_model_dir):
    from components.common.prompts import read_format
    from components.evaluate.baselines import hf_base_tokenizer_and_model, run_hf_base
    from components.evaluate.core import system_metrics
    from components.hf_check.generation import Decoding

    cfg = RunConfig()
    model, tokenizer = hf_base_tokenizer_and_model(learned_model_dir)
    fmt = read_format(tokenizer, learned_model_dir)
    articles, refs = [p for p, _ in PAIRS], [t for _, t in PAIRS]
    decoding = Decoding(cfg.hf_check.batch_size, stop_at_newline=True,
                        max_output_chars=cfg.hf_check.degenerate.max_output_chars)
    system = run_hf_base(model, tokenizer, articles, refs, cfg.token_budget_rule(None), decoding, fmt,
                         source="test", titles=refs)
    assert system.outputs == refs and all(system.finished)
    limit, margin = cfg.hf_check.degenerate.max_output_chars, cfg.hf_check.token_budget_margin
    assert system.token_budget["max_new_tokens"] == limit + margin and system.token_budget["derived"]
    metrics, _ = system_metrics(system, [{"prompt": p, "reference": t} for p, t in PAIRS], cfg.output_rules(),
                                fmt.marker_template)
    assert metrics["max_new_tokens"] == limit + margin

    cut = run_hf_base(model, tokenizer, articles, refs, cfg.token_budget_rule(3), decoding, fmt, source="test")
    assert cut.token_budget["max_new_tokens"] == 3 and not any(cut.finished)


def test_generation_stops_once_the_answer_is_past_the_character_limit(broken_model_dir, title_splits, hf_cfg,
                                                                      tmp_path):
    """The broken model writes 24 」 and then EOS; past a 10-character limit it is over_length already, so
    generation stops there instead of spending the rest of the budget."""
    cfg = hf_cfg.model_copy(deep=True)
    cfg.hf_check.degenerate.max_output_chars = 10
    cfg.hf_check.max_new_tokens = 40
    run_hf_check(broken_model_dir, title_splits, tmp_path, cfg)
    samples = read_jsonl(tmp_path / "samples.jsonl")
    assert all(s["output"] == "」" * 11 and s["finished"] is False for s in samples)
    assert all({"repetition", "over_length"} <= set(s["flags"]) for s in samples)
