"""Session cookies: signed, expiring, never the key; CSRF tokens tied to the session."""

from __future__ import annotations

from app.ui.session import Session, csrf_token, decode_session, encode_session, safe_next

SECRET = b"s" * 32


def test_a_cookie_decodes_only_unchanged_unexpired_and_under_its_secret() -> None:
    session = Session("ab" * 32, 2_000, "nonce")
    value = encode_session(SECRET, session)
    assert decode_session(SECRET, value, now=1_000) == session
    assert decode_session(SECRET, value, now=2_001) is None
    assert decode_session(b"t" * 32, value, now=1_000) is None
    longer = value.replace(".2000.", ".9999.")
    assert decode_session(SECRET, longer, now=1_000) is None
    assert decode_session(SECRET, "v1.garbage", now=1_000) is None


def test_csrf_tokens_differ_between_sessions() -> None:
    one, two = Session("-", 1, "a"), Session("-", 1, "b")
    assert csrf_token(SECRET, one) != csrf_token(SECRET, two)
    assert csrf_token(SECRET, one) == csrf_token(SECRET, Session("x", 5, "a"))


def test_only_local_paths_are_followed_after_sign_in() -> None:
    assert safe_next("/ui/traces?service=a") == "/ui/traces?service=a"
    hostile_paths = (
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/\t/evil.example",
    )
    for hostile in (*hostile_paths, "", None):
        assert safe_next(hostile) == "/"
