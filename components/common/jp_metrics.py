"""Text-overlap metrics and perplexity for Japanese outputs, shared by hf_check, gguf and evaluate.

    rouge_l(preds, refs)        mean ROUGE-L F1 over pairs, on word tokens            0..1
    chrf(preds, refs)           corpus chrF (sacrebleu, character n-grams)           0..1
    bleu(preds, refs)           corpus BLEU (sacrebleu) on word tokens               0..1
    corpus_scores(preds, refs)  {"rouge_l", "chrf", "bleu"} in one call
    completion_perplexity(model, pairs)
                                mean NLL of the completion tokens only, and its exp

Every score is on a 0..1 scale (sacrebleu's 0..100 divided by 100), so a gate threshold reads the same
for all three. Japanese has no spaces: rouge-score's default tokenizer keeps only [a-z0-9] and so scores
every Japanese pair 0 (DESIGN.md, facts); words come from MeCab through fugashi with the UniDic-lite
dictionary, or characters when that dictionary is missing. sacrebleu's own `ja-mecab` tokenizer needs
mecab-python3 and ipadic, which are not installed: BLEU gets our word tokens joined by spaces and
`tokenize="none"`, so it counts the same words ROUGE-L does.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Literal

from components.common.text import normalize

log = logging.getLogger(__name__)

Tokenization = Literal["word", "char"]


def char_tokens(text: str) -> list[str]:
    """Every non-space character of the normalized text."""
    return [c for c in normalize(text) if not c.isspace()]


@lru_cache(maxsize=1)
def _word_tagger():
    """MeCab via fugashi; None (with a warning) when the dictionary is missing, and characters are used."""
    try:
        import fugashi

        return fugashi.Tagger()
    except Exception as exc:  # fugashi raises RuntimeError for a missing dictionary, ImportError without it
        warnings.warn(f"Japanese word tokenizer unavailable ({exc.__class__.__name__}: {exc}); "
                      "falling back to characters (pip install fugashi unidic-lite)", stacklevel=3)
        return None


def word_tokens(text: str) -> list[str]:
    """MeCab (UniDic-lite) surface forms of the normalized text; characters when MeCab is unavailable."""
    tagger = _word_tagger()
    if tagger is None:
        return char_tokens(text)
    return [w.surface for w in tagger(normalize(text)) if w.surface.strip()]


def tokens(text: str, tokenization: Tokenization = "word") -> list[str]:
    return word_tokens(text) if tokenization == "word" else char_tokens(text)


class JapaneseTokenizer:
    """The object rouge-score's `RougeScorer(tokenizer=...)` expects: anything with `.tokenize(text)`."""

    def __init__(self, tokenization: Tokenization = "word"):
        self.tokenization = tokenization

    def tokenize(self, text: str) -> list[str]:
        return tokens(text, self.tokenization)


def _check_pairs(preds: Sequence[str], refs: Sequence[str]) -> None:
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} references")


def rouge_l_per_pair(preds: Sequence[str], refs: Sequence[str], tokenization: Tokenization = "word") -> list[float]:
    from rouge_score import rouge_scorer

    _check_pairs(preds, refs)
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=JapaneseTokenizer(tokenization))
    return [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(preds, refs, strict=True)]


def rouge_l(preds: Sequence[str], refs: Sequence[str], tokenization: Tokenization = "word") -> float:
    """Mean ROUGE-L F1 over the pairs; 0.0 for no pairs."""
    scores = rouge_l_per_pair(preds, refs, tokenization)
    return sum(scores) / len(scores) if scores else 0.0


def chrf(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus chrF (character 6-grams, beta 2) on normalized text."""
    import sacrebleu

    _check_pairs(preds, refs)
    if not preds:
        return 0.0
    result = sacrebleu.corpus_chrf([normalize(p) for p in preds], [[normalize(r) for r in refs]])
    return min(result.score / 100.0, 1.0)  # sacrebleu's float sum can exceed 100 by an ulp


def bleu(preds: Sequence[str], refs: Sequence[str], tokenization: Tokenization = "word") -> float:
    """Corpus BLEU-4 on our Japanese tokens (joined by spaces, sacrebleu tokenize="none")."""
    import sacrebleu

    _check_pairs(preds, refs)
    if not preds:
        return 0.0
    joined_preds = [" ".join(tokens(p, tokenization)) for p in preds]
    joined_refs = [" ".join(tokens(r, tokenization)) for r in refs]
    result = sacrebleu.corpus_bleu(joined_preds, [joined_refs], tokenize="none")
    return min(result.score / 100.0, 1.0)  # sacrebleu's float sum can exceed 100 by an ulp


def corpus_scores(preds: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """ROUGE-L, chrF and BLEU of predictions against references, all 0..1."""
    return {"rouge_l": rouge_l(preds, refs), "chrf": chrf(preds, refs), "bleu": bleu(preds, refs)}


def completion_perplexity(model, pairs: Sequence[tuple[list[int], int]],
                          progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Perplexity of reference completions given their prompts, for a Hugging Face causal LM.

    `pairs` are (token ids of prompt + completion + end of turn, index where the completion starts), as
    components/common/prompts.py's `Encoder.pair_ids` gives them: exactly the tokens training scored. Only
    completion tokens are scored (and the end of turn that closes them, as in training): the prompt is context.
    Returns {"mean_nll", "perplexity", "tokens"}; mean_nll is per completion token over the whole set.
    """
    import torch

    model.eval()
    device = next(model.parameters()).device
    total_nll, total_tokens = 0.0, 0
    with torch.no_grad():
        for i, (ids, start) in enumerate(pairs):
            start = max(start, 1)  # without a BOS the first token has no context to be predicted from
            if len(ids) <= start:
                continue
            input_ids = torch.tensor([ids], device=device)
            logits = model(input_ids=input_ids).logits[0, :-1].float()
            targets = input_ids[0, 1:]
            nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            completion_nll = nll[start - 1 :]
            total_nll += float(completion_nll.sum())
            total_tokens += int(completion_nll.numel())
            if progress:
                progress(i + 1, len(pairs))
    mean_nll = total_nll / total_tokens if total_tokens else float("nan")
    return {"mean_nll": mean_nll, "perplexity": math.exp(mean_nll) if total_tokens else float("nan"),
            "tokens": total_tokens}
