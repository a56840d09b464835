"""The prompt format: how a row becomes model input, in one place, carried by the model trained with it.

A format is a Jinja chat template (the Hugging Face convention; llama.cpp's converter copies it into the GGUF
as `tokenizer.chat_template`) and the BOS and EOS texts it is rendered with. The train stage chooses it and
stamps it into merged/; every later stage reads it from the model it is handed, never from the config and
never from a base model (evaluate once prompted a chat-trained model with `train.prompt_template` because it
re-derived the format from a GGUF base that had none):

    fmt = training_format(tokenizer, cfg.train.prompt_template)   # train: the base's chat template, else the
    stamp(tokenizer, fmt, out / "merged")                          #   plain template as a chat template
    fmt = read_format(tokenizer, "runs/x/train/merged")            # hf_check, gguf: an HF model's tokenizer
    enc = model_encoder(tokenizer, "runs/x/train/merged")          #   (and that format through it)
    fmt = gguf_format(llm, "model-Q4_K_M.gguf")                    # evaluate: a GGUF opened in llama.cpp
    enc = hf_encoder(fmt, tokenizer)  or  llama_encoder(fmt, llm)
    enc.prompt_ids(prompt)                    # what the model reads before its answer
    enc.pair_ids(prompt, completion)          # (prompt + completion + end of turn, where the completion starts)
    fmt.marker_template                       # the format's own text around {prompt} (degenerate.py)

`train.prompt_template` becomes a chat template that renders exactly that text: the BOS first when the
tokenizer adds one (as training always tokenized it), the user turn as the template with {prompt} filled in,
the assistant turn as the completion and the EOS.

Tokenizing a rendered text: a text that opens with the BOS text has the BOS encoded on its own and the rest
from a fresh start, so a tokenizer that puts a space before the first word (SentencePiece's dummy prefix)
does so as when it added the BOS itself, and llama.cpp (which does it after any special token) agrees.
Special-token text (<|im_start|>, </s>) parses as the special token and nothing is added. The completion
starts where the pair's ids stop matching the prompt's (trl's rule), so the loss, every perplexity and every
comparison score the same tokens.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from components.common.errors import ConfigError, InputError, one_line

PROMPT_FIELD = "{prompt}"
# The GGUF metadata key llama.cpp's converter writes the tokenizer's chat template to.
GGUF_CHAT_TEMPLATE = "tokenizer.chat_template"


def uses_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


@dataclass(frozen=True)
class PromptFormat:
    chat_template: str
    bos_token: str = ""
    eos_token: str = ""

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool, **special: str) -> str:
        tokens = {"bos_token": self.bos_token, "eos_token": self.eos_token} | special
        try:
            return _compiled(self.chat_template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                        raise_exception=_raise, strftime_now=_strftime_now, **tokens)
        except Exception as exc:  # noqa: BLE001 - whatever a template (untrusted text) raises while rendering
            raise InputError(f"the model's chat template cannot render a {messages[-1]['role']} turn "
                             f"({exc.__class__.__name__}: {one_line(str(exc))})") from None

    def prompt_text(self, prompt: str) -> str:
        return self.render([_turn("user", prompt)], add_generation_prompt=True)

    def pair_text(self, prompt: str, completion: str) -> str:
        return self.render([_turn("user", prompt), _turn("assistant", completion)], add_generation_prompt=False)

    @property
    def marker_template(self) -> str:
        """The format's own text around the prompt, {prompt} in its place, BOS and EOS left out: for a plain
        template exactly `train.prompt_template`, so the degenerate-output detector judges as it always did."""
        return self.render([_turn("user", PROMPT_FIELD)], add_generation_prompt=True, bos_token="", eos_token="")

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _turn(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def _raise(message: str) -> None:
    raise ValueError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=8)
def _compiled(chat_template: str):
    """The template compiled the way transformers' apply_chat_template and llama-cpp-python compile chat
    templates (sandboxed, trim_blocks, lstrip_blocks, loop controls, {% generation %} passed through)."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class PassGeneration(jinja2.ext.Extension):
        # transformers marks the assistant's tokens with {% generation %}; the text is the same without it.
        tags = {"generation"}

        def parse(self, parser):
            parser.stream.skip(1)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[PassGeneration, jinja2.ext.loopcontrols])
    env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    try:
        return env.from_string(chat_template)
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(f"the model's chat template is not valid Jinja (line {exc.lineno}: {one_line(str(exc.message))})") from None


# ---------------------------------------------------------------- the train stage chooses and stamps
def plain_chat_template(template: str, bos: bool) -> str:
    """`train.prompt_template` as a chat template: [BOS] template-with-the-user-turn, then completion + EOS."""
    user = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        if literal:
            user.append("{{ " + json.dumps(literal, ensure_ascii=False) + " }}")
        if field is None:
            continue
        if field != "prompt" or spec or conversion:
            raise ConfigError(f"train.prompt_template: only a plain {PROMPT_FIELD} field is allowed, not "
                              f"{{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}")
        user.append("{{ message['content'] }}")
    return "".join([
        "{#- finegate: train.prompt_template as a chat template, rendered as training tokenized it -#}\n",
        "{{- bos_token -}}\n" if bos else "",
        "{%- for message in messages -%}\n",
        "{%- if message['role'] == 'user' -%}", *user, "\n",
        "{%- elif message['role'] == 'assistant' -%}{{ message['content'] }}{{ eos_token }}\n",
        "{%- endif -%}\n",
        "{%- endfor -%}\n",
    ])


