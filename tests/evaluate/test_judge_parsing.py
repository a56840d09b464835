"""Reading a score out of whatever a judge model replies: fences, prose, strings, wrong keys, bad ranges."""

from __future__ import annotations

import pytest

from components.evaluate.judge import chat_endpoint, parse_score
from components.evaluate.settings import JudgeSection

JUDGE = JudgeSection()


@pytest.mark.parametrize("reply, score, reason", [
    ('{"score": 4, "reason": "内容と一致"}', 4.0, "内容と一致"),
    ('```json\n{"score": 2, "reason": "曖昧"}\n```', 2.0, "曖昧"),
    ('採点します。\n{"score": 5, "reason": "自然"}\n以上です。', 5.0, "自然"),
    ('Here you go: ```\n{"score": "3"}\n``` thanks', 3.0, None),
    ('{"note": "first object has no score"} then {"score": 1.5}', 1.5, None),
    ('{"score": 4, "detail": {"nested": true}}', 4.0, None),
    ('{ "score" : 2, "reason" : "一行目\n二行目" } ', 2.0, "一行目\n二行目"),
])
def test_score_is_read_through_fences_and_surrounding_text(reply, score, reason):
    assert parse_score(reply, JUDGE) == (score, reason, None)


@pytest.mark.parametrize("reply, why", [
    ("", "empty reply"),
    ("   \n", "empty reply"),
    ("タイトルとしてはとても良いと思います。4点です。", "no JSON object in the reply"),
    ("{score: 4}", "no JSON object in the reply"),
    ('{"rating": 4}', "JSON without a numeric 'score'"),
    ('{"score": "good"}', "JSON without a numeric 'score'"),
    ('{"score": true}', "JSON without a numeric 'score'"),
    ('{"score": 9}', "score 9 outside 1..5"),
    ('{"score": 0}', "score 0 outside 1..5"),
    ('{"score": 4', "no JSON object in the reply"),
])
def test_unreadable_replies_are_malformed_with_a_reason(reply, why):
    assert parse_score(reply, JUDGE) == (None, None, why)


def test_score_key_and_scale_come_from_the_config():
    judge = JudgeSection(score_key="rating", min_score=0, max_score=10)
    assert parse_score('{"rating": 8}', judge)[0] == 8.0
    assert parse_score('{"score": 4}', judge)[2] == "JSON without a numeric 'rating'"


@pytest.mark.parametrize("url", ["http://h:8000/v1", "http://h:8000/v1/", "http://h:8000/v1/chat/completions"])
def test_base_url_or_full_endpoint_are_both_accepted(url):
    assert chat_endpoint(url) == "http://h:8000/v1/chat/completions"
