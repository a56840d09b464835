"""`evaluate`: the quantized model and two baselines on test.jsonl (components/evaluate/core.py), and the
optional LLM-as-judge (components/evaluate/judge.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from components.common.section import Section


class JudgeSection(Section):
    """Optional LLM-as-judge through any OpenAI-compatible chat endpoint (components/evaluate/judge.py)."""

    enabled: bool = Field(False, description="Ask the judge to score the titles.")
    url: str | None = Field(None, description=(
        "Base URL of the endpoint (\".../v1\"; \"/chat/completions\" is appended) or the full chat completions URL."))
    model: str = Field("judge", description="Model name sent with each request.")
    api_key_env: str = Field("FINEGATE_JUDGE_API_KEY", description=(
        "Environment variable the API key is read from (never the config, which is logged with the run)."))
    rubric: str = Field(
        "記事本文に対するタイトルとして、内容との一致・自然さ・魅力を1から5で採点し、"
        '{"score": <1-5>, "reason": "..."} のJSONだけを返してください。',
        description="The system message: how to score, and the JSON to answer with.")
    user_template: str = Field("記事:\n{article}\n\nタイトル:\n{title}", description=(
        "The user message for one title ({article} and {title} are filled in)."))
    score_key: str = Field("score", description="Key of the score in the judge's JSON reply.")
    min_score: float = Field(1, description="Lowest score on the rubric's scale; a score outside it counts as malformed.")
    max_score: float = Field(5, description="Highest score on the rubric's scale; a score outside it counts as malformed.")
    response_format: dict[str, Any] | None = Field(None, description=(
        "Sent verbatim as the request's response_format when set: {\"type\": \"json_object\", \"schema\": {...}} for "
        "llama.cpp, {\"type\": \"json_schema\", \"json_schema\": {...}} for OpenAI. Leave unset for endpoints "
        "without it."))
    temperature: float = Field(0.0, ge=0, description="The judge's sampling temperature.")
    max_tokens: int = Field(256, ge=1, description="Tokens the judge may answer with.")
    systems: list[Literal["finetuned", "base", "heuristic"]] = Field(["finetuned", "base"], description=(
        "Which systems' titles are judged, each on the first max_samples rows."))
    max_samples: int = Field(50, ge=1, description="Titles judged per system.")
    max_retries: int = Field(3, ge=0, description=(
        "Retries on timeouts, refused connections, 429 and 5xx, waiting backoff_s, then twice as long each time."))
    backoff_s: float = Field(1.0, ge=0, description="Seconds before the first retry; doubled each time.")
    timeout_s: float = Field(60, gt=0, description="Seconds one request may take.")
    required: bool = Field(False, description=(
        "The judge is advisory unless required: then an unreachable judge, or more unreadable replies than "
        "max_malformed_rate, fails the evaluate gate instead of being recorded as a warning."))
    max_malformed_rate: float = Field(0.2, ge=0, le=1, description=(
        "Share of unreadable replies a required judge may give."))
    min_mean_score: float | None = Field(None, description=(
        "The fine-tuned model's mean judge score under this fails the gate; None: reported, not gated."))


class EvaluateSection(Section):
    """The evaluate stage: the quantized model and two baselines on test.jsonl (components/evaluate)."""

    max_samples: int = Field(200, ge=1, description=(
        "test.jsonl rows scored (the first ones, in file order); a bigger test set is cut, never sampled."))
    max_new_tokens: int | None = Field(None, ge=1, description=(
        "Tokens generated per title by every model system. None: derived per system from its tokenizer by "
        "hf_check's rule (hf_check.max_new_tokens), from the training and test titles; an integer overrides it."))
    n_ctx: int = Field(2048, ge=64, description=(
        "Context of the llama.cpp runtime; an article longer than n_ctx - max_new_tokens tokens is cut from its end."))
    heuristic_title_chars: int | None = Field(None, ge=1, description=(
        "The heuristic baseline's title length in characters: the article's first sentence cut to this. None: the "
        "median completion length of train.jsonl (the length the model learned), so the baseline is as long as a "
        "real title without peeking at the test references."))
    heuristic_instruction_min_rows: int = Field(3, ge=2, description=(
        "A leading prompt paragraph that opens at least this many training prompts is an instruction "
        "(\"次の記事本文に…付けてください。\"), not article text: the heuristic skips it and quotes the article."))
    must_beat: list[Literal["base", "heuristic"]] = Field(["base", "heuristic"], description=(
        "Gate: the fine-tuned model must beat each of these baselines on gate_metric by at least min_gain. A "
        "fine-tuned model no better than its base is not worth shipping."))
    gate_metric: Literal["rouge_l", "bleu", "chrf"] = Field("rouge_l", description=(
        "The metric the must_beat comparison uses."))
    min_gain: float = Field(0.0, description=(
        "How much the fine-tuned model must beat each must_beat baseline by (absolute, on the metric's 0..1 scale)."))
    human_eval_pairs: int = Field(50, ge=0, description=(
        "Blind A/B pairs (base vs fine-tuned) written to human_eval.csv for raters; 0 writes none."))
    report_samples: int = Field(30, ge=0, description="Rows shown in report.html's sample table.")
    judge: JudgeSection = Field(JudgeSection(), description="The optional LLM-as-judge.")
