"""Tests for message normalization and Sentry-style error fingerprints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.domain.fingerprint import (
    MAX_MESSAGE_LENGTH,
    Fingerprint,
    compute_fingerprint,
    normalize_message,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def python_tb(*frames: tuple[str, int, str], error: str = "ValueError: boom") -> str:
    lines = ["Traceback (most recent call last):"]
    for path, lineno, function in frames:
        lines.append(f'  File "{path}", line {lineno}, in {function}')
        lines.append("    some_code()")
    lines.append(error)
    return "\n".join(lines) + "\n"


def fp(**kwargs: object) -> Fingerprint:
    kwargs.setdefault("error_type", "ValueError")
    kwargs.setdefault("message", "boom")
    return compute_fingerprint(**kwargs)  # type: ignore[arg-type]


# --- normalize_message -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("User 12345 not found", "User <num> not found"),
        ("retry 3 of 5 after 2.5 seconds", "retry <num> of <num> after <num> seconds"),
        ("order_12345 failed", "order_<num> failed"),
        ("took 1500ms", "took <num>ms"),
        ("object at 0x7f3a2b1c", "object at <hex>"),
        ("digest 5f3a9c2b7e1d4a60 mismatch", "digest <hex> mismatch"),
        ("request req_8f3a9c2b", "request req_<hex>"),
        ("session 550e8400-e29b-41d4-a716-446655440000 expired", "session <uuid> expired"),
        ("session 550E8400-E29B-41D4-A716-446655440000", "session <uuid>"),
        ("no user bob.smith+tag@example.co.uk", "no user <email>"),
        ("GET https://api.example.com/v1/users/42?page=2 failed.", "GET <url> failed."),
        ("connect to http://192.168.1.10:8080/health refused", "connect to <url> refused"),
        ("see (https://example.com/docs)", "see (<url>)"),
        ("host 10.0.0.1 unreachable", "host <ip> unreachable"),
        ("db at 10.0.0.1:5432 down", "db at <ip>:<num> down"),
        ("bind 2001:db8::1 failed", "bind <ip> failed"),
        ("bind ::1 failed", "bind <ip> failed"),
        ("peer fe80::1ff:fe23:4567:890a gone", "peer <ip> gone"),
        ("peer 2001:0db8:0000:0000:0000:ff00:0042:8329 gone", "peer <ip> gone"),
        ("mapped ::ffff:192.168.0.1", "mapped <ip>"),
        ("at 2024-01-15T10:30:00Z", "at <timestamp>"),
        ("at 2024-01-15T10:30:00.123456+02:00", "at <timestamp>"),
        ("at 2024-01-15 10:30:00,123", "at <timestamp>"),
        ("due 2024-01-15", "due <timestamp>"),
        ("at 10:30:00 sharp", "at <timestamp> sharp"),
        ("unknown key 'user_id'", "unknown key <str>"),
        ('bad value "abc def"', "bad value <str>"),
        ("column `created_at` missing", "column <str> missing"),
        ("can't load user's profile", "can't load user's profile"),
        ("can't find 'bob'", "can't find <str>"),
        ("  spaced \n\t out  ", "spaced out"),
        ("", ""),
    ],
)
def test_normalize_message(message: str, expected: str) -> None:
    assert normalize_message(message) == expected


@pytest.mark.parametrize(
    "message",
    [
        "std::vector overflow",
        "ratio a:b:c invalid",
        "deadbeef cafe facade",
        "HTTP2 upgrade on utf8 stream",
        "nothing variable here",
    ],
)
def test_normalize_message_leaves_non_variable_text(message: str) -> None:
    assert normalize_message(message) == message


def test_specific_patterns_win_over_generic_ones() -> None:
    # A UUID is one token, not hex and number fragments.
    assert normalize_message("550e8400-e29b-41d4-a716-446655440000") == "<uuid>"
    # A timestamp is not a run of numbers nor an IPv6 address.
    assert normalize_message("2024-01-15T10:30:00Z") == "<timestamp>"
    # A URL that contains an IP (and an email) stays one URL.
    assert normalize_message("http://user@10.0.0.1:80/a/b") == "<url>"
    # An invalid IPv4 address is just numbers.
    assert "<ip>" not in normalize_message("version 999.1.1.1")


def test_long_messages_are_truncated_before_normalizing() -> None:
    assert len(normalize_message("x" * 5000)) == MAX_MESSAGE_LENGTH
    head = "a" * (MAX_MESSAGE_LENGTH - 3)
    # Whatever follows the cut cannot influence the template.
    assert normalize_message(head + " 1 tail 99999") == normalize_message(head + " 2 other")
    assert normalize_message(head + " 1 tail") == head + " <num>"


# --- Fingerprint shape and stability -----------------------------------------------------------


def test_fingerprint_shape() -> None:
    result = fp(message="User 42 not found")
    assert re.fullmatch(r"[0-9a-f]{32}", result.value)
    assert result.message_template == "User <num> not found"
    assert result.components == ("type:ValueError", "message:User <num> not found")


def test_fingerprint_is_deterministic() -> None:
    assert fp(message="x 1") == fp(message="x 2")


def test_fingerprint_golden_value() -> None:
    # Pinned on purpose: if this changes, every stored group splits. Bump GROUPING_VERSION
    # deliberately instead of letting the algorithm drift.
    assert fp(message="User 42 not found").value == "941a73f6d6c590e877e74c1d162831cb"


def test_fingerprint_stable_across_processes() -> None:
    stack = python_tb(("/srv/app/a.py", 1, "f"))
    code = (
        "from app.domain.fingerprint import compute_fingerprint as c;"
        f"print(c(error_type='KeyError', message='k 1', stacktrace={stack!r}).value)"
    )
    values = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        values.add(out.stdout.strip())
    expected = compute_fingerprint(
        error_type="KeyError", message="k 9", stacktrace=python_tb(("/srv/app/a.py", 7, "f"))
    ).value
    assert values == {expected}


# --- Must group together -----------------------------------------------------------------------


def test_same_error_different_line_numbers_groups() -> None:
    a = fp(stacktrace=python_tb(("/srv/app/api.py", 10, "create"), ("/srv/app/db.py", 3, "save")))
    b = fp(stacktrace=python_tb(("/srv/app/api.py", 14, "create"), ("/srv/app/db.py", 9, "save")))
    assert a.value == b.value


def test_message_ignored_when_stack_is_usable() -> None:
    stack = python_tb(("/srv/app/db.py", 3, "save"))
    a = fp(message="constraint users_email_key violated", stacktrace=stack)
    b = fp(message="constraint orders_pkey violated", stacktrace=stack)
    assert a.value == b.value
    assert a.message_template != b.message_template


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("User 12345 not found", "User 67890 not found"),
        (
            "session 550e8400-e29b-41d4-a716-446655440000 expired",
            "session 6ba7b810-9dad-11d1-80b4-00c04fd430c8 expired",
        ),
        ("no account for alice@example.com", "no account for bob@corp.example.org"),
        ("unknown model 'gpt-4o'", "unknown model 'claude-3-opus'"),
        ("rate limited until 2024-01-15T10:30:00Z", "rate limited until 2025-12-31T23:59:59.999Z"),
        ("upstream 10.0.0.1 timed out", "upstream 172.16.254.3 timed out"),
        ("fetch https://a.example.com/x?id=1 failed", "fetch https://b.example.com/y failed"),
        ("object at 0x7f3a2b1c", "object at 0x55d1e0c8"),
        ("took 1500ms", "took 30000ms"),
    ],
)
def test_variable_message_values_group_without_stack(first: str, second: str) -> None:
    assert fp(message=first).value == fp(message=second).value


def test_recursion_depth_does_not_split_python() -> None:
    shallow = [("/srv/app/tree.py", 5, "walk")] * 3
    deep = [("/srv/app/tree.py", 5, "walk")] * 50
    entry = ("/srv/app/main.py", 1, "main")
    a = fp(error_type="RecursionError", stacktrace=python_tb(entry, *shallow))
    b = fp(error_type="RecursionError", stacktrace=python_tb(entry, *deep))
    assert a.value == b.value
    assert a.components == (
        "type:RecursionError",
        "frame:/srv/app/main.py:main",
        "frame:/srv/app/tree.py:walk",
    )


def test_recursion_depth_does_not_split_javascript() -> None:
    def stack(depth: int) -> str:
        inner = "    at visit (/app/src/tree.js:12:5)\n" * depth
        return (
            "RangeError: Maximum call stack size exceeded\n"
            + inner
            + "    at main (/app/src/main.js:1:1)\n"
        )

    assert (
        fp(error_type="RangeError", stacktrace=stack(2)).value
        == fp(error_type="RangeError", stacktrace=stack(11000)).value
    )


def test_same_js_error_from_two_builds_groups() -> None:
    build_a = (
        "TypeError: Cannot read properties of undefined (reading 'id')\n"
        "    at renderUser (https://cdn.example.com/static/js/main.3f2a1b9c.js:1:20451)\n"
        "    at App (https://cdn.example.com/static/js/main.3f2a1b9c.js:1:18077)\n"
    )
    build_b = (
        "TypeError: Cannot read properties of undefined (reading 'name')\n"
        "    at renderUser (https://static.example.net/static/js/main.9c8d7e6f.js?v=2:1:21533)\n"
        "    at App (https://static.example.net/static/js/main.9c8d7e6f.js?v=2:1:19002)\n"
    )
    a = fp(error_type="TypeError", stacktrace=build_a)
    b = fp(error_type="TypeError", stacktrace=build_b)
    assert a.value == b.value


def test_library_frames_do_not_split_when_app_frames_match() -> None:
    a = fp(
        stacktrace=python_tb(
            ("/venv/lib/python3.11/site-packages/starlette/routing.py", 70, "app"),
            ("/srv/app/api.py", 10, "create"),
        )
    )
    b = fp(
        stacktrace=python_tb(
            ("/venv/lib/python3.12/site-packages/starlette/_exception_handler.py", 53, "wrapped"),
            ("/srv/app/api.py", 10, "create"),
            ("/usr/lib/python3.12/json/__init__.py", 346, "loads"),
        )
    )
    assert a.value == b.value
    assert a.components == ("type:ValueError", "frame:/srv/app/api.py:create")


def test_error_type_whitespace_and_empty_type() -> None:
    assert fp(error_type=" ValueError\n").value == fp(error_type="ValueError").value
    assert fp(error_type="").value == fp(error_type="Error").value
    assert fp(error_type=None).value == fp(error_type="Error").value
    assert fp(error_type="   ").components[0] == "type:Error"


def test_structured_and_text_stacks_with_same_frames_group() -> None:
    text = python_tb(("app/api.py", 10, "create"))
    frames = [{"filename": "app/api.py", "function": "create", "lineno": 99}]
    assert fp(stacktrace=text).value == fp(stacktrace=frames).value


def test_unusable_stack_falls_back_to_message() -> None:
    a = fp(message="User 1 gone", stacktrace="no frames in here")
    b = fp(message="User 2 gone")
    assert a.value == b.value


# --- Must not group together -------------------------------------------------------------------


def test_different_types_do_not_group() -> None:
    stack = python_tb(("/srv/app/api.py", 10, "create"))
    assert (
        fp(error_type="ValueError", stacktrace=stack).value
        != fp(error_type="TypeError", stacktrace=stack).value
    )
    assert fp(error_type="ValueError").value != fp(error_type="TypeError").value


def test_different_functions_do_not_group() -> None:
    a = fp(stacktrace=python_tb(("/srv/app/api.py", 10, "create")))
    b = fp(stacktrace=python_tb(("/srv/app/api.py", 10, "update")))
    assert a.value != b.value


def test_same_function_in_different_modules_does_not_group() -> None:
    a = fp(stacktrace=python_tb(("app/users.py", 10, "save")))
    b = fp(stacktrace=python_tb(("app/orders.py", 10, "save")))
    assert a.value != b.value


def test_different_in_app_frame_does_not_group() -> None:
    lib = ("/venv/lib/python3.11/site-packages/sqlalchemy/engine/base.py", 1900, "execute")
    a = fp(
        stacktrace=python_tb(
            ("/srv/app/api.py", 10, "create"), ("/srv/app/repo.py", 5, "insert"), lib
        )
    )
    b = fp(
        stacktrace=python_tb(
            ("/srv/app/api.py", 10, "create"), ("/srv/app/repo.py", 5, "upsert"), lib
        )
    )
    assert a.value != b.value


def test_different_message_templates_without_stack_do_not_group() -> None:
    assert fp(message="User 1 not found").value != fp(message="Order 1 not found").value
    assert fp(message="timeout after 3 retries").value != fp(message="timeout").value


def test_library_only_stacks_still_distinguish_functions() -> None:
    def lib_tb(function: str) -> str:
        return python_tb(("/venv/lib/python3.11/site-packages/httpx/_client.py", 1, function))

    a = fp(stacktrace=lib_tb("send"))
    b = fp(stacktrace=lib_tb("request"))
    assert a.value != b.value
    assert a.components == ("type:ValueError", "frame:httpx._client:send")


def test_frames_with_unknown_in_app_are_all_used() -> None:
    a = fp(stacktrace=[{"function": "outer"}, {"function": "inner"}])
    b = fp(stacktrace=[{"function": "other"}, {"function": "inner"}])
    assert a.value != b.value
    assert a.components == ("type:ValueError", "frame:?:outer", "frame:?:inner")


def test_stack_grouping_differs_from_message_grouping() -> None:
    assert fp(message="x").value != fp(message="x", stacktrace=python_tb(("a.py", 1, "f"))).value


# --- Custom fingerprints -----------------------------------------------------------------------


def test_custom_fingerprint_replaces_default_grouping() -> None:
    a = fp(error_type="TimeoutError", message="a", custom=["llm-timeout", "openai"])
    b = fp(
        error_type="ReadTimeout",
        message="b 2",
        stacktrace=python_tb(("/srv/app/llm.py", 1, "call")),
        custom=["llm-timeout", "openai"],
    )
    assert a.value == b.value
    assert a.components == ("custom:llm-timeout", "custom:openai")
    assert a.message_template == "a"
    assert fp(custom=["llm-timeout", "anthropic"]).value != a.value


def test_custom_string_equals_single_item_list() -> None:
    assert fp(custom="payments").value == fp(custom=["payments"]).value


def test_custom_values_are_not_normalized_or_reordered() -> None:
    assert fp(custom=["tenant-1"]).value != fp(custom=["tenant-2"]).value
    assert fp(custom=["a", "b"]).value != fp(custom=["b", "a"]).value
    # Joining must be unambiguous.
    assert fp(custom=["a,b"]).value != fp(custom=["a", "b"]).value


def test_custom_cannot_collide_with_default_components() -> None:
    default = fp(message="boom")
    forged = fp(custom=list(default.components))
    assert forged.value != default.value


def test_empty_custom_fingerprint_means_default() -> None:
    default = fp(message="User 1 gone")
    assert fp(message="User 1 gone", custom=[]).value == default.value
    assert fp(message="User 1 gone", custom="").value == default.value
    assert fp(message="User 1 gone", custom=["", "  "]).value == default.value


@pytest.mark.parametrize("placeholder", ["{{ default }}", "{{default}}", " {{  default  }} "])
def test_default_placeholder_expands_to_default_components(placeholder: str) -> None:
    stack = python_tb(("/srv/app/api.py", 10, "create"))
    result = fp(stacktrace=stack, custom=[placeholder, "tenant-a"])
    assert result.components == (
        "type:ValueError",
        "frame:/srv/app/api.py:create",
        "custom:tenant-a",
    )


def test_default_placeholder_extends_rather_than_replaces() -> None:
    stack_a = python_tb(("/srv/app/api.py", 10, "create"))
    stack_b = python_tb(("/srv/app/api.py", 10, "delete"))
    tenant_a = fp(stacktrace=stack_a, custom=["{{ default }}", "tenant-a"])
    # Same default grouping, same extra value: same group, even with other line numbers.
    assert (
        tenant_a.value
        == fp(
            stacktrace=python_tb(("/srv/app/api.py", 99, "create")),
            custom=["{{ default }}", "tenant-a"],
        ).value
    )
    # The extra value splits the default group...
    assert tenant_a.value != fp(stacktrace=stack_a, custom=["{{ default }}", "tenant-b"]).value
    # ...and the default part still separates different errors.
    assert tenant_a.value != fp(stacktrace=stack_b, custom=["{{ default }}", "tenant-a"]).value
    # Only the placeholder alone equals plain default grouping's components.
    assert (
        fp(stacktrace=stack_a, custom="{{ default }}").components
        == fp(stacktrace=stack_a).components
    )


def test_default_placeholder_uses_message_when_no_stack() -> None:
    a = fp(message="User 1 gone", custom=["{{ default }}", "x"])
    b = fp(message="User 2 gone", custom=["{{ default }}", "x"])
    c = fp(message="Order 2 gone", custom=["{{ default }}", "x"])
    assert a.value == b.value != c.value


def test_parsed_frames_fingerprint_like_the_text_they_came_from() -> None:
    from app.domain.stacktrace import parse_stacktrace

    stack = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/tools.py", line 9, in run\n'
        "    call()\n"
        "ValueError: bad"
    )
    from_text = compute_fingerprint(error_type="ValueError", message="bad", stacktrace=stack)
    from_frames = compute_fingerprint(
        error_type="ValueError", message="bad", stacktrace=parse_stacktrace(stack)
    )
    assert from_frames == from_text
    assert any(part.startswith("frame:") for part in from_text.components)
