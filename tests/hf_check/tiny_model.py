"""A tiny character-level Llama built in-process, for the hf_check and metric tests only.

Real transformers parts (LlamaForCausalLM, a `tokenizers` fast tokenizer), a few thousand parameters:
fast enough to train in seconds on CPU so the tests measure what a real model generates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from components.train.settings import TrainSection

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
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tokenizer or build_char_tokenizer(texts)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=False)
    torch.manual_seed(0)
    return LlamaForCausalLM(config), tokenizer


def train_completions(model, tokenizer, prompts: Sequence[str], completions: Sequence[str], steps: int,
                      lr: float = 1e-2) -> float:
    """Full-parameter training on prompt+completion+EOS, loss on the completion only; returns the last loss."""
    import torch

    rows = []
    for prompt, completion in zip(prompts, completions, strict=True):
        p = tokenizer(prompt)["input_ids"]
        c = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append((p + c, [-100] * len(p) + c))
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.tensor([ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    attention = (torch.arange(width)[None, :] < torch.tensor([len(ids) for ids, _ in rows])[:, None]).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss = None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains several times faster on one thread than on two busy ones
    try:
        for _ in range(steps):
            optimizer.zero_grad()
            loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return float(loss.detach())


def save(model, tokenizer, path: Path, template: str = DEFAULT_TEMPLATE) -> Path:
    """Saved as the merged model of a train stage output at `path`, its tokenizer carrying the prompt format
    it was trained with (`template`, stamped as the train stage stamps it); returns the merged folder."""
    from components.common.prompts import stamp, training_format
    from tests.fixtures.stage_outputs import seal_merged

    merged = path / "merged"
    merged.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(merged)
    stamp(tokenizer, training_format(tokenizer, template), merged)
    return seal_merged(merged)
