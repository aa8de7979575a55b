"""Redaction of sensitive attribute keys, including the `*_tokens` counts that must survive."""

from __future__ import annotations

import copy

import pytest

from app.domain.redaction import DEFAULT_REDACT_KEYS, REDACTED, Redactor


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(DEFAULT_REDACT_KEYS)


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "Authorization",
        "http.request.header.authorization",
        "http.response.header.set-cookie",
        "http.request.header.cookie",
        "db.password",
        "db.Passwd",
        "user_api_key",
        "x-api-key",
        "http.request.header.x-api-key",
        "apikey",
        "X-Auth-Token",
        "access_token",
        "oauth.refresh-token",
        "client_secret",
        "tls.private_key",
        "aws.credential",
        "token",
    ],
)
def test_sensitive_keys(redactor: Redactor, key: str) -> None:
    assert redactor.is_sensitive(key)
    assert redactor.redact({key: "hunter2"}) == {key: REDACTED}


@pytest.mark.parametrize(
    "key",
    [
        "tokens_used",
        "max_tokens",
        "gen_ai.request.max_tokens",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.usage.total_tokens",
        "token_count",
        "tokenizer",
        "sessiontokens",
        "secretary",
        "cookies_enabled",
        "http.request.method",
        "passwordless",
        "mytoken",  # no separator before the suffix: not a match
    ],
)
def test_non_sensitive_keys(redactor: Redactor, key: str) -> None:
    assert not redactor.is_sensitive(key)
    attributes = {key: 42}
    assert redactor.redact(attributes) is attributes


def test_nothing_matched_returns_the_same_object(redactor: Redactor) -> None:
    attributes = {
        "gen_ai.usage.input_tokens": 100,
        "nested": {"a": 1, "list": [{"b": 2}, 3, "x"]},
        "plain": [1, 2, 3],
    }
    assert redactor.redact(attributes) is attributes


def test_redaction_copies_and_leaves_input_untouched(redactor: Redactor) -> None:
    attributes = {"db.password": "pw", "db.user": "alice", "gen_ai.usage.output_tokens": 7}
    before = copy.deepcopy(attributes)
    result = redactor.redact(attributes)
    assert result is not attributes
    assert result == {"db.password": REDACTED, "db.user": "alice", "gen_ai.usage.output_tokens": 7}
    assert attributes == before


def test_nested_maps_and_lists_of_maps(redactor: Redactor) -> None:
    attributes = {
        "request": {"headers": {"Authorization": "Bearer abc", "accept": "json"}, "max_tokens": 9},
        "tools": [{"name": "search", "api_key": "k"}, {"name": "calc"}, "raw"],
        "matrix": [[{"secret": "s"}]],
        "untouched": {"x": 1},
    }
    result = redactor.redact(attributes)
    assert result == {
        "request": {"headers": {"Authorization": REDACTED, "accept": "json"}, "max_tokens": 9},
        "tools": [{"name": "search", "api_key": REDACTED}, {"name": "calc"}, "raw"],
        "matrix": [[{"secret": REDACTED}]],
        "untouched": {"x": 1},
    }
    # Unchanged branches are shared, not copied.
    assert result["untouched"] is attributes["untouched"]
    assert result["tools"][1] is attributes["tools"][1]
    assert attributes["request"]["headers"]["Authorization"] == "Bearer abc"


def test_whole_value_of_sensitive_key_is_replaced(redactor: Redactor) -> None:
    attributes = {"credential": {"user": "u", "pass": "p"}, "cookie": ["a=1", "b=2"]}
    assert redactor.redact(attributes) == {"credential": REDACTED, "cookie": REDACTED}


def test_already_redacted_is_not_copied(redactor: Redactor) -> None:
    attributes = {"password": REDACTED}
    assert redactor.redact(attributes) is attributes


def test_custom_keys_and_empty_list() -> None:
    custom = Redactor(["SSN", " email "])
    assert custom.redact({"user.ssn": "1", "user.email": "a@b", "password": "p"}) == {
        "user.ssn": REDACTED,
        "user.email": REDACTED,
        "password": "p",
    }
    nothing = Redactor([])
    attributes = {"password": "p"}
    assert nothing.redact(attributes) is attributes
    assert not nothing.is_sensitive("password")


def test_verdict_cache_is_bounded() -> None:
    redactor = Redactor(["token"])
    for i in range(20000):
        redactor.is_sensitive(f"key.{i}")
    assert len(redactor._cache) <= 8192
    assert redactor.is_sensitive("auth.token")
