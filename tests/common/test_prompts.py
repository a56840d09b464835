"""The one prompt format (components/common/prompts.py): a plain template becomes a chat template that renders
exactly that text, BOS included as training tokenized it; chat templates render as transformers renders them;
the format is saved into the model and read back from it; a model without one is refused in one line."""

from __future__ import annotations

import pytest

from components.common.degenerate import inspect_output
from components.common.errors import InputError
from components.common.prompts import (
    hf_encoder,
    read_format,
    stamp,
    training_format,
)
from components.train.settings import TrainSection

TEMPLATE = TrainSection().prompt_template
BODY = "週末に近所の山を歩くようになった。"
TITLE = "週末の山歩き"
# A template that needs trim_blocks, lstrip_blocks, loop variables and a filter to render as intended.
CHAT_TEMPLATE = """{% for message in messages %}
    {% if loop.first %}<|system|>題を付ける</s>
    {% endif %}
<|{{ message['role'] }}|>{{ message['content'] | trim }}</s>
{% endfor %}
{% if add_generation_prompt %}<|assistant|>{% endif %}"""
ODD_TEMPLATE = 'A "quoted" {{braces}} \\ back\\slash \'single\'\t{prompt}\n\n{{prompt}} ends\n'


def char_tokenizer(bos: bool = True):
    from tokenizers import processors

    from tests.hf_check.tiny_model import build_char_tokenizer

    texts = [TEMPLATE, BODY, TITLE, CHAT_TEMPLATE, ODD_TEMPLATE, "本文夜題を付けるsystemuserassistant|"]
    tokenizer = build_char_tokenizer(texts)
    if not bos:
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(single="$A", special_tokens=[])
    return tokenizer


@pytest.mark.parametrize("bos", [True, False], ids=["adds_bos", "no_bos"])
def test_plain_template_renders_exactly_the_template_with_bos_as_training_tokenized_it(bos):
    tokenizer = char_tokenizer(bos)
    assert (tokenizer("x")["input_ids"][0] == tokenizer.bos_token_id) is bos
    fmt = training_format(tokenizer, TEMPLATE)
    prompt = ("<s>" if bos else "") + TEMPLATE.format(prompt=BODY)
    assert fmt.prompt_text(BODY) == prompt
    assert fmt.pair_text(BODY, TITLE) == prompt + TITLE + "</s>"
    ids, start = hf_encoder(fmt, tokenizer).pair_ids(BODY, TITLE)
    # The ids training built before the format had a module of its own: the tokenizer's BOS (when it adds
    # one), the template with the prompt, the completion, the EOS.
    assert ids == tokenizer(TEMPLATE.format(prompt=BODY) + TITLE + tokenizer.eos_token)["input_ids"]
    assert start == len(tokenizer(TEMPLATE.format(prompt=BODY))["input_ids"])
    assert tokenizer.decode(ids[start:]) == TITLE + "</s>"


def test_any_template_text_renders_verbatim_quotes_braces_and_backslashes_included():
    fmt = training_format(char_tokenizer(), ODD_TEMPLATE)
    assert fmt.prompt_text(BODY) == "<s>" + ODD_TEMPLATE.format(prompt=BODY)
    assert fmt.marker_template == ODD_TEMPLATE.format(prompt="{prompt}")


def test_the_degenerate_detector_gets_the_configured_template_back_so_its_verdicts_stand():
    fmt = training_format(char_tokenizer(), TEMPLATE)
    assert fmt.marker_template == TEMPLATE
    outputs = ["### タイトル", "タイトル", "指示", "### 指示\n本文", "40歳でピアノを再開", "」」」」」」"]
    assert [inspect_output(o, BODY, template=fmt.marker_template) for o in outputs] == \
        [inspect_output(o, BODY, template=TEMPLATE) for o in outputs]
    assert "prompt_copy" in inspect_output("指示", BODY, template=fmt.marker_template)


def test_a_chat_template_is_the_format_and_renders_as_transformers_renders_it():
    tokenizer = char_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    fmt = training_format(tokenizer, TEMPLATE)
    assert fmt.chat_template == CHAT_TEMPLATE
    user = [{"role": "user", "content": f"  {BODY} "}]
    pair = [*user, {"role": "assistant", "content": TITLE}]
    assert fmt.prompt_text(f"  {BODY} ") == tokenizer.apply_chat_template(user, tokenize=False,
                                                                            add_generation_prompt=True)
    assert fmt.pair_text(f"  {BODY} ", TITLE) == tokenizer.apply_chat_template(pair, tokenize=False)
    assert fmt.prompt_text(BODY) == f"<|system|>題を付ける</s>\n<|user|>{BODY}</s>\n<|assistant|>"
    assert fmt.marker_template == "<|system|>題を付ける</s>\n<|user|>{prompt}</s>\n<|assistant|>"
    ids = hf_encoder(fmt, tokenizer).prompt_ids(BODY)
    assert tokenizer.bos_token_id not in ids  # the template writes no BOS, so none is added
    assert "### 指示" not in tokenizer.decode(ids)


def test_a_template_that_writes_the_bos_gets_it_once():
    tokenizer = char_tokenizer()
    tokenizer.chat_template = "{{ bos_token }}{% for m in messages %}[{{ m['content'] }}]{% endfor %}"
    ids = hf_encoder(training_format(tokenizer, TEMPLATE), tokenizer).prompt_ids(BODY)
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id


def test_stamped_format_is_read_back_from_the_saved_model_and_the_tokenizer_is_left_alone(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = char_tokenizer()
    fmt = training_format(tokenizer, TEMPLATE)
    stamp(tokenizer, fmt, tmp_path)
    assert tokenizer.chat_template is None
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    assert read_format(again, tmp_path) == fmt
    assert hf_encoder(read_format(again, tmp_path), again).pair_ids(BODY, TITLE) == \
        hf_encoder(fmt, tokenizer).pair_ids(BODY, TITLE)


def test_a_model_without_a_format_is_refused_in_one_line(tmp_path):
    with pytest.raises(InputError, match="carries no prompt format") as caught:
        read_format(char_tokenizer(), tmp_path)
    assert str(tmp_path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("template, problem", [
    ("{% for m in messages %}{{ m['content'] }}", "not valid Jinja"),
    ("{{ raise_exception('only one turn') }}", "cannot render a user turn .*only one turn"),
], ids=["syntax", "raises"])
def test_a_broken_chat_template_is_a_one_line_input_error(template, problem):
    tokenizer = char_tokenizer()
    tokenizer.chat_template = template
    with pytest.raises(InputError, match=problem) as caught:
        training_format(tokenizer, TEMPLATE).prompt_text(BODY)
    assert "\n" not in str(caught.value)
