"""hf_check on real tiny models: gate B stops a model that answers 」」」」 before any conversion."""

from __future__ import annotations

import pytest

from components.common.errors import InputError, IntegrityError
from components.common.report import read_jsonl, read_report
from components.hf_check.core import run_hf_check
from tests.fixtures.stage_outputs import write_splits
from tests.hf_check.conftest import PAIRS


@pytest.fixture(scope="module")
def broken_run(broken_model_dir, title_splits, hf_cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("hf_check_broken")
    return run_hf_check(broken_model_dir, title_splits, out, hf_cfg), out


@pytest.fixture(scope="module")
def learned_run(learned_model_dir, title_splits, hf_cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("hf_check_learned")
    return run_hf_check(learned_model_dir, title_splits, out, hf_cfg), out


def test_model_answering_brackets_fails_gate_b_with_rate_and_example(broken_run):
    report, out = broken_run
    assert not report.passed
    assert report.metrics["degenerate_rate"] == 1.0
    assert report.metrics["degenerate_rate_repetition"] == 1.0
    reason = report.reasons[0]
    assert "degenerate outputs 100.0% > gates.max_degenerate_rate 10.0%" in reason
    assert "repetition 100.0%" in reason
    assert "」」」」" in reason  # a sample output, so a person sees what the model says
    assert read_report(out)["passed"] is False
    samples = read_jsonl(out / "samples.jsonl")
    assert all(s["output"].startswith("」」」」") and "repetition" in s["flags"] for s in samples)


def test_model_that_learned_its_titles_passes_gate_b(learned_run):
    report, out = learned_run
    assert report.passed, report.reasons
    m = report.metrics
    assert m["samples"] == len(PAIRS)
    assert m["degenerate_rate"] == 0.0
    assert m["rouge_l"] == pytest.approx(1.0)
    assert m["chrf"] == pytest.approx(1.0)
    assert m["quality_score"] == pytest.approx(1.0)
    assert (out / "degenerate_rates.png").stat().st_size > 1000


def test_samples_hold_prompt_reference_output_and_flags(learned_run):
    _, out = learned_run
    samples = read_jsonl(out / "samples.jsonl")
    assert [s["split"] for s in samples] == ["val"] * 3 + ["test"] * 3
    first = samples[0]
    assert {"id", "source_line", "split", "prompt", "reference", "output", "flags", "finished"} <= set(first)
    assert (first["id"], first["source_line"], first["prompt"]) == ("r0", 1, PAIRS[0][0])
    assert first["output"] == first["reference"] == PAIRS[0][1]
    assert first["flags"] == [] and first["finished"] is True


def test_references_are_likelier_under_the_learned_model(learned_run, broken_run):
    learned, broken = learned_run[0].metrics, broken_run[0].metrics
    assert learned["perplexity"] < 1.5 < broken["perplexity"]
    ref_tokens = sum(len(t) + 1 for _, t in PAIRS)  # one token per character, plus EOS
    assert learned["reference_tokens"] == ref_tokens


def test_quality_score_counts_flagged_outputs_as_zero(broken_run):
    report, out = broken_run
    assert report.metrics["quality_score"] == 0.0
    assert report.details["splits"]["val"]["degenerate_rate"] == 1.0


def test_output_cut_off_by_token_limit_is_flagged_over_length(learned_model_dir, title_splits, hf_cfg, tmp_path):
    cfg = hf_cfg.model_copy(deep=True)
    cfg.hf_check.max_new_tokens = 3
    report = run_hf_check(learned_model_dir, title_splits, tmp_path, cfg)
    samples = read_jsonl(tmp_path / "samples.jsonl")
    assert all(s["finished"] is False and s["flags"] == ["over_length"] for s in samples)
    assert "no EOS before the max_new_tokens limit" in samples[0]["flag_details"]["over_length"]
    assert not report.passed and "over_length 100.0%" in report.reasons[0]


def test_sampling_adds_sampled_outputs_without_gating_them(broken_model_dir, title_splits, hf_cfg, tmp_path):
    cfg = hf_cfg.model_copy(deep=True)
    cfg.hf_check.do_sample = True
    cfg.hf_check.splits = ["val"]
    report = run_hf_check(broken_model_dir, title_splits, tmp_path, cfg)
    samples = read_jsonl(tmp_path / "samples.jsonl")
    assert len(samples) == 3
    assert all("sampled_output" in s and isinstance(s["sampled_flags"], list) for s in samples)
    assert 0.0 <= report.metrics["sampled_degenerate_rate"] <= 1.0


def test_a_split_file_gone_from_its_output_names_the_file(learned_model_dir, tmp_path, hf_cfg):
    splits = write_splits(tmp_path / "split", [], [{"prompt": "本文", "completion": "題"}], [])
    (splits / "test.jsonl").unlink()
    with pytest.raises(IntegrityError, match=r"test\.jsonl is missing although the split report lists it"):
        run_hf_check(learned_model_dir, splits, tmp_path / "out", hf_cfg)


def test_row_without_completion_names_file_line_and_field(learned_model_dir, tmp_path, hf_cfg):
    splits = write_splits(tmp_path / "split", [], [{"id": "a", "prompt": "本文"}], [])
    cfg = hf_cfg.model_copy(deep=True)
    cfg.hf_check.splits = ["val"]
    with pytest.raises(InputError, match=r"val\.jsonl:1: field 'completion'"):
        run_hf_check(learned_model_dir, splits, tmp_path / "out", cfg)


def test_prompts_are_formatted_with_the_format_the_merged_model_carries(learned_model_dir, hf_cfg):
    from transformers import AutoTokenizer

    from components.common.prompts import model_encoder

    tokenizer = AutoTokenizer.from_pretrained(str(learned_model_dir))
    encoder = model_encoder(tokenizer, learned_model_dir)
    assert encoder.format.prompt_text("本文") == "<s>" + hf_cfg.train.prompt_template.format(prompt="本文")
    ids = encoder.prompt_ids("本文")
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id
    # Another format stamped into the model is the one hf_check uses, whatever train.prompt_template says.
    tokenizer.chat_template = ("{{ bos_token }}{% for m in messages %}[{{ m['content'] }}]{% endfor %}"
                               "{% if add_generation_prompt %}:{% endif %}")
    encoder = model_encoder(tokenizer, learned_model_dir)
    assert encoder.format.prompt_text("本文") == "<s>[本文]:"
    ids, start = encoder.pair_ids("本文", "夜")
    assert ids.count(tokenizer.bos_token_id) == 1  # the template's BOS, not a second one from the tokenizer
    assert tokenizer.decode(ids[start:], skip_special_tokens=True) == "夜"


def test_a_model_without_a_prompt_format_is_refused_in_one_line(learned_model_dir, title_splits, hf_cfg, tmp_path):
    import shutil

    from tests.fixtures.stage_outputs import seal_merged

    merged = tmp_path / "old" / "merged"
    shutil.copytree(learned_model_dir, merged)
    (merged / "chat_template.jinja").unlink()  # a merged/ written before train stamped its format
    seal_merged(merged)
    with pytest.raises(InputError, match=r"carries no prompt format .*train stage stamps") as caught:
        run_hf_check(merged, title_splits, tmp_path / "out", hf_cfg)
    assert "\n" not in str(caught.value)


def test_blank_line_before_the_answer_is_skipped_not_taken_as_empty(newline_first_model_dir, title_splits, hf_cfg,
                                                                     tmp_path):
    report = run_hf_check(newline_first_model_dir, title_splits, tmp_path, hf_cfg)
    samples = read_jsonl(tmp_path / "samples.jsonl")
    assert [s["output"] for s in samples] == [t for _, t in PAIRS]
    assert report.metrics["degenerate_rate_empty"] == 0.0


def test_model_and_splits_are_read_from_s3(learned_model_dir, title_splits, hf_cfg, s3_bucket, tmp_path):
    from components.common import storage

    storage.publish(learned_model_dir.parent, f"s3://{s3_bucket}/run/train")
    storage.publish(title_splits, f"s3://{s3_bucket}/run/split")
    cfg = hf_cfg.model_copy(deep=True)
    cfg.hf_check.max_prompts = 2
    report = run_hf_check(f"s3://{s3_bucket}/run/train/merged", f"s3://{s3_bucket}/run/split", tmp_path, cfg)
    assert report.passed, report.reasons
    assert [(s["split"], s["output"]) for s in read_jsonl(tmp_path / "samples.jsonl")] == [
        ("val", PAIRS[0][1]), ("val", PAIRS[1][1]), ("test", PAIRS[3][1]), ("test", PAIRS[4][1])]


@pytest.mark.parametrize("chat", [False, True], ids=["prompt_template", "chat_template"])
def test_generation_sees_the_prompt_tokens_training_saw(learned_model_dir, hf_cfg, chat, tmp_path):
    from transformers import AutoTokenizer

    from components.common.prompts import model_encoder, stamp, training_format
    from components.split.outputs import SplitRow
    from components.train.examples import encode_rows

    base = AutoTokenizer.from_pretrained(str(learned_model_dir))
    base.chat_template = None  # the tokenizer as the train stage got it from the base model
    if chat:  # a chat format written in characters the tiny tokenizer knows, so no token is <unk>
        base.chat_template = (
            "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}### 指示\n{{ m['content'] }}"
            "{% else %}\n\n### タイトル\n{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}\n\n### タイトル\n{% endif %}")
    template = hf_cfg.train.prompt_template
    rows = [SplitRow(id=i, source_line=i + 1, split="train", prompt=p, completion=t) for i, (p, t) in enumerate(PAIRS)]
    trained = encode_rows(rows, base, template, max_length=512)
    # What train writes into merged/, read back the way hf_check reads it.
    stamp(base, training_format(base, template), tmp_path)
    merged = AutoTokenizer.from_pretrained(str(tmp_path))
    encoder = model_encoder(merged, tmp_path)
    for (prompt, title), ids, mask in zip(PAIRS, trained.input_ids, trained.completion_mask, strict=True):
        prompt_ids = encoder.prompt_ids(prompt)
        assert merged.unk_token_id not in prompt_ids
        assert prompt_ids == ids[:mask.index(1)] and prompt_ids.count(merged.bos_token_id) == 1
        assert encoder.pair_ids(prompt, title) == (ids, mask.index(1))


def test_answer_ends_at_any_end_of_turn_token_the_model_stops_on(learned_model_dir, title_splits, hf_cfg, tmp_path):
    """A chat model may end its turn with a token other than the tokenizer's EOS (Llama 3's <|eot_id|>): the
    answer ends there, finished, without that token's text in it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.hf_check import tiny_model

    model = AutoModelForCausalLM.from_pretrained(str(learned_model_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(learned_model_dir))
    turn_end = tokenizer.eos_token_id
    tokenizer.eos_token = "<unk>"  # the tokenizer's EOS is now a token the model never writes
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, turn_end]
    moved = tiny_model.save(model, tokenizer, tmp_path / "model")
    run_hf_check(moved, title_splits, tmp_path / "out", hf_cfg)
    samples = read_jsonl(tmp_path / "out" / "samples.jsonl")
    assert [(s["output"], s["finished"], s["flags"]) for s in samples] == [(t, True, []) for _, t in PAIRS]
