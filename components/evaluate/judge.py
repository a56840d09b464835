"""LLM-as-judge through any OpenAI-compatible chat endpoint (`POST {url}/chat/completions`).

    result = judge_outputs(items, cfg.evaluate.judge)      # items: [{"id", "system", "article", "title"}]

Each title is sent with the rubric as the system message; the reply's JSON score is read from the text
(code fences and prose around the JSON are tolerated). What can go wrong is counted, never raised:
- a reply that holds no readable score is `malformed` (kept with its first characters, so a person can see why);
- an HTTP error, timeout or refused connection is retried `max_retries` times with exponential backoff;
  when a request still fails the judge stops (the endpoint is down or refuses us: every later request would
  fail the same way) and the result says `status: "failed"` with the last error.
Plain urllib: no SDK, so any server that speaks the chat completions protocol works.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

from components.common.report import JsonProblem, parse_json
from components.evaluate.settings import JudgeSection

# Status codes worth retrying: rate limits and server-side failures. Other 4xx mean the request itself is
# wrong (bad model name, bad key): retrying cannot help.
RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_EXCERPT_CHARS = 200


class JudgeRequestFailed(Exception):
    """A request that still failed after its retries; `attempts` counts every try made."""

    def __init__(self, message: str, attempts: int):
        super().__init__(message)
        self.attempts = attempts


@dataclass
class Verdict:
    id: Any
    system: str
    score: float | None = None
    reason: str | None = None
    malformed: str | None = None  # why no score could be read
    reply_excerpt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class JudgeResult:
    status: str  # "ok", "failed" (stopped on a request error) or "skipped"
    verdicts: list[Verdict] = field(default_factory=list)
    error: str | None = None
    requests: int = 0
    retries: int = 0

    def summary(self) -> dict[str, Any]:
        """Per system: mean score, how many judged, how many malformed; plus the run's status and error."""
        systems: dict[str, dict[str, Any]] = {}
        for v in self.verdicts:
            s = systems.setdefault(v.system, {"judged": 0, "scored": 0, "malformed": 0, "scores": []})
            s["judged"] += 1
            if v.score is None:
                s["malformed"] += 1
            else:
                s["scored"] += 1
                s["scores"].append(v.score)
        for s in systems.values():
            scores = s.pop("scores")
            s["mean_score"] = mean(scores) if scores else None
            s["malformed_rate"] = s["malformed"] / s["judged"] if s["judged"] else 0.0
        out: dict[str, Any] = {"status": self.status, "requests": self.requests, "retries": self.retries,
                               "systems": systems}
        if self.error:
            out["error"] = self.error
        return out


def _fenced_or_whole(text: str) -> list[str]:
    return [m.group(1) for m in _FENCE.finditer(text)] + [text]


def _json_objects(text: str):
    """Every JSON object embedded in `text`, in order of appearance (prose before and after is skipped).
    Not strict: a raw line break inside a string (models write them, and grammar-constrained llama.cpp
    output can contain them) does not make an otherwise clear reply unreadable."""
    decoder = json.JSONDecoder(strict=False)
    for chunk in _fenced_or_whole(text):
        for start in (i for i, c in enumerate(chunk) if c == "{"):
            try:
                obj, _ = decoder.raw_decode(chunk, start)
            except (ValueError, RecursionError):  # not JSON, or a number or nesting json refuses: not a score
                continue
            if isinstance(obj, dict):
                yield obj


def parse_score(text: str, judge: JudgeSection) -> tuple[float | None, str | None, str | None]:
    """(score, reason, None) from a judge reply, or (None, None, why it is malformed)."""
    if not text or not text.strip():
        return None, None, "empty reply"
    found_json = False
    for obj in _json_objects(text):
        found_json = True
        raw = obj.get(judge.score_key)
        if isinstance(raw, str):
            try:
                raw = float(raw.strip())
            except ValueError:
                continue
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            continue
        if not judge.min_score <= raw <= judge.max_score:
            return None, None, f"score {raw} outside {judge.min_score:g}..{judge.max_score:g}"
        reason = obj.get("reason")
        return float(raw), reason if isinstance(reason, str) else None, None
    if found_json:
        return None, None, f"JSON without a numeric '{judge.score_key}'"
    return None, None, "no JSON object in the reply"


def _request_body(judge: JudgeSection, article: str, title: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": judge.model,
        "messages": [{"role": "system", "content": judge.rubric},
                     {"role": "user", "content": judge.user_template.format(article=article, title=title)}],
        "temperature": judge.temperature,
        "max_tokens": judge.max_tokens,
    }
    if judge.response_format is not None:
        body["response_format"] = judge.response_format
    return body


def chat_endpoint(url: str) -> str:
    """Accepts the base URL (`http://host/v1`) or the full endpoint; returns the chat completions URL."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def post_chat(judge: JudgeSection, body: dict[str, Any]) -> tuple[str, int]:
    """The reply's message content and the number of retries it took; JudgeRequestFailed after the last."""
    assert judge.url
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(judge.api_key_env)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    endpoint = chat_endpoint(judge.url)
    delay = judge.backoff_s
    for attempt in range(judge.max_retries + 1):
        request = urllib.request.Request(endpoint, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=judge.timeout_s) as resp:
                payload = parse_json(resp.read().decode("utf-8"))
            return _content(payload), attempt
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:_EXCERPT_CHARS]
            error = f"HTTP {exc.code} from {endpoint}: {detail}"
            if exc.code not in RETRY_STATUSES:
                raise JudgeRequestFailed(error, attempt + 1) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            error = f"cannot reach {endpoint}: {reason}"
        except (JsonProblem, UnicodeDecodeError) as exc:
            error = f"{endpoint} answered with something that is not a chat completion ({exc})"
        if attempt < judge.max_retries:
            print(f"evaluate: judge: {error}; retrying in {delay:g}s", file=sys.stderr)
            time.sleep(delay)
            delay *= 2
    raise JudgeRequestFailed(f"{error} (after {judge.max_retries + 1} attempts)", judge.max_retries + 1)


def _content(payload: Any) -> str:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return ""
    return content if isinstance(content, str) else ""


def judge_outputs(items: list[dict[str, Any]], judge: JudgeSection) -> JudgeResult:
    """Scores each item's title. Items: {"id", "system", "article", "title"}."""
    if not judge.enabled:
        return JudgeResult(status="skipped")
    if not judge.url:
        return JudgeResult(status="failed", error="evaluate.judge.enabled is true but evaluate.judge.url is "
                                                  "not set (an OpenAI-compatible base URL, e.g. http://host:8000/v1)")
    result = JudgeResult(status="ok")
    for i, item in enumerate(items, 1):
        try:
            text, retries = post_chat(judge, _request_body(judge, item["article"], item["title"]))
        except JudgeRequestFailed as exc:
            result.requests += exc.attempts
            result.retries += exc.attempts - 1
            result.status, result.error = "failed", str(exc)
            print(f"evaluate: judge stopped after {i - 1} of {len(items)} items: {exc}", file=sys.stderr)
            break
        result.requests += retries + 1
        result.retries += retries
        score, reason, malformed = parse_score(text, judge)
        result.verdicts.append(Verdict(id=item["id"], system=item["system"], score=score, reason=reason,
                                       malformed=malformed,
                                       reply_excerpt=text[:_EXCERPT_CHARS] if malformed else None))
        if i % 10 == 0 or i == len(items):
            print(f"evaluate: judge {i}/{len(items)}", file=sys.stderr)
    return result
