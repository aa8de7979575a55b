"""gRPC status answers as the OTLP spec asks: a code, a message, and RetryInfo to back off.

The rich status travels as a serialized google.rpc.Status in the `grpc-status-details-bin`
trailer (the gRPC convention: grpcio-status, and the Go and Java OTLP exporters and the
OpenTelemetry Collector read it), its code and message the same as the call's. Retryable
answers (UNAVAILABLE) carry a google.rpc.RetryInfo with the delay a client should wait, as
Retry-After does over HTTP; the same RetryInfo also goes alone in a
`google.rpc.retryinfo-bin` trailer, which is where the Python SDK's exporter looks for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

DETAILS_KEY = "grpc-status-details-bin"
RETRY_INFO_KEY = "google.rpc.retryinfo-bin"
# Longest message sent in the status (the grpc-message header): the decoders' messages
# are short, this only keeps a pathological one from growing the trailers.
_MAX_MESSAGE_CHARS = 1000


@dataclass(frozen=True, slots=True)
class GrpcFailure:
    """An answer other than OK: what `context.abort` is called with."""

    code: grpc.StatusCode
    message: str
    retry_after_s: int | None = None

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        """The google.rpc.Status trailer (with RetryInfo when the call may be retried)."""
        status = status_pb2.Status(code=self.code.value[0], message=self.details())
        if self.retry_after_s is None:
            return ((DETAILS_KEY, status.SerializeToString()),)
        retry = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=self.retry_after_s)
        )
        detail = any_pb2.Any()
        detail.Pack(retry)
        status.details.append(detail)
        return (
            (DETAILS_KEY, status.SerializeToString()),
            (RETRY_INFO_KEY, retry.SerializeToString()),
        )

    def details(self) -> str:
        return self.message[:_MAX_MESSAGE_CHARS]


def retry_info(trailing_metadata: object) -> error_details_pb2.RetryInfo | None:
    """The RetryInfo of a status trailer, if any (what clients do; used by the tests)."""
    for key, value in trailing_metadata or ():  # type: ignore[attr-defined]
        if key != DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return info
    return None
