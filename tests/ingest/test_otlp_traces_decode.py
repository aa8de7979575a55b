"""The OTLP trace decoders (protobuf and JSON) as pure functions: no database, no server."""

from __future__ import annotations

import time
from typing import Any

import pytest
from otlp_testkit import SpanSpec, new_span_id, new_trace_id, traces_json, traces_pb

from app.domain.records import SpanRecord
from app.ingest.otlp_common import (
    DecodeLimits,
    InvalidItem,
    MalformedPayload,
    enum_json,
    id_json,
    id_pb,
    int_json,
)
from app.ingest.otlp_traces import (
    SPAN_KINDS,
    decode_traces_json,
    decode_traces_protobuf,
)

NOW = time.time_ns()
DAY = 86_400 * 1_000_000_000
LIMITS = DecodeLimits(
    oldest_unix_nano=NOW - 7 * DAY,
    newest_unix_nano=NOW + DAY,
    max_attributes=8,
    max_value_chars=32,
    retention_label="7d retention",
)


def _spec(**overrides: Any) -> SpanSpec:
    values: dict[str, Any] = {
        "trace_id": new_trace_id(),
        "span_id": new_span_id(),
        "name": "op",
        "start_ns": NOW - 1_000_000,
        "end_ns": NOW,
    }
    values.update(overrides)
    return SpanSpec(**values)


def _both(spans: list[SpanSpec], **kwargs: Any) -> tuple[list[SpanRecord], list[SpanRecord]]:
    """The same spans through both decoders; nothing may be rejected."""
    from_pb = decode_traces_protobuf(traces_pb(spans, **kwargs).SerializeToString(), LIMITS)
    from_json = decode_traces_json(traces_json(spans, **kwargs), LIMITS)
    assert (from_pb.rejected, from_json.rejected) == (0, 0), (from_pb.messages, from_json.messages)
    return from_pb.items, from_json.items


# ---------------------------------------------------------------- both encodings agree


def test_protobuf_and_json_decode_alike() -> None:
    parent = _spec(kind=2)
    child = _spec(
        trace_id=parent.trace_id,
        parent_span_id=parent.span_id,
        kind=3,
        attributes={
            "s": "text",
            "i": -12,
            "f": 1.5,
            "b": True,
            "list": ["a", 1, 2.5, False],
            "map": {"k": "v", "n": {"deep": 1}},
        },
        status_code=2,
        status_message="boom",
    )
    from_pb, from_json = _both([parent, child], service="svc", scope="lib")
    assert from_pb == from_json
    record = from_pb[1]
    assert record.trace_id == bytes.fromhex(parent.trace_id)
    assert record.span_id == bytes.fromhex(child.span_id)
    assert record.parent_span_id == bytes.fromhex(parent.span_id)
    assert (record.kind, record.status_code, record.status_message) == (3, 2, "boom")
    assert record.attributes == child.attributes
    assert record.resource.attributes == {"service.name": "svc"}
    assert record.service_name == "svc"
    assert (record.scope.name, record.scope.version) == ("lib", "0.1.0")
    assert record.duration_ns == 1_000_000
    assert from_pb[0].parent_span_id is None


def test_spans_of_one_block_share_resource_and_scope() -> None:
    records, _ = _both([_spec(), _spec()])
    assert records[0].resource is records[1].resource
    assert records[0].scope is records[1].scope


def test_all_zero_parent_means_no_parent() -> None:
    spec = _spec(parent_span_id="0" * 16)
    from_pb, from_json = _both([spec])
    assert from_pb[0].parent_span_id is None
    assert from_json[0].parent_span_id is None


# ---------------------------------------------------------------- limits on values


def test_attribute_count_limit_drops_and_counts() -> None:
    attributes = {f"k{index}": index for index in range(12)}
    from_pb, from_json = _both([_spec(attributes=attributes)])
    for record in (from_pb[0], from_json[0]):
        assert record.attributes == {f"k{index}": index for index in range(8)}
        assert record.dropped_attributes_count == 4


def test_genai_keys_past_the_count_limit_are_kept() -> None:
    # As OpenInference writes a long conversation: messages first, usage last.
    messages = {f"llm.input_messages.{index}.message.content": "hi" for index in range(12)}
    usage = {
        "llm.token_count.prompt": 900,
        "llm.token_count.completion": 40,
        "openinference.span.kind": "LLM",
        "gen_ai.usage.input_tokens": 900,
    }
    from_pb, from_json = _both([_spec(attributes={**messages, **usage, "after": 1})])
    for record in (from_pb[0], from_json[0]):
        assert record.attributes == {**dict(list(messages.items())[:8]), **usage}
        assert record.dropped_attributes_count == 5  # four messages and "after"


