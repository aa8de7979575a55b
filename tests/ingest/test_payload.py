"""app/ingest/payload.py: media types, bounded gzip/deflate and JSON parsing, without I/O."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from app.ingest import payload
from app.ingest.otlp_common import MalformedPayload

DATA = b'{"resourceSpans": []}' * 100
LIMIT = 1024 * 1024


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def _bomb(size: int, wbits: int = zlib.MAX_WBITS | 16) -> bytes:
    """`size` bytes of zeros, compressed block by block (never held whole)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + compressor.flush()


# ---------------------------------------------------------------- media types


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", payload.JSON),
        ("application/json; charset=utf-8", payload.JSON),
        ("APPLICATION/JSON;charset=UTF-8", payload.JSON),
        ("  application/json  ", payload.JSON),
        ("application/x-protobuf", payload.PROTOBUF),
        ("application/protobuf", payload.PROTOBUF),
        ("application/vnd.google.protobuf", payload.PROTOBUF),
        ("application/x-protobuf; proto=opentelemetry.Export", payload.PROTOBUF),
    ],
)
def test_media_type(header: str, expected: str) -> None:
    assert payload.media_type(header) == expected


@pytest.mark.parametrize(
    "header", ["text/plain", "application/xml", "application/jsonx", "application", "", None]
)
def test_unsupported_media_type(header: str | None) -> None:
    with pytest.raises(payload.UnsupportedMediaType) as raised:
        payload.media_type(header)
    message = str(raised.value)
    assert "application/x-protobuf" in message and "application/json" in message


# ---------------------------------------------------------------- decompression


@pytest.mark.parametrize("encoding", [None, "", "identity", "IDENTITY"])
def test_identity(encoding: str | None) -> None:
    assert payload.decompress(DATA, encoding, LIMIT) == DATA


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        ("gzip", gzip.compress(DATA)),
        ("x-gzip", gzip.compress(DATA)),
        ("Gzip", gzip.compress(DATA)),
        ("deflate", zlib.compress(DATA)),
        ("deflate", _raw_deflate(DATA)),
        ("gzip, identity", gzip.compress(DATA)),
        # Applied in order: gzip first, then deflate; undone last first.
        ("gzip, deflate", zlib.compress(gzip.compress(DATA))),
    ],
    ids=["gzip", "x-gzip", "case", "zlib deflate", "raw deflate", "with identity", "stacked"],
)
def test_decompress(encoding: str, encoded: bytes) -> None:
    assert payload.decompress(encoded, encoding, LIMIT) == DATA


def test_gzip_of_many_members_is_read_whole() -> None:
    """RFC 1952: a gzip file may be several members back to back (e.g. `cat a.gz b.gz`)."""
    encoded = gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:])
    assert payload.decompress(encoded, "gzip", LIMIT) == DATA


def test_zero_padding_after_gzip_is_tolerated() -> None:
    assert payload.decompress(gzip.compress(DATA) + bytes(8), "gzip", LIMIT) == DATA


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        ("gzip", gzip.compress(DATA) + b"trailing garbage"),
        ("deflate", zlib.compress(DATA) + b"trailing garbage"),
    ],
    ids=["gzip", "deflate"],
)
def test_trailing_garbage_is_refused(encoding: str, encoded: bytes) -> None:
    with pytest.raises(MalformedPayload):
        payload.decompress(encoded, encoding, LIMIT)


@pytest.mark.parametrize(
    ("encoding", "encoded", "fragment"),
    [
        ("gzip", b"plain text", "not valid gzip"),
        ("gzip", gzip.compress(DATA)[:-10], "truncated"),
        ("gzip", b"", "truncated"),
        ("deflate", b"\xff\xfe\xfd garbage", "deflate"),
        ("deflate", zlib.compress(DATA)[:20], "deflate"),
    ],
    ids=["not gzip", "truncated gzip", "empty gzip", "bad deflate", "truncated deflate"],
)
def test_corrupt_input(encoding: str, encoded: bytes, fragment: str) -> None:
    with pytest.raises(MalformedPayload) as raised:
        payload.decompress(encoded, encoding, LIMIT)
    assert fragment in str(raised.value)


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br"])
def test_unknown_encoding(encoding: str) -> None:
    with pytest.raises(payload.UnsupportedMediaType) as raised:
        payload.decompress(gzip.compress(DATA), encoding, LIMIT)
    assert "Content-Encoding" in str(raised.value)


def test_limit_is_inclusive() -> None:
    exact = bytes(4096)
    assert payload.decompress(gzip.compress(exact), "gzip", 4096) == exact
    assert payload.decompress(exact, None, 4096) == exact
    with pytest.raises(payload.PayloadTooLarge):
        payload.decompress(gzip.compress(exact + b"!"), "gzip", 4096)
    with pytest.raises(payload.PayloadTooLarge):
        payload.decompress(exact + b"!", None, 4096)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_bomb_is_cut_off_while_inflating(encoding: str) -> None:
    """100 MiB of zeros against a 1 MiB limit: refused, holding little more than the limit."""
    wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
    bomb = _bomb(100 * 1024 * 1024, wbits)
    assert len(bomb) < 200 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(payload.PayloadTooLarge) as raised:
            payload.decompress(bomb, encoding, LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "decompresses to more than the 1048576-byte limit" in str(raised.value)
    assert peak < 4 * LIMIT


def test_nested_bomb_is_cut_off() -> None:
    """gzip inside gzip: each layer is bounded, so the inner one cannot escape the limit."""
    inner = _bomb(50 * 1024 * 1024)
    outer = gzip.compress(inner)
    with pytest.raises(payload.PayloadTooLarge):
        payload.decompress(outer, "gzip, gzip", LIMIT)


# ---------------------------------------------------------------- JSON


def test_parse_json() -> None:
    assert payload.parse_json(b'{"a": [1, "2"]}') == {"a": [1, "2"]}
    assert payload.parse_json(b"") == {}
    assert payload.parse_json(b"  \n ") == {}


@pytest.mark.parametrize("body", [b"{", b"nope", b'{"a": 1,}', b"\xff\xfe", b'{"a": NaN}'])
def test_parse_json_refuses_invalid(body: bytes) -> None:
    with pytest.raises(MalformedPayload) as raised:
        payload.parse_json(body)
    assert "not valid JSON" in str(raised.value)
