"""Credential redaction: what is masked, and that nothing else changes."""

from __future__ import annotations

import pytest

from components.common.config import dump_config, load_config
from components.common.redact import redact_config, redact_text, redact_uri


@pytest.mark.parametrize(("uri", "redacted"), [
    ("http://finegate:pw-123@mlflow:5000", "http://finegate:***@mlflow:5000"),
    ("postgresql+psycopg2://mlflow:s3cr3t@db:5432/mlflow", "postgresql+psycopg2://mlflow:***@db:5432/mlflow"),
    ("http://user:p@ss@host/x", "http://user:***@host/x"),  # a raw @ in the password hides its tail too
    ("https://s3/b/k?X-Amz-Credential=AKIA&X-Amz-Date=1&X-Amz-Signature=ff",
     "https://s3/b/k?X-Amz-Credential=***&X-Amz-Date=1&X-Amz-Signature=***"),
    ("https://judge/v1?api_key=sk-1&max_tokens=9", "https://judge/v1?api_key=***&max_tokens=9"),
])
def test_password_and_secret_query_values_are_masked(uri, redacted):
    assert redact_uri(uri) == redacted


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1:5000", "s3://bucket/mlartifacts/1", "ssh://git@github.com/org/repo",
    "http://host:8080/p?email=a@b.com", "sqlite:///runs/mlflow.db", "not a uri: user:pw@host",
])
def test_a_uri_without_credentials_comes_back_unchanged(uri):
    assert redact_uri(uri) == uri


def test_every_uri_inside_a_text_is_redacted():
    text = 'MLflow at http://u:pw1@h:5000: timed out; see {"source": "s3://b/k", "db": "mysql://r:pw2@d/x"}'

    assert redact_text(text) == 'MLflow at http://u:***@h:5000: timed out; see {"source": "s3://b/k", "db": "mysql://r:***@d/x"}'


def test_config_dump_keeps_everything_but_the_password():
    cfg = load_config(None, ["register.tracking_uri=http://finegate:pw-123@mlflow:5000",
                             "evaluate.judge.url=https://judge/v1?token=t0k"])
    dump = dump_config(cfg)

    redacted = redact_config(dump)

    assert redacted["register"]["tracking_uri"] == "http://finegate:***@mlflow:5000"
    assert redacted["evaluate"]["judge"]["url"] == "https://judge/v1?token=***"
    dump["register"]["tracking_uri"], dump["evaluate"]["judge"]["url"] = redacted["register"]["tracking_uri"], redacted["evaluate"]["judge"]["url"]
    assert redacted == dump, "nothing but the two secrets changed (max_tokens, api_key_env, ... stay)"


def test_values_of_keys_named_like_secrets_are_masked():
    assert redact_config({"db": {"password": "hunter2", "user": "mlflow"}, "api_key_env": "JUDGE_KEY",
                          "aws_secret_access_key": "abc", "token": None}) == \
        {"db": {"password": "***", "user": "mlflow"}, "api_key_env": "JUDGE_KEY", "aws_secret_access_key": "***",
         "token": None}
