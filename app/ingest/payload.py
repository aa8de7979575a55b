"""Request bodies: media types, bounded decompression and OTLP JSON parsing (no I/O)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from app.ingest.offload import Steps
from app.ingest.otlp_common import MalformedPayload

T = TypeVar("T")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_ALIASES = {PROTOBUF, "application/protobuf", "application/vnd.google.protobuf"}
_CHUNK = 256 * 1024


class UnsupportedMediaType(ValueError):
    """Content-Type or Content-Encoding the collector does not read (415)."""


class PayloadTooLarge(ValueError):
    """Body over a configured size limit (413)."""


def media_type(content_type: str | None, accepted: tuple[str, ...] = (PROTOBUF, JSON)) -> str:
    """`application/json; charset=utf-8` → `application/json`; protobuf aliases folded.

    Raises UnsupportedMediaType naming only the `accepted` types.
    """
    take = " or ".join(accepted)
    if not content_type:
        raise UnsupportedMediaType(f"Content-Type is missing; send {take}")
    base = content_type.split(";", 1)[0].strip().lower()
    found = PROTOBUF if base in _PROTOBUF_ALIASES else base
    if found not in accepted:
        raise UnsupportedMediaType(f"Content-Type {base!r:.80} is not supported; send {take}")
    return found


def content_codings(content_encoding: str | None) -> list[str]:
    """The codings to undo, in the order they were applied (identity left out).

    Raises `UnsupportedMediaType` for a coding the collector cannot undo, so that it is
    refused before the body is read.
    """
    codings = []
    for part in (content_encoding or "").split(","):
        coding = part.strip().lower()
        if not coding or coding == "identity":
            continue
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise UnsupportedMediaType(
                f"Content-Encoding {coding!r} is not supported; use gzip, deflate or identity"
            )
        codings.append(coding)
    return codings


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Undo gzip/deflate, stopping as soon as the output passes `max_bytes`.

    A gzip bomb is cut off while it inflates, never materialised in memory.
    """
    # Codings are listed in the order they were applied; undo them last first.
    for coding in reversed(content_codings(content_encoding)):
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, zlib.MAX_WBITS | 16, max_bytes, "gzip")
        else:
            # RFC 9110 "deflate" is zlib-wrapped, but many clients send raw deflate.
            try:
                body = _inflate(body, zlib.MAX_WBITS, max_bytes, "deflate")
            except MalformedPayload:
                body = _inflate(body, -zlib.MAX_WBITS, max_bytes, "deflate")
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"body is larger than the {max_bytes}-byte limit")
    return body


def _inflate(data: bytes, wbits: int, max_bytes: int, name: str) -> bytes:
    """Inflate at most `max_bytes`, `_CHUNK` at a time; refuse truncated or trailing data.

    gzip allows several members back to back (RFC 1952 §2.2); each is read in turn.
    """
    parts: list[bytes] = []
    size = 0
    remaining = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            while not inflater.eof:
                chunk = inflater.decompress(remaining, _CHUNK)
                consumed = len(remaining) - len(inflater.unconsumed_tail)
                remaining = inflater.unconsumed_tail
                if chunk:
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(
                            f"body decompresses to more than the {max_bytes}-byte limit"
                        )
                    parts.append(chunk)
                elif not consumed and not inflater.eof:
                    # No input left to use and no output: the stream stops short.
                    raise MalformedPayload(f"{name} body is truncated")
            remaining = inflater.unused_data
            if name == "gzip" and remaining[:2] == b"\x1f\x8b":
                continue
            # Zero padding after a gzip stream is tolerated, as gzip(1) does.
            if remaining and (name != "gzip" or remaining.strip(b"\x00")):
                raise MalformedPayload(
                    f"{name} body has {len(remaining)} bytes of trailing data after its end"
                )
            break
    except zlib.error as error:
        raise MalformedPayload(f"body is not valid {name} data: {error}") from None
    return b"".join(parts)


def parse_json(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise MalformedPayload(f"body is not valid JSON: {error}") from None


def parsed_json_steps(body: bytes, decode: Callable[[Any], Steps[T]]) -> Steps[T]:
    """Sliced steps (app/ingest/offload.py): parsing the JSON body is one (orjson), then
    `decode`'s own over the parsed document."""
    document = parse_json(body)
    yield
    return (yield from decode(document))