def _adds_bos(tokenizer) -> bool:
    bos = tokenizer.bos_token_id
    added = tokenizer("a")["input_ids"][:1]
    bare = tokenizer("a", add_special_tokens=False)["input_ids"][:1]
    return bos is not None and added == [bos] and bare != [bos]


def _chat_template_of(tokenizer) -> str:
    template = tokenizer.chat_template
    if isinstance(template, dict):  # named templates: apply_chat_template's default is "default"
        template = template.get("default")
    if not isinstance(template, str) or not template:
        raise InputError("the tokenizer's chat template has no 'default' entry; give the model one chat template")
    return template


def training_format(tokenizer, template: str) -> PromptFormat:
    """The format the train stage trains with: the tokenizer's chat template when it has one, else `template`
    (train.prompt_template) as a chat template, with the BOS where this tokenizer adds one."""
    chat = _chat_template_of(tokenizer) if uses_chat_template(tokenizer) else \
        plain_chat_template(template, _adds_bos(tokenizer))
    return PromptFormat(chat, tokenizer.bos_token or "", tokenizer.eos_token or "")


def stamp(tokenizer, fmt: PromptFormat, directory: str | Path) -> None:
    """Saves `tokenizer` into `directory` carrying `fmt` as its chat template (the tokenizer itself is left
    as it was)."""
    before = tokenizer.chat_template
    tokenizer.chat_template = fmt.chat_template
    try:
        tokenizer.save_pretrained(str(directory))
    finally:
        tokenizer.chat_template = before


# ---------------------------------------------------------------- every later stage reads it
def read_format(tokenizer, where: str | Path) -> PromptFormat:
    """The format an HF model folder carries in its tokenizer (train stamps it into merged/)."""
    if not uses_chat_template(tokenizer):
        raise InputError(f"{where}: the model carries no prompt format (its tokenizer has no chat template); the "
                         "train stage stamps the format it trained with into merged/: give a train output written "
                         "by this version")
    return PromptFormat(_chat_template_of(tokenizer), tokenizer.bos_token or "", tokenizer.eos_token or "")


def model_encoder(tokenizer, where: str | Path) -> Encoder:
    """The format an HF model folder carries, through its own tokenizer."""
    return hf_encoder(read_format(tokenizer, where), tokenizer)


def gguf_format(llm, where: str | Path) -> PromptFormat:
    """The format a GGUF carries: its tokenizer.chat_template metadata and the texts of its BOS and EOS tokens,
    as llama.cpp (a llama_cpp.Llama, vocab_only is enough) reads them."""
    template = (getattr(llm, "metadata", None) or {}).get(GGUF_CHAT_TEMPLATE)
    if not template:
        raise InputError(f"{where}: the GGUF carries no prompt format (no {GGUF_CHAT_TEMPLATE} metadata); convert "
                         "the train stage's merged/ model, which carries the format it was trained with")
    return PromptFormat(template, _token_text(llm, llm.token_bos()), _token_text(llm, llm.token_eos()))


def _token_text(llm, token_id: int) -> str:
    if token_id is None or token_id < 0:
        return ""
    return llm.detokenize([token_id], special=True).decode("utf-8", "replace")


# ---------------------------------------------------------------- token ids
def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class Encoder:
    """A format's texts as token ids through one tokenizer; `tokenize(text)` parses special-token text and
    adds no token of its own."""

    def __init__(self, fmt: PromptFormat, tokenize: Callable[[str], list[int]]):
        self.format = fmt
        self._tokenize = tokenize

    def ids(self, text: str) -> list[int]:
        bos = self.format.bos_token
        if bos and text.startswith(bos):
            return list(self._tokenize(bos)) + list(self._tokenize(text[len(bos):]))
        return list(self._tokenize(text))

    def prompt_ids(self, prompt: str) -> list[int]:
        return self.ids(self.format.prompt_text(prompt))

    def pair_ids(self, prompt: str, completion: str) -> tuple[list[int], int]:
        """(ids of prompt + completion + the format's end of turn, number of prompt tokens)."""
        prompt_ids = self.prompt_ids(prompt)
        full_ids = self.ids(self.format.pair_text(prompt, completion))
        return full_ids, _common_prefix(prompt_ids, full_ids)


def hf_encoder(fmt: PromptFormat, tokenizer) -> Encoder:
    return Encoder(fmt, lambda text: tokenizer(text, add_special_tokens=False)["input_ids"] if text else [])


def llama_encoder(fmt: PromptFormat, llm) -> Encoder:
    """Through llama.cpp's own tokenizer (the GGUF's vocabulary), special-token text parsed as tokens."""
    return Encoder(fmt, lambda text: llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) if text else [])

