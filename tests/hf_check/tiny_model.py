"""A tiny character-level Llama built in-process, for the hf_check and metric tests only.

Real transformers parts (LlamaForCausalLM, a `tokenizers` fast tokenizer), a few thousand parameters:
fast enough to train in seconds on CPU so the tests measure what a real model generates. Its tokenizers are
its own (one token per character, or a byte-level BPE), because the token-budget tests count on exactly that;
the model, training loop and saving are tests/fixtures/tiny_llama.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from components.train.settings import TrainSection
from tests.fixtures.tiny_llama import fit, save_merged, tiny_llama

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
DEFAULT_TEMPLATE = TrainSection().prompt_template  # what the fixtures train on (tests/hf_check/conftest.py)


def build_char_tokenizer(texts: Sequence[str]):
    """Every character of `texts` is one token (a BPE model without merges); BOS is prepended."""
    from tokenizers import Tokenizer, decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    chars = sorted({c for t in texts for c in t} | {"\n", " "})
    vocab = {tok: i for i, tok in enumerate(SPECIALS + chars)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")


def build_byte_level_tokenizer(texts: Sequence[str], vocab_size: int = 400):
    """A byte-level BPE (GPT-2/Llama 3/SmolLM2's kind) trained on `texts`: every byte is a token, so any text
    encodes, and a Japanese character the few merges did not cover costs its 3 UTF-8 bytes. BOS is prepended."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", core.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")


def build_tiny_llama(texts: Sequence[str], hidden_size: int = 64, layers: int = 2, tokenizer=None):
    """A Llama over `tokenizer` (default: the character-level one built from `texts`)."""
    tokenizer = tokenizer or build_char_tokenizer(texts)
    return tiny_llama(tokenizer, hidden_size=hidden_size, layers=layers), tokenizer


def train_completions(model, tokenizer, prompts: Sequence[str], completions: Sequence[str], steps: int,
                      lr: float = 1e-2) -> float:
    """Full-parameter training on prompt+completion+EOS, loss on the completion only; returns the last loss."""
    examples = []
    for prompt, completion in zip(prompts, completions, strict=True):
        p = tokenizer(prompt)["input_ids"]
        c = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        examples.append((p + c, [-100] * len(p) + c))
    return fit(model, examples, tokenizer.pad_token_id, steps, lr)


def save(model, tokenizer, path: Path, template: str = DEFAULT_TEMPLATE) -> Path:
    """Saved as the merged model of a train stage output at `path`, its tokenizer carrying the prompt format
    it was trained with (`template`); returns the merged folder."""
    return save_merged(model, tokenizer, path / "merged", template)