def test_long_strings_are_truncated_and_nul_removed() -> None:
    spec = _spec(name="n\x00ame", attributes={"long": "x" * 100, "nul": "a\x00b"})
    from_pb, from_json = _both([spec])
    for record in (from_pb[0], from_json[0]):
        assert record.name == "name"
        assert record.attributes == {"long": "x" * 32, "nul": "ab"}


def test_special_doubles_are_kept_as_text() -> None:
    from_pb, _ = _both([_spec(attributes={"nan": float("nan"), "inf": float("inf")})])
    assert from_pb[0].attributes == {"nan": "NaN", "inf": "Infinity"}
    document = traces_json([_spec()])
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] = [
        {"key": "nan", "value": {"doubleValue": "NaN"}},
        {"key": "neg", "value": {"doubleValue": "-Infinity"}},
    ]
    (record,) = decode_traces_json(document, LIMITS).items
    assert record.attributes == {"nan": "NaN", "neg": "-Infinity"}


def test_bytes_are_base64_in_both() -> None:
    spec = _spec(attributes={"blob": b"\x00\x01\xfe"})
    (record,) = decode_traces_protobuf(traces_pb([spec]).SerializeToString(), LIMITS).items
    assert record.attributes == {"blob": "AAH+"}
    document = traces_json([_spec()])
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] = [{"key": "blob", "value": {"bytesValue": "AAH+"}}]
    (record,) = decode_traces_json(document, LIMITS).items
    assert record.attributes == {"blob": "AAH+"}


# ---------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"trace_id": "ab" * 15}, "traceId"),
        ({"trace_id": "0" * 32}, "traceId is all zeros"),
        ({"span_id": "0" * 16}, "spanId is all zeros"),
        ({"span_id": ""}, "spanId is missing"),
        ({"start_ns": 0}, "startTimeUnixNano is missing"),
        ({"end_ns": NOW - 2_000_000}, "endTimeUnixNano is before startTimeUnixNano"),
        ({"start_ns": NOW - 8 * DAY, "end_ns": NOW - 8 * DAY}, "7d retention"),
        ({"start_ns": NOW + 2 * DAY, "end_ns": NOW + 2 * DAY}, "future"),
        ({"end_ns": NOW + 2 * DAY}, "endTimeUnixNano"),
    ],
    ids=[
        "short trace id",
        "zero trace id",
        "zero span id",
        "no span id",
        "no start",
        "backwards",
        "too old",
        "too new",
        "end too new",
    ],
)
@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_invalid_span_is_rejected_alone(
    overrides: dict[str, Any], fragment: str, encoding: str
) -> None:
    good, bad = _spec(name="good"), _spec(name="bad", **overrides)
    if encoding == "protobuf":
        batch = decode_traces_protobuf(traces_pb([bad, good]).SerializeToString(), LIMITS)
    else:
        batch = decode_traces_json(traces_json([bad, good]), LIMITS)
    assert [record.name for record in batch.items] == ["good"]
    assert batch.rejected == 1
    assert fragment in batch.error_message()
    assert batch.error_message().startswith("span 'bad'")


def test_boundaries_of_the_time_window() -> None:
    oldest = _spec(start_ns=LIMITS.oldest_unix_nano, end_ns=LIMITS.oldest_unix_nano)
    newest = _spec(start_ns=LIMITS.newest_unix_nano, end_ns=LIMITS.newest_unix_nano)
    from_pb, _ = _both([oldest, newest])
    assert len(from_pb) == 2
    too_old = _spec(start_ns=LIMITS.oldest_unix_nano - 1, end_ns=LIMITS.oldest_unix_nano)
    batch = decode_traces_json(traces_json([too_old]), LIMITS)
    assert batch.rejected == 1


def test_invalid_resource_rejects_its_spans_only() -> None:
    good = traces_json([_spec(name="kept")])
    bad = traces_json([_spec(), _spec()])
    bad["resourceSpans"][0]["resource"]["attributes"].append({"value": {"stringValue": "x"}})
    document = {"resourceSpans": bad["resourceSpans"] + good["resourceSpans"]}
    batch = decode_traces_json(document, LIMITS)
    assert [record.name for record in batch.items] == ["kept"]
    assert batch.rejected == 2
    assert batch.messages[0].startswith("resource:")


def test_invalid_scope_rejects_its_spans_only() -> None:
    document = traces_json([_spec(), _spec()])
    document["resourceSpans"][0]["scopeSpans"][0]["scope"]["attributes"] = "nope"
    batch = decode_traces_json(document, LIMITS)
    assert (batch.items, batch.rejected) == ([], 2)
    assert batch.messages[0].startswith("scope:")


