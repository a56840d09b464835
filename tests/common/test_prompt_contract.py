"""The prompt-format contract: every stage that prompts a fine-tuned model gives it the token ids training gave
it, for the same rows, reading the format from the model it is handed and never from the config or the base.

Two real train outputs of the tiny base (run_train, trl + LoRA): one trained with `train.prompt_template`
(the base has no chat template; the shared `trained_run`), one whose base carries a chat template of its own,
as tests/base_models/test_import_gguf.py gives it one. The reference is what the train stage fed the model
(`encode_rows` on the base's tokenizer: the prompt ids, and prompt + completion + end of turn with the index
where the completion starts). Against it, each consumer on what it is given:

    hf_check           train's merged/ (loaded as hf_check loads it), its stamped format
    gguf               merged/'s format and tokenizer, the held-out records gate C compares on
    evaluate           the quantized GGUF of merged/ (its tokenizer.chat_template) in llama.cpp
    evaluate_base_hf   that format, through the base's HF tokenizer (the base folder has no chat template)
    evaluate_base_gguf that format, through llama.cpp on the base converted to GGUF (no chat template either)
    llama_cpp          llama.cpp's own tokenizer on the F16 GGUF of merged/, with the format the file carries
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.common.errors import InputError
from components.split.outputs import SplitRow, read_splits
from tests.fixtures.models import SHORT_TRAIN_SETTINGS, fixture_config

pytestmark = pytest.mark.slow

# A chat format in characters the tiny SentencePiece vocabulary holds; the role lines differ from the plain
# template, so a consumer that fell back to train.prompt_template would give other ids.
CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
N_ROWS = 8
N_CTX = 512  # the tiny base's max_position_embeddings: nothing below is cut
CONSUMERS = ["hf_check", "gguf", "evaluate", "evaluate_base_hf", "evaluate_base_gguf", "llama_cpp"]


@dataclass
class Trained:
    train_dir: Path
    base_dir: Path  # the base the train stage was given
    f16: Path  # merged/ converted by llama.cpp's converter
    quantized: Path  # and quantized, as the gguf stage ships it


def _convert(merged: Path, out: Path) -> tuple[Path, Path]:
    from components.gguf.convert import convert_to_f16
    from components.gguf.quantize import quantize

    out.mkdir(parents=True, exist_ok=True)
    convert_to_f16(merged, out / "model-f16.gguf", log_path=out / "convert.log")
    quantize(out / "model-f16.gguf", out / "model-Q8_0.gguf", "Q8_0")
    return out / "model-f16.gguf", out / "model-Q8_0.gguf"


@pytest.fixture(scope="module")
def plain_trained(trained_run, tiny_base, tmp_path_factory) -> Trained:
    return Trained(trained_run, tiny_base, *_convert(trained_run / "merged", tmp_path_factory.mktemp("plain_gguf")))


@pytest.fixture(scope="module")
def chat_trained(tiny_base, sample_splits, tmp_path_factory) -> Trained:
    from transformers import AutoTokenizer

    from components.train.core import run_train

    base = tmp_path_factory.mktemp("chat_base") / "model"
    shutil.copytree(tiny_base, base)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(base))
    out = tmp_path_factory.mktemp("chat_trained")
    # Four steps: the weights do not matter here, the format and the ids do.
    cfg = fixture_config(*SHORT_TRAIN_SETTINGS, "train.max_steps=4", "train.eval_steps=2", "train.save_steps=2")
    report = run_train(sample_splits, str(base), out, cfg)
    assert report.passed, report.reasons
    return Trained(out, base, *_convert(out / "merged", tmp_path_factory.mktemp("chat_gguf")))


@pytest.fixture(scope="module")
def rows(sample_splits, tmp_path_factory) -> list[SplitRow]:
    return read_splits(sample_splits, tmp_path_factory.mktemp("rows")).rows("val", "test", limit=N_ROWS)


@pytest.fixture(params=["prompt_template", "chat_template"])
def trained(request) -> Trained:
    return request.getfixturevalue("plain_trained" if request.param == "prompt_template" else "chat_trained")


def training_ids(trained: Trained, rows: list[SplitRow]) -> tuple[list[list[int]], list[tuple[list[int], int]]]:
    """(prompt ids, (pair ids, completion start)) per row, exactly as the train stage built its examples."""
    from transformers import AutoTokenizer

    from components.train.examples import encode_rows

    tokenizer = AutoTokenizer.from_pretrained(str(trained.base_dir))
    encoded = encode_rows(rows, tokenizer, fixture_config().train.prompt_template, max_length=10**6)
    assert encoded.rows_in == len(encoded.input_ids) == len(rows) and not encoded.truncated
    starts = [mask.index(1) for mask in encoded.completion_mask]
    return ([ids[:start] for ids, start in zip(encoded.input_ids, starts, strict=True)],
            list(zip(encoded.input_ids, starts, strict=True)))


def _encoder_ids(encoder, rows):
    return [encoder.prompt_ids(r.prompt) for r in rows], [encoder.pair_ids(r.prompt, r.completion) for r in rows]


def consumer_ids(consumer: str, trained: Trained, base_dir: Path, base_gguf: Path, rows: list[SplitRow],
                 tmp_path: Path):
    """(prompt ids, (pair ids, completion start)) per row, as `consumer` builds them from what it is given."""
    from components.common.prompts import hf_encoder, llama_encoder, model_encoder
    from components.evaluate.systems import GgufRunner
    from components.gguf.core import encode_held_out
    from components.gguf.runtime import open_gguf, read_prompt_format
    from components.hf_check.core import load_model
    from components.train.outputs import read_trained

    cfg = fixture_config(f"evaluate.n_ctx={N_CTX}", f"gguf.n_ctx={N_CTX}")
    merged = read_trained(trained.train_dir, tmp_path / "cache").merged
    if consumer == "hf_check":
        _, tokenizer = load_model(merged)
        return _encoder_ids(model_encoder(tokenizer, merged), rows)
    if consumer == "gguf":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(merged))
        held_rows = [{"id": r.id, "prompt": r.prompt, "completion": r.completion} for r in rows]
        held = encode_held_out(model_encoder(tokenizer, merged), held_rows, cfg, N_CTX)
        return [h.prompt_ids for h in held], [(h.text_ids, len(h.prompt_ids)) for h in held]
    if consumer == "evaluate_base_hf":  # run_hf_base's encoder: the fine-tuned format, the base's tokenizer
        from components.evaluate.baselines import hf_base_tokenizer_and_model

        _, tokenizer = hf_base_tokenizer_and_model(base_dir)
        return _encoder_ids(hf_encoder(read_prompt_format(trained.quantized), tokenizer), rows)
    if consumer == "llama_cpp":
        from llama_cpp import Llama

        llm = Llama(model_path=str(trained.f16), vocab_only=True, verbose=False)
        try:
            return _encoder_ids(llama_encoder(read_prompt_format(trained.f16), llm), rows)
        finally:
            llm.close()
    # evaluate: the fine-tuned model's format, read from the shipped GGUF, prompts both models in llama.cpp.
    fmt = read_prompt_format(trained.quantized)
    path = trained.quantized if consumer == "evaluate" else base_gguf
    with open_gguf(path, cfg.gguf) as llm:
        runner = GgufRunner(llm, cfg.token_budget_rule(cfg.evaluate.max_new_tokens), fmt, [r.completion for r in rows])
        return [runner.prompt_ids(r.prompt) for r in rows], [runner.pair_ids(r.prompt, r.completion) for r in rows]


def _first_difference(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_every_consumer_gives_the_model_the_ids_training_gave_it(consumer, trained, tiny_base, base_gguf, rows,
                                                                 tmp_path):
    prompts, pairs = training_ids(trained, rows)
    # The base handed to evaluate is the tiny base itself, which has no chat template: the format can only
    # come from the fine-tuned model.
    got_prompts, got_pairs = consumer_ids(consumer, trained, tiny_base, base_gguf, rows, tmp_path)
    for row, want, got in zip(rows, prompts, got_prompts, strict=True):
        assert got == want, f"{consumer}: prompt ids of {row.id} differ from training's at {_first_difference(want, got)}"
    for row, want, got in zip(rows, pairs, got_pairs, strict=True):
        assert got == want, f"{consumer}: prompt + completion ids of {row.id} differ from training's"


def test_each_model_carries_the_format_it_was_trained_with_and_the_two_formats_differ(plain_trained, chat_trained,
                                                                                    rows):
    from components.gguf.runtime import read_prompt_format

    template = fixture_config().train.prompt_template
    plain, chat = read_prompt_format(plain_trained.quantized), read_prompt_format(chat_trained.quantized)
    assert chat.chat_template == CHAT_TEMPLATE
    assert plain.marker_template == template and plain.prompt_text(rows[0].prompt).startswith("<s>### 指示")
    # A consumer that fell back to train.prompt_template would have prompted the chat model with other ids.
    assert all(a != b for a, b in zip(training_ids(plain_trained, rows)[0], training_ids(chat_trained, rows)[0],
                                      strict=True))


def test_evaluate_reads_the_format_from_the_fine_tuned_gguf_even_when_the_base_gguf_has_none(chat_trained, base_gguf,
                                                                                            sample_splits, tmp_path):
    """The failure this contract was written after, replayed: a chat-trained model evaluated with its base given
    as a GGUF that carries no chat template. Both systems are prompted in the fine-tuned model's format."""
    from components.evaluate.core import run_evaluate
    from components.gguf.runtime import read_prompt_format
    from tests.fixtures.stage_outputs import seal

    with pytest.raises(InputError, match="carries no prompt format"):
        read_prompt_format(base_gguf)  # what re-deriving the format from the base would have found
    shipped = tmp_path / "gguf"
    shipped.mkdir()
    shutil.copy2(chat_trained.quantized, shipped / "model-Q8_0.gguf")
    seal(shipped, "gguf", details={"shipped": "model-Q8_0.gguf", "shipped_type": "Q8_0"})
    cfg = fixture_config("evaluate.max_samples=2", f"evaluate.n_ctx={N_CTX}", "evaluate.human_eval_pairs=0")
    report = run_evaluate(shipped, sample_splits, tmp_path / "out", cfg, base_model=base_gguf)
    assert report.details["prompt_format"]["chat_template"] == CHAT_TEMPLATE
    assert report.details["systems"]["base"]["source"].startswith("llama.cpp on")
