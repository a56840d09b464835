"""The LLM judge against a real llama.cpp server on loopback (tests/evaluate/servers.py).

The tiny model cannot write JSON on its own: its replies are the malformed case. With a JSON-schema
response_format the server constrains its sampling, so the same model must answer {"score": n, ...}:
the parsed case. A port nobody listens on is the unreachable case.
"""

from __future__ import annotations

import pytest

from components.evaluate.judge import judge_outputs
from components.evaluate.settings import JudgeSection
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.slow

SCORE_FORMAT = {"type": "json_object", "schema": {
    "type": "object",
    "properties": {"score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
                   "reason": {"type": "string", "maxLength": 20}},
    "required": ["score", "reason"], "additionalProperties": False}}
ITEMS = [{"id": i, "system": system, "article": article, "title": title}
         for i, (article, title) in enumerate([
             ("四十歳でピアノを再開した。毎晩十五分だけ鍵盤に触れている。", "四十歳でピアノを再開して半年"),
             ("週末に近所の山を歩くようになった。朝の空気が気持ちいい。", "自己紹介｜子育て｜ワーママ｜30代")])
         for system in ("finetuned", "base")]


def _judge(url: str, **changes) -> JudgeSection:
    return JudgeSection(**{"enabled": True, "url": url, "model": "judge", "max_tokens": 48, "timeout_s": 120,
                           **changes})


def test_free_text_replies_are_counted_as_malformed_not_raised(judge_server):
    result = judge_outputs(ITEMS, _judge(judge_server))
    summary = result.summary()
    assert result.status == "ok" and result.requests == len(ITEMS)
    assert [v.score for v in result.verdicts] == [None] * len(ITEMS)
    assert all(v.malformed for v in result.verdicts)
    assert summary["systems"]["finetuned"] == {"judged": 2, "scored": 0, "malformed": 2, "mean_score": None,
                                               "malformed_rate": 1.0}


def test_json_constrained_replies_are_parsed_into_scores(judge_server):
    result = judge_outputs(ITEMS, _judge(judge_server, response_format=SCORE_FORMAT, max_tokens=64))
    assert result.status == "ok"
    assert all(v.malformed is None for v in result.verdicts), [v.to_dict() for v in result.verdicts]
    assert all(v.score in {1.0, 2.0, 3.0, 4.0, 5.0} for v in result.verdicts)
    assert all(isinstance(v.reason, str) for v in result.verdicts)
    summary = result.summary()["systems"]
    for system in ("finetuned", "base"):
        scores = [v.score for v in result.verdicts if v.system == system]
        assert summary[system]["mean_score"] == pytest.approx(sum(scores) / len(scores))
        assert summary[system]["malformed"] == 0


def test_unreachable_judge_is_retried_then_recorded_as_failed():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    result = judge_outputs(ITEMS, _judge(url, max_retries=2, backoff_s=0.05, timeout_s=2))
    assert result.status == "failed"
    assert result.requests == 3 and result.retries == 2  # one item, three attempts, then the judge stops
    assert result.verdicts == []
    assert "cannot reach" in result.error and "after 3 attempts" in result.error


def test_wrong_endpoint_path_fails_at_once_without_retries(judge_server):
    wrong = judge_server.rsplit("/v1", 1)[0] + "/no-such-api/chat/completions"
    result = judge_outputs(ITEMS, _judge(wrong, max_retries=3, backoff_s=0.05))
    assert result.status == "failed" and result.requests == 1 and result.retries == 0
    assert "HTTP 404" in result.error


def test_enabled_judge_without_url_is_a_recorded_failure():
    result = judge_outputs(ITEMS, JudgeSection(enabled=True))
    assert result.status == "failed" and "evaluate.judge.url" in result.error


def test_disabled_judge_sends_nothing():
    result = judge_outputs(ITEMS, JudgeSection(enabled=False, url="http://127.0.0.1:9/v1"))
    assert result.status == "skipped" and result.requests == 0
