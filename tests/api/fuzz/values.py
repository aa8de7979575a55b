"""Hypothesis strategies for hostile values: text, numbers, times, JSON, and mutations."""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

from hypothesis import strategies as st

# Values that broke, or could break, a parser, a codec or a database column.
NASTY_TEXT = [
    "", " ", "\x00", "a\x00b", "\x00" * 3, "\u2028", "\ufeff", "é", "😀" * 5, "%00", "%ff",
    "'; DROP TABLE spans; --", "\\", '"', "null", "NaN", "nan", "Infinity", "-inf", "1e999",
    "-1e999", "0x10", "1_000", "00", "-0",
    "now", "now-", "now+", "now-1h", "now - 1h30m", "now+9999999w", "now-99999999999d",
    "now-1y", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00", "2026-13-45", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
    "2999-12-31T23:59:59Z", "3000-01-01T00:00:00Z", "-1", "0", "1", "4294967296",
    str(2**63), str(2**64), str(-(2**63) - 1), "1.5", "true", "false", "[]", "{}",
    "0s", "1ms", "100000000w", "3650d", "1h30m", "1.5s", "30", "p95", "rate",
]  # fmt: skip
# Fixed once: a strategy must draw from the same ranges on every run, or Hypothesis cannot
# replay and shrink what it found.
NOW_NS = time.time_ns()
# Long ones as (prefix, repeated, times, suffix), built when drawn: a strategy's repr
# shows its values, and Hypothesis prints it on failure.
LONG_TEXT = [
    ("", "9", 5000, ""), ("-", "9", 400, ""), ("", "1", 4400, ".5"), ("now-", "9", 400, "d"),
    ("now-", "9", 400, ""), ("", "a", 2000, ""), ("", "\x00", 100, ""), ("", "-", 40, "a"),
    ("a ", "- ", 40, "b"), ("", "-a ", 400, ""),
]  # fmt: skip
NASTY_NUMBERS: list[Any] = [
    0, -1, 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70, -(2**63) - 1,
    10**100, 1e17, 1e308, -1e308, 5e-324, 0.1, -0.0, float("inf"), float("-inf"), float("nan"),
]  # fmt: skip


@cache  # strategies are immutable; building them anew per draw is slow
def text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NASTY_TEXT),
        st.sampled_from(LONG_TEXT).map(lambda long: long[0] + long[1] * long[2] + long[3]),
        st.text(max_size=30),
        st.from_regex(r"now ?[+-] ?[0-9]{1,24}(\.[0-9]{1,3})?(ms|s|m|h|d|w)?", fullmatch=True),
        st.integers(min_value=-(2**80), max_value=2**80).map(str),
        st.floats().map(str),
    )


@cache  # strategies are immutable; building them anew per draw is slow
def numbers() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(NASTY_NUMBERS),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
    )


@cache  # strategies are immutable; building them anew per draw is slow
def unix_nanos() -> st.SearchStrategy[int]:
    """Mostly around now (so items reach storage), sometimes anywhere in uint64."""
    recent = st.integers(min_value=NOW_NS - 3_600_000_000_000, max_value=NOW_NS)
    return st.one_of(
        recent,
        recent,
        st.sampled_from([0, 1, 2**63 - 1, 2**63, 2**64 - 1, NOW_NS + 10**17]),
        st.integers(min_value=0, max_value=2**64 - 1),
    )


@cache  # strategies are immutable; building them anew per draw is slow
def times() -> st.SearchStrategy[Any]:
    """A time as the native API and the query API take it, or something like one."""
    now = NOW_NS / 1e9
    return st.one_of(
        st.floats(min_value=now - 3600, max_value=now).map(
            lambda seconds: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
        ),
        st.floats(min_value=now - 3600, max_value=now),
        text(),
        numbers(),
    )


def nested(depth: int, leaf: Any = "leaf") -> Any:
    value = leaf
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


@cache  # strategies are immutable; building them anew per draw is slow
def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), numbers(), text())
    shallow = st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(text(), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )
    deep = st.integers(min_value=1, max_value=300).map(nested)
    return st.one_of(shallow, shallow, shallow, deep)


def dumps(value: Any) -> bytes:
    """JSON text of anything json_values makes, NaN and infinities included (as the
    non-standard literals some senders write)."""
    return json.dumps(value, allow_nan=True).encode()


# ---------------------------------------------------------------- mutations


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few random edits: flipped bytes, cuts, insertions, repeats."""
    result = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        operation = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "repeat"]))
        position = draw(st.integers(min_value=0, max_value=max(len(result) - 1, 0)))
        if operation == "flip" and result:
            result[position] ^= draw(st.integers(min_value=1, max_value=255))
        elif operation == "truncate":
            del result[position:]
        elif operation == "insert":
            result[position:position] = draw(st.binary(min_size=1, max_size=12))
        elif operation == "delete":
            del result[position : position + draw(st.integers(min_value=1, max_value=12))]
        else:
            result[position:position] = result[position : position + 16]
    return bytes(result)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


@st.composite
def mutated_json(draw: st.DrawFn, document: Any) -> Any:
    """`document` (not changed) with a few nodes replaced by random JSON, or removed."""
    result = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [path for path in _paths(result) if path]
        if not paths:
            return draw(json_values())
        path = draw(st.sampled_from(paths))
        parent = result
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()):
            parent[path[-1]] = draw(json_values())
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    return result
