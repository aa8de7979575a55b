"""Query parameters of the Jaeger query HTTP API, parsed as Jaeger's query service parses them.

The rules and error messages follow Jaeger's own parser (jaegertracing/jaeger
`cmd/jaeger/internal/extension/jaegerquery/internal/query_parser.go`, at 83f3121, the last
commit that still served `/api/traces` search) so that a client sees the answer Jaeger gives:

- times (`start`, `end`) are integers of microseconds since the Unix epoch, `endTs` of
  milliseconds; `lookback` is an integer of milliseconds;
- `minDuration` / `maxDuration` are Go duration strings (`time.ParseDuration`: `100ms`,
  `1.2s`, `1h30m`, units ns, us, µs, ms, s, m, h);
- `tag=key:value` (repeatable) and `tags=<JSON object>` (repeatable) add tag filters. The
  Jaeger UI and Grafana turn the logfmt their users type (`error=true http.method=GET`)
  into that JSON; a `tags` value that is not a JSON object is read as logfmt here too;
- trace ids are 1 to 32 hex characters (shorter ones are left-padded with zeros, as a
  64-bit Jaeger id is), or the id's 16 bytes in base64.

Every parser raises `ValueError` with Jaeger's message for the problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

_INT64_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Times accepted: far wider than any data, narrow enough that a window of days around them
# stays a valid datetime (year 1..9999).
_MIN_MICROS = (datetime(1000, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_MAX_MICROS = (datetime(9000, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)

# time.ParseDuration's units, in nanoseconds (µ is U+00B5, μ is U+03BC; Go takes both).
_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")
_GO_INT = re.compile(r"[+-]?\d+")
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")
# logfmt: `key=value`, `key="quoted \"value\""` or a bare `key`, separated by spaces.
_LOGFMT_PAIR = re.compile(r'\s*([^\s="]+)(?:=("(?:[^"\\]|\\.)*"|[^\s"]*))?\s*')


def parse_error(name: str, problem: str) -> ValueError:
    return ValueError(f"unable to parse param '{name}': {problem}")


def go_quote(text: str) -> str:
    """A string as Go's strconv.Quote writes it in these messages (JSON's escaping is close)."""
    return json.dumps(text, ensure_ascii=False)


def parse_go_duration(text: str) -> int:
    """Go's `time.ParseDuration` in nanoseconds: `"1.5s"` → 1_500_000_000."""
    invalid = ValueError(f"time: invalid duration {go_quote(text)}")
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = Decimal(0)
    while rest:
        match = _DURATION_PART.match(rest)
        whole, fraction, unit = match.group(1), match.group(2), match.group(3)  # type: ignore[union-attr]
        if not whole and not fraction:
            raise invalid
        if not unit:
            raise ValueError(f"time: missing unit in duration {go_quote(text)}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        number = Decimal(f"{whole or 0}.{fraction or 0}")
        # Go truncates each part's fraction of its unit to whole nanoseconds.
        total += int(number * _DURATION_UNITS[unit])
        rest = rest[match.end() :]  # type: ignore[union-attr]
    if total > _INT64_MAX + negative:  # Go's range is -2^63 .. 2^63-1
        raise invalid
    return -int(total) if negative else int(total)


def parse_go_int(name: str, text: str) -> int:
    """Go's `strconv.ParseInt(text, 10, 64)`, with Jaeger's message naming the parameter."""
    if not _GO_INT.fullmatch(text):
        raise parse_error(name, f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise parse_error(name, f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return value


def parse_go_bool(name: str, text: str) -> bool:
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise parse_error(name, f"strconv.ParseBool: parsing {go_quote(text)}: invalid syntax")


def from_micros(name: str, micros: int) -> datetime:
    if not _MIN_MICROS <= micros <= _MAX_MICROS:
        raise parse_error(name, f"{micros} microseconds since the Unix epoch is out of range")
    return _EPOCH + timedelta(microseconds=micros)


def to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def parse_duration_param(name: str, text: str | None) -> int | None:
    """`minDuration` / `maxDuration` in nanoseconds; None when absent or empty."""
    if not text:
        return None
    try:
        return parse_go_duration(text)
    except ValueError as error:
        raise parse_error(name, str(error)) from None


def parse_trace_id(text: str) -> bytes:
    """A trace id as Jaeger accepts it: hex (up to 32 digits, left-padded) or base64."""
    if 0 < len(text) <= 32 and all(c in "0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text.rjust(32, "0"))
    if 0 < len(text) <= 24:
        padded = text + "=" * (-len(text) % 4)
        for alphabet in (None, b"-_"):
            try:
                raw = base64.b64decode(padded, altchars=alphabet, validate=True)
            except (binascii.Error, ValueError):
                continue
            if len(raw) in (8, 16):
                return raw.rjust(16, b"\x00")
    if len(text) > 32:
        raise ValueError(f"TraceID cannot be longer than 32 hex characters: {text:.80}")
    raise ValueError(f"strconv.ParseUint: parsing {go_quote(text[:80])}: invalid syntax")


def format_trace_id(raw: bytes) -> str:
    """As Jaeger prints a trace id: 16 hex digits when its high 64 bits are zero, else 32."""
    text = raw.hex()
    return text[16:] if text.startswith("0" * 16) else text


def _tag_value(value: object) -> str:
    # Jaeger reads a map of strings. The UIs' logfmt libraries can turn `error=true` into a
    # JSON true and `code=200` into 200; those are read as the text they came from.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    raise ValueError(
        "malformed 'tags' parameter, cannot unmarshal JSON: json: cannot unmarshal "
        f"{type(value).__name__} into Go value of type string"
    )


def _logfmt(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _LOGFMT_PAIR.match(text, position)
        if not match or match.end() == position:
            raise ValueError(
                f"malformed 'tags' parameter: {text[position:][:40]!r} is neither a JSON "
                'object nor logfmt key=value pairs, e.g. {"error":"true"} or error=true'
            )
        key, value = match.group(1), match.group(2)
        if value is None:
            value = "true"  # a bare key, as the logfmt the UIs parse reads it
        elif value.startswith('"'):
            value = json.loads(value)
        found[key] = value
        position = match.end()
    return found


def parse_tags(tag_params: list[str], tags_params: list[str]) -> dict[str, str]:
    """`tag=k:v` and `tags={...}` parameters → one map; later ones win, as in Jaeger."""
    found: dict[str, str] = {}
    for tag in tag_params:
        key, separator, value = tag.partition(":")
        if not separator:
            raise ValueError(f"malformed 'tag' parameter, expecting key:value, received: {tag}")
        found[key] = value
    for text in tags_params:
        if not text.strip():
            continue
        if text.lstrip().startswith("{"):
            try:
                document = json.loads(text)
            except ValueError as error:
                raise ValueError(
                    f"malformed 'tags' parameter, cannot unmarshal JSON: {error}"
                ) from None
            if not isinstance(document, dict):
                raise ValueError("malformed 'tags' parameter, expecting a JSON object")
            found.update({key: _tag_value(value) for key, value in document.items()})
        else:
            found.update(_logfmt(text))
    return found
