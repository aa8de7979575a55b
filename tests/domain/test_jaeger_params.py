"""Jaeger's query parameters parsed as Jaeger parses them: Go durations and integers, trace
ids in hex or base64, and tags from `tag=k:v`, JSON and logfmt."""

from __future__ import annotations

import base64

import pytest

from app.domain.jaeger_params import (
    format_trace_id,
    from_micros,
    parse_go_bool,
    parse_go_duration,
    parse_go_int,
    parse_tags,
    parse_trace_id,
    to_micros,
)

MS = 1_000_000
S = 1_000 * MS

# Cases from Go's time package tests (parseDurationTests), which Jaeger's parser is.
DURATIONS = [
    ("0", 0),
    ("5s", 5 * S),
    ("30s", 30 * S),
    ("1478s", 1478 * S),
    ("-5s", -5 * S),
    ("+5s", 5 * S),
    ("-0", 0),
    ("+0", 0),
    ("5.0s", 5 * S),
    ("5.6s", 5 * S + 600 * MS),
    ("5.s", 5 * S),
    (".5s", 500 * MS),
    ("1.004s", S + 4 * MS),
    ("100.00100s", 100 * S + MS),
    ("10ns", 10),
    ("11us", 11_000),
    ("12µs", 12_000),
    ("12μs", 12_000),
    ("13ms", 13 * MS),
    ("15m", 15 * 60 * S),
    ("16h", 16 * 3600 * S),
    ("3h30m", (3 * 3600 + 30 * 60) * S),
    ("10.5s4m", 4 * 60 * S + 10 * S + 500 * MS),
    ("-2m3.4s", -(2 * 60 * S + 3 * S + 400 * MS)),
    ("1h2m3s4ms5us6ns", 3723 * S + 4 * MS + 5_006),
    ("39h9m14.425s", (39 * 3600 + 9 * 60 + 14) * S + 425 * MS),
    ("52763797000ns", 52763797000),
    ("1.2s", 1_200 * MS),
    ("100ms", 100 * MS),
    ("9223372036854775807ns", 2**63 - 1),
    ("-9223372036854775808ns", -(2**63)),
]


@pytest.mark.parametrize(("text", "nanoseconds"), DURATIONS)
def test_go_durations(text: str, nanoseconds: int) -> None:
    assert parse_go_duration(text) == nanoseconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("3", 'time: missing unit in duration "3"'),
        ("-", 'time: invalid duration "-"'),
        ("s", 'time: invalid duration "s"'),
        (".", 'time: invalid duration "."'),
        ("-.", 'time: invalid duration "-."'),
        (".s", 'time: invalid duration ".s"'),
        ("+.s", 'time: invalid duration "+.s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("1s-2s", 'time: unknown unit "s-" in duration "1s-2s"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
    ],
)
def test_bad_go_durations(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_go_duration(text)
    assert str(raised.value) == message


def test_go_integers_and_booleans() -> None:
    assert parse_go_int("start", "-12") == -12
    assert parse_go_int("start", "+7") == 7
    for text in ("", "1.5", "1e3", " 1", "0x10"):
        with pytest.raises(ValueError, match=r"strconv.ParseInt: parsing .*: invalid syntax"):
            parse_go_int("start", text)
    with pytest.raises(ValueError, match="value out of range"):
        parse_go_int("start", str(2**63))
    assert [parse_go_bool("raw", text) for text in ("1", "t", "TRUE", "True")] == [True] * 4
    assert [parse_go_bool("raw", text) for text in ("0", "f", "FALSE", "false")] == [False] * 4
    with pytest.raises(ValueError, match="unable to parse param 'raw'"):
        parse_go_bool("raw", "yes")


def test_microseconds_round_trip() -> None:
    moment = from_micros("start", 1_706_678_909_209_712)
    assert moment.isoformat() == "2024-01-31T05:28:29.209712+00:00"
    assert to_micros(moment) == 1_706_678_909_209_712
    with pytest.raises(ValueError, match="out of range"):
        from_micros("start", 2**62)


def test_trace_ids_in_hex_and_base64() -> None:
    full = bytes.fromhex("83a9efd15c1c98a977e0711cc93ee28b")
    assert parse_trace_id("83a9efd15c1c98a977e0711cc93ee28b") == full
    assert parse_trace_id("83A9EFD15C1C98A977E0711CC93EE28B") == full
    assert parse_trace_id("1") == bytes(15) + b"\x01"
    assert parse_trace_id("00000000000000ff") == bytes(15) + b"\xff"
    assert parse_trace_id(base64.b64encode(full).decode()) == full
    assert parse_trace_id(base64.urlsafe_b64encode(full).decode().rstrip("=")) == full
    with pytest.raises(ValueError, match="cannot be longer than 32 hex characters"):
        parse_trace_id("0" * 33)
    for bad in ("", "zz", "not a trace id"):
        with pytest.raises(ValueError, match="strconv.ParseUint"):
            parse_trace_id(bad)


def test_trace_ids_print_as_jaeger_prints_them() -> None:
    assert format_trace_id(bytes(15) + b"\x01") == "0000000000000001"
    assert format_trace_id(b"\x01" + bytes(15)) == "01" + "0" * 30
    assert format_trace_id(bytes.fromhex("83a9efd15c1c98a977e0711cc93ee28b")) == (
        "83a9efd15c1c98a977e0711cc93ee28b"
    )


def test_tags_from_every_form() -> None:
    assert parse_tags(["k:v", "url:http://x:1"], []) == {"k": "v", "url": "http://x:1"}
    assert parse_tags([], ['{"error":"true","http.status_code":"500"}']) == {
        "error": "true",
        "http.status_code": "500",
    }
    # The UIs' logfmt libraries may turn values into JSON numbers and booleans.
    assert parse_tags([], ['{"code":200,"error":true,"ratio":0.5}']) == {
        "code": "200",
        "error": "true",
        "ratio": "0.5",
    }
    logfmt = 'error=true http.method=GET msg="a \\"quoted\\" value" retry'
    assert parse_tags([], [logfmt]) == {
        "error": "true",
        "http.method": "GET",
        "msg": 'a "quoted" value',
        "retry": "true",
    }
    assert parse_tags(["k:1"], ['{"k":"2"}']) == {"k": "2"}  # `tags` after `tag`, as Jaeger
    assert parse_tags([], ["", "  "]) == {}


@pytest.mark.parametrize(
    ("tag", "tags", "message"),
    [
        (["k"], [], "malformed 'tag' parameter, expecting key:value, received: k"),
        ([], ['{"x":'], "malformed 'tags' parameter, cannot unmarshal JSON"),
        ([], ['{"x":[1]}'], "malformed 'tags' parameter, cannot unmarshal JSON: json: cannot"),
        ([], ['{"x":null}'], "malformed 'tags' parameter, cannot unmarshal JSON: json: cannot"),
        ([], ['a="unterminated'], "malformed 'tags' parameter"),
    ],
)
def test_malformed_tags(tag: list[str], tags: list[str], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_tags(tag, tags)
    assert str(raised.value).startswith(message)
