"""Property: whatever message arrives at an OTLP/gRPC Export method, the answer is OK with a
response (partial success when items were refused) or INVALID_ARGUMENT, never INTERNAL or
UNKNOWN (app/grpc/otlp.py); the random and mutated batches are the HTTP fuzz suite's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from api.fuzz.answers import OTLP_RESPONSES
from api.fuzz.conftest import budget
from api.fuzz.otlp import SIGNALS, batches, protobuf_body
from api.fuzz.values import mutated_bytes
from hypothesis import given
from hypothesis import strategies as st
from support import Collector

SERVICES = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}


@pytest.fixture
def channel(collector: Collector) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(collector.grpc_target) as opened:
        yield opened


def send(channel: grpc.Channel, key: str, signal: str, body: bytes, gzip: bool = False) -> None:
    export = channel.unary_unary(
        SERVICES[signal],
        request_serializer=None,
        response_deserializer=OTLP_RESPONSES[signal].FromString,
    )
    compression = grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression
    try:
        export(body, metadata=(("x-api-key", key),), compression=compression, timeout=60)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
        assert error.details()


@pytest.mark.parametrize("signal", SIGNALS)
def test_random_protobuf_batches_over_grpc(
    channel: grpc.Channel, key: str, examples: int, signal: str
) -> None:
    @budget(examples)
    @given(batch=batches(signal, pb=True), gzip=st.booleans())
    def run(batch: dict[str, Any], gzip: bool) -> None:
        send(channel, key, signal, protobuf_body(signal, batch), gzip)

    run()


@pytest.mark.parametrize("signal", SIGNALS)
def test_mutated_protobuf_batches_over_grpc(
    channel: grpc.Channel, key: str, examples: int, signal: str
) -> None:
    @budget(examples)
    @given(data=st.data(), batch=batches(signal, pb=True))
    def run(data: st.DataObject, batch: dict[str, Any]) -> None:
        send(channel, key, signal, data.draw(mutated_bytes(protobuf_body(signal, batch))))

    run()


@pytest.mark.parametrize("signal", SIGNALS)
def test_random_bytes_over_grpc(
    channel: grpc.Channel, key: str, examples: int, signal: str
) -> None:
    @budget(examples)
    @given(body=st.binary(max_size=4096))
    def run(body: bytes) -> None:
        send(channel, key, signal, body)

    run()