def test_error_message_shows_five_reasons_and_counts_the_rest() -> None:
    spans = [_spec(name=f"s{index}", span_id="0" * 16) for index in range(8)]
    batch = decode_traces_json(traces_json(spans), LIMITS)
    assert batch.rejected == 8
    message = batch.error_message()
    assert message.count("spanId is all zeros") == 5
    assert message.endswith("; and 3 more")


@pytest.mark.parametrize(
    "document",
    [
        [],
        "text",
        3,
        {"resourceSpans": {}},
        {"resourceSpans": ["x"]},
        {"resourceSpans": [{"scopeSpans": 1}]},
    ],
)
def test_malformed_documents(document: Any) -> None:
    with pytest.raises(MalformedPayload):
        decode_traces_json(document, LIMITS)


@pytest.mark.parametrize("body", [b"\x0a\x05abc", b"\xff\xff\xff", b"\x0a\x02\x0a\x80"])
def test_undecodable_protobuf(body: bytes) -> None:
    with pytest.raises(MalformedPayload) as raised:
        decode_traces_protobuf(body, LIMITS)
    assert "ExportTraceServiceRequest" in str(raised.value)


def test_empty_inputs_decode_to_nothing() -> None:
    assert decode_traces_protobuf(b"", LIMITS).items == []
    assert decode_traces_json({}, LIMITS).items == []
    assert decode_traces_json({"resourceSpans": None}, LIMITS).items == []


# ---------------------------------------------------------------- JSON value rules


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123", 123),
        (123, 123),
        (123.0, 123),
        ("-5", -5),
        (None, 0),
        ("", 0),
        (str(2**64 - 1), 2**64 - 1),
    ],
)
def test_int_json(value: Any, expected: int) -> None:
    assert int_json(value, "field") == expected


@pytest.mark.parametrize("value", [True, "12a", 1.5, [], {}, str(2**64), str(-(2**63) - 1)])
def test_int_json_refuses(value: Any) -> None:
    with pytest.raises(InvalidItem) as raised:
        int_json(value, "field")
    assert "field" in str(raised.value)


def test_int_json_bounds() -> None:
    assert int_json("7", "f", minimum=0, maximum=7) == 7
    with pytest.raises(InvalidItem):
        int_json("-1", "f", minimum=0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 0), (2, 2), ("2", 2), ("SPAN_KIND_SERVER", 2), ("SPAN_KIND_CONSUMER", 5)],
)
def test_enum_json(value: Any, expected: int) -> None:
    assert enum_json(value, "kind", SPAN_KINDS) == expected


@pytest.mark.parametrize("value", ["server", "SPAN_KIND_NOPE", 6, -1, "99", True, 1.0])
def test_enum_json_refuses(value: Any) -> None:
    with pytest.raises(InvalidItem):
        enum_json(value, "kind", SPAN_KINDS)


def test_id_json() -> None:
    assert id_json("ABCDEF0123456789", "spanId", 8, required=True) == bytes.fromhex(
        "abcdef0123456789"
    )
    assert id_json(None, "parentSpanId", 8, required=False) is None
    assert id_json("0" * 16, "parentSpanId", 8, required=False) is None
    for bad, fragment in (
        ("abc", "16 hex characters"),
        ("zz" * 8, "not hex"),
        ("q83vASNFZ4k=", "base64"),
        (12, "hex string"),
    ):
        with pytest.raises(InvalidItem) as raised:
            id_json(bad, "spanId", 8, required=True)
        assert fragment in str(raised.value)


def test_id_pb() -> None:
    assert id_pb(b"\x01" * 8, "spanId", 8, required=True) == b"\x01" * 8
    assert id_pb(b"", "parentSpanId", 8, required=False) is None
    with pytest.raises(InvalidItem, match="has 7 bytes"):
        id_pb(b"\x01" * 7, "spanId", 8, required=True)
    with pytest.raises(InvalidItem, match="missing"):
        id_pb(b"", "spanId", 8, required=True)


def test_snake_case_and_lenient_values() -> None:
    spec = _spec()
    document = {
        "resource_spans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": "plain"}]},
                "scope_spans": [
                    {
                        "scope": {"name": "lib"},
                        "spans": [
                            {
                                "trace_id": spec.trace_id,
                                "span_id": spec.span_id,
                                "name": "snake",
                                "start_time_unix_nano": spec.start_ns,
                                "end_time_unix_nano": str(spec.end_ns),
                                "attributes": [
                                    {"key": "i", "value": {"int_value": "3"}},
                                    {"key": "b", "value": {"bool_value": "true"}},
                                    {"key": "unknown", "value": {"futureValue": 1}},
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    (record,) = decode_traces_json(document, LIMITS).items
    assert record.service_name == "plain"
    assert record.attributes == {"i": 3, "b": True, "unknown": None}
    assert record.end_time_unix_nano == spec.end_ns
