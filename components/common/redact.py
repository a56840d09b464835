"""Credentials out of everything finegate prints, writes or logs.

    redact_uri("http://user:pw@mlflow:5000/x?token=abc")  -> "http://user:***@mlflow:5000/x?token=***"
    redact_text("MLflow at http://user:pw@mlflow:5000: timed out")  -> every URI in a text, redacted
    redact_config(dump_config(cfg))  -> a copy of a config dump (or any dict/list) with every string redacted

What is masked: the password of a URI's user info (the user name stays, so a reader still sees who
connected), the value of a query parameter whose name says it is a secret (token, password, signature,
X-Amz-Credential, key, ...), and in redact_config the value of a key whose name says the same. Nothing else
changes, so a string without credentials comes back identical, and a redacted config still reads as the config.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_AUTHORITY_END = re.compile(r"[/?#]")
_QUERY_PARAM = re.compile(r"([?&;])([^=&#;]+)=([^&#;]*)")
_SECRET_WORDS = {"password", "passwd", "secret", "token", "signature", "credential", "credentials"}
_SECRET_EXACT = {"pwd", "key", "sig", "auth", "apikey"}
_WORD_SPLIT = re.compile(r"[_\-.\s]+")


def is_secret_name(name: str) -> bool:
    """A query parameter or config key that names a credential: its last word is password, secret, token,
    signature or credential, or it is an API/access/secret key (max_tokens, min_same_top_token_rate, score_key
    and api_key_env are not)."""
    words = [w for w in _WORD_SPLIT.split(name.strip().lower()) if w]
    if not words or words[-1] == "env":  # api_key_env names an environment variable, not a secret
        return False
    joined = "".join(words)
    return joined in _SECRET_EXACT or joined.endswith(("apikey", "accesskey", "secretkey")) or words[-1] in _SECRET_WORDS


def redact_uri(uri: str) -> str:
    """The URI with its password and secret query values masked; anything that is not a URI comes back as is."""
    scheme = _SCHEME.match(uri)
    if scheme is None:
        return uri
    start = scheme.end()
    end_match = _AUTHORITY_END.search(uri, start)
    end = end_match.start() if end_match else len(uri)
    authority = uri[start:end]
    if "@" in authority:
        # The last @ ends the user info: a raw @ inside a password must not leave its tail visible.
        userinfo, hostport = authority.rsplit("@", 1)
        if ":" in userinfo:
            authority = f"{userinfo.split(':', 1)[0]}:{MASK}@{hostport}"
    rest = _QUERY_PARAM.sub(lambda m: f"{m[1]}{m[2]}={MASK}" if is_secret_name(m[2]) else m[0], uri[end:])
    return uri[:start] + authority + rest


def redact_text(text: str) -> str:
    """Every URI inside a free text (an error message, a log line, a JSON file) redacted."""
    return _URI.sub(lambda m: redact_uri(m[0]), text) if "://" in text else text


def redact_config(tree: Any) -> Any:
    """A redacted copy of a config dump or any JSON-like tree: strings through redact_text, and the value of
    a key named like a secret (password, token, api_key, ...) masked whatever it holds."""
    if isinstance(tree, dict):
        return {k: (MASK if isinstance(k, str) and is_secret_name(k) and v not in (None, "") else redact_config(v))
                for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [redact_config(v) for v in tree]
    if isinstance(tree, str):
        return redact_text(tree)
    return tree
