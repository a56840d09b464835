"""The evaluate stage end to end: the quantized tiny model in llama.cpp against its base (HF transformers)
and the first-sentence heuristic, judged by a real llama.cpp server, on the sample data's test split."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser

import pytest

from components.common import jp_metrics, storage
from components.common.config import load_config
from components.common.report import read_jsonl
from components.common.text import normalize
from components.evaluate.core import run_evaluate
from components.gguf.header import check_header
from components.gguf.runtime import open_gguf
from pipelines.cli import main as finegate
from tests.evaluate.test_judge_server import SCORE_FORMAT
from tests.fixtures.servers import free_port
from tests.fixtures.stage_outputs import write_stage_output

pytestmark = pytest.mark.slow

SYSTEMS = ["finetuned", "base", "heuristic"]
N_SAMPLES = 16
JUDGED = 3


@pytest.fixture(scope="session")
def evaluated(finetuned_gguf, base_model_dir, run_dir, judge_server, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate")
    cfg = load_config(None, [f"evaluate.max_samples={N_SAMPLES}", "evaluate.human_eval_pairs=10",
                             "evaluate.n_ctx=512", "evaluate.judge.enabled=true",
                             f"evaluate.judge.url={judge_server}", f"evaluate.judge.max_samples={JUDGED}",
                             "evaluate.judge.max_tokens=64", "run.seed=3"])
    cfg.evaluate.judge.response_format = SCORE_FORMAT
    report = run_evaluate(finetuned_gguf, run_dir / "split", out, cfg, base_model=base_model_dir, reports=run_dir)
    return out, report, json.loads((out / "report.json").read_text(encoding="utf-8")), cfg


def test_report_has_every_system_with_scores_deltas_and_artifacts(evaluated):
    out, _, data, _ = evaluated
    assert data["stage"] == "evaluate" and isinstance(data["passed"], bool)
    assert list(data["systems"]) == SYSTEMS
    for name in SYSTEMS:
        for key in ("rouge_l", "bleu", "chrf"):
            assert 0.0 <= data["systems"][name][key] <= 1.0
        assert 0.0 <= data["systems"][name]["degenerate_rate"] <= 1.0
    for name in ("finetuned", "base"):
        assert data["systems"][name]["perplexity"] > 1.0
        assert data["systems"][name]["reference_tokens"] > N_SAMPLES
    assert "perplexity" not in data["systems"]["heuristic"]
    assert set(data["deltas"]) == {"base", "heuristic"}
    assert data["samples"] == N_SAMPLES
    assert data["gguf_sha256"] == check_header(data["gguf"]).sha256
    for artifact in data["artifacts"].values():
        assert (out / artifact).is_file(), artifact


def test_scores_are_computed_from_the_written_outputs(evaluated):
    out, _, data, cfg = evaluated
    rows = read_jsonl(out / "samples.jsonl")
    assert len(rows) == N_SAMPLES
    refs = [r["reference"] for r in rows]
    for name in SYSTEMS:
        outputs = [r["outputs"][name] for r in rows]
        expected = jp_metrics.corpus_scores(outputs, refs)
        for key, value in expected.items():
            assert data["systems"][name][key] == pytest.approx(value), (name, key)
        flagged = sum(bool(r["flags"][name]) for r in rows)
        assert data["systems"][name]["degenerate_rate"] == pytest.approx(flagged / N_SAMPLES)
        assert [r["rouge_l"][name] for r in rows] == pytest.approx(jp_metrics.rouge_l_per_pair(outputs, refs))
    for baseline in ("base", "heuristic"):
        for key in ("rouge_l", "bleu", "chrf", "perplexity", "degenerate_rate"):
            mine, theirs = data["systems"]["finetuned"].get(key), data["systems"][baseline].get(key)
            if theirs is None:
                assert data["deltas"][baseline][key] is None
            else:
                assert data["deltas"][baseline][key] == pytest.approx(mine - theirs)
        assert data["metrics"][f"rouge_l_gain_vs_{baseline}"] == pytest.approx(data["deltas"][baseline]["rouge_l"])
    assert data["metrics"]["rouge_l"] == data["systems"]["finetuned"]["rouge_l"]


def test_finetuned_titles_are_the_quantized_models_greedy_output(evaluated, finetuned_gguf):
    out, _, data, cfg = evaluated
    first = read_jsonl(out / "samples.jsonl")[0]
    prompt = cfg.train.prompt_template.format(prompt=first["prompt"])
    budget = data["systems"]["finetuned"]["token_budget"]
    assert budget["derived"] and data["systems"]["finetuned"]["max_new_tokens"] == budget["max_new_tokens"]
    with open_gguf(finetuned_gguf, cfg.gguf, n_ctx=512) as llm:
        reply = llm.create_completion(prompt, max_tokens=budget["max_new_tokens"], temperature=0.0, stop=["\n"])
    assert first["outputs"]["finetuned"] == reply["choices"][0]["text"].strip()


def test_both_models_are_prompted_in_the_format_the_fine_tuned_model_carries(evaluated, trained_run):
    from transformers import AutoTokenizer

    from components.common.prompts import PromptFormat, read_format

    _, _, data, cfg = evaluated
    merged = trained_run / "merged"
    assert data["prompt_format"] == read_format(AutoTokenizer.from_pretrained(str(merged)), merged).to_dict()
    assert PromptFormat(**data["prompt_format"]).marker_template == cfg.train.prompt_template


def test_heuristic_titles_quote_the_article_not_the_instruction(evaluated):
    out, _, data, _ = evaluated
    limit = data["heuristic_title_chars"]
    instructions = data["heuristic_instructions"]
    assert instructions  # the sample prompts open with one of a few requests ("次の記事本文に…")
    for row in read_jsonl(out / "samples.jsonl"):
        title = row["outputs"]["heuristic"]
        assert 0 < len(title) <= limit
        assert title[:5] in normalize(row["prompt"])
        assert not any(title.startswith(ask[:8]) for ask in instructions), title


def test_judge_scores_the_finetuned_and_base_titles(evaluated):
    out, _, data, _ = evaluated
    judge = data["judge"]
    assert judge["status"] == "ok" and judge["items"] == 2 * JUDGED
    for name in ("finetuned", "base"):
        assert judge["systems"][name]["judged"] == JUDGED
        assert judge["systems"][name]["malformed"] == 0
        assert 1 <= data["systems"][name]["judge_mean_score"] <= 5
    rows = read_jsonl(out / "samples.jsonl")
    assert all(set(r["judge"]) == {"finetuned", "base"} for r in rows[:JUDGED])
    assert all("judge" not in r for r in rows[JUDGED:])


def test_human_eval_pairs_are_blind_and_keyed(evaluated):
    out, _, data, _ = evaluated
    with (out / "human_eval.csv").open(encoding="utf-8-sig", newline="") as f:
        pairs = list(csv.DictReader(f))
    with (out / "human_eval_key.csv").open(encoding="utf-8-sig", newline="") as f:
        keys = {k["pair_id"]: k for k in csv.DictReader(f)}
    samples = {r["id"]: r for r in read_jsonl(out / "samples.jsonl")}
    assert len(pairs) == data["human_eval"]["pairs"] <= 10
    text = (out / "human_eval.csv").read_text(encoding="utf-8-sig")
    assert "finetuned" not in text and "base" not in text
    for pair in pairs:
        key = keys[pair["pair_id"]]
        sample = samples[key["id"]]
        assert pair["title_A"] == sample["outputs"][key["A"]] and pair["title_B"] == sample["outputs"][key["B"]]
        assert pair["article"] == sample["article"] and sample["article"] in sample["prompt"]
        assert not any(pair["article"].startswith(ask) for ask in data["heuristic_instructions"])


class _Sections(HTMLParser):
    def __init__(self):
        super().__init__()
        self.h2, self.images, self._in_h2 = [], 0, False

    def handle_starttag(self, tag, attrs):
        self._in_h2 = tag == "h2"
        if tag == "img" and dict(attrs).get("src", "").startswith("data:image/png;base64,"):
            self.images += 1

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data)
            self._in_h2 = False


def test_html_report_has_every_section_and_embeds_its_figures(evaluated):
    out, _, data, _ = evaluated
    page = (out / "report.html").read_text(encoding="utf-8")
    parsed = _Sections()
    parsed.feed(page)
    assert parsed.h2 == ["Gate results", "Training loss", "Fine-tuned model vs baselines", "Degenerate outputs",
                         "LLM judge", "Human evaluation", "Samples"]
    assert parsed.images == 2  # the train stage's loss curve and metrics.png
    for stage in ("clean", "split", "train", "evaluate"):
        assert f"<td>{stage}</td>" in page
    first = read_jsonl(out / "samples.jsonl")[0]
    assert first["reference"] in page
    assert f"{data['systems']['finetuned']['rouge_l']:.3f}" in page


def test_cli_reads_s3_inputs_and_records_an_unreachable_required_judge_as_a_failed_gate(
        finetuned_gguf, base_gguf, run_dir, s3_bucket, tmp_path, capsys):
    prefix = f"s3://{s3_bucket}/runs/demo"
    storage.publish(run_dir / "split", f"{prefix}/split")
    storage.publish(finetuned_gguf.parent, f"{prefix}/gguf")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    code = finegate(["evaluate", "--gguf-dir", f"{prefix}/gguf/model-Q4_K_M.gguf", "--data-dir", f"{prefix}/split",
                     "--output-dir", str(tmp_path), "--base-model", str(base_gguf),
                     "--set", "evaluate.max_samples=4", "--set", "evaluate.n_ctx=512",
                     "--set", "evaluate.must_beat=[]", "--set", "gates.min_rouge_l=0",
                     "--set", "gates.max_degenerate_rate=1", "--set", "evaluate.judge.enabled=true",
                     "--set", "gates.loosened.evaluate.must_beat=only the judge is under test",
                     "--set", "gates.loosened.gates.min_rouge_l=only the judge is under test",
                     "--set", "gates.loosened.gates.max_degenerate_rate=only the judge is under test",
                     "--set", f"evaluate.judge.url={dead}", "--set", "evaluate.judge.required=true",
                     "--set", "evaluate.judge.max_retries=1", "--set", "evaluate.judge.backoff_s=0.05"])
    err = capsys.readouterr().err
    assert code == 1
    assert "gate failed: evaluate: LLM judge failed: cannot reach" in err
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["judge"]["status"] == "failed" and data["judge"]["requests"] == 2
    assert data["reasons"] == [r for r in data["reasons"] if "judge" in r]
    assert data["samples"] == 4 and data["gguf_sha256"] == storage.sha256_file(finetuned_gguf)
    assert data["systems"]["base"]["source"].startswith("llama.cpp on")  # the base given as a GGUF
    assert "LLM judge failed" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_cli_refuses_a_file_that_is_not_gguf(run_dir, tmp_path, capsys):
    fake = write_stage_output(tmp_path / "gguf", "gguf", {"model.gguf": b"NOTAGGUF" + b"\0" * 64},
                              details={"shipped": "model.gguf"}) / "model.gguf"
    code = finegate(["evaluate", "--gguf-dir", str(fake), "--data-dir", str(run_dir / "split"),
                     "--output-dir", str(tmp_path / "out")])
    assert code == 2
    assert "malformed GGUF" in capsys.readouterr().err


def test_llama_cpp_perplexity_matches_transformers_on_the_same_f16_model(base_gguf, base_model_dir, run_dir):
    from components.common.prompts import hf_encoder, training_format
    from components.evaluate.baselines import hf_base_tokenizer_and_model
    from components.evaluate.core import read_test_rows
    from components.evaluate.systems import LlamaRuntime, run_gguf
    from components.split.outputs import read_splits

    cfg = load_config(None, ["evaluate.n_ctx=512", "evaluate.max_new_tokens=4"])
    rows = read_test_rows(read_splits(run_dir / "split", run_dir / "cache"), 8)
    prompts, refs = [r["prompt"] for r in rows], [r["reference"] for r in rows]
    model, tokenizer = hf_base_tokenizer_and_model(base_model_dir)
    fmt = training_format(tokenizer, cfg.train.prompt_template)
    encoder = hf_encoder(fmt, tokenizer)
    hf = jp_metrics.completion_perplexity(model, [encoder.pair_ids(p, r) for p, r in zip(prompts, refs, strict=True)])
    llama, used = run_gguf("base", base_gguf, prompts, refs, LlamaRuntime(cfg.gguf, cfg.evaluate.n_ctx),
                           cfg.token_budget_rule(cfg.evaluate.max_new_tokens), fmt, fit=True)
    assert used == prompts  # nothing had to be cut
    assert llama.perplexity["tokens"] == hf["tokens"]
    assert llama.perplexity["mean_nll"] == pytest.approx(hf["mean_nll"], rel=0.01)
