"""Admission of ingest requests against a per-process memory budget, before any work.

Under overload the expensive part of a request is what happens after its body is read:
decoding, enrichment, row building. Refusing only when the writer's queue is full means a
refused request has already cost as much as an accepted one, so accepted throughput falls
as load rises. Instead every ingest request reserves an estimate of the memory it will
hold, from the moment its body is read until it is answered, and is refused (503 +
Retry-After) as soon as the reservation does not fit: before its body is read when it
declares a Content-Length, chunk by chunk otherwise, and after decompression for what
decompression adds. Holding the reservation until the answer means that requests waiting
for a slow database keep their share, so the budget also bounds what waits for the writer.

The estimate is `wire bytes + DECODED_BYTES_PER_BYTE × payload bytes` (the payload is the
body after gzip/deflate). The factor was measured with tracemalloc on realistic protobuf
span batches (records plus rows are 7.9 times the protobuf body; the parsed protobuf
message itself is allocated outside Python's allocator), rounded up.
"""

from __future__ import annotations

from app.telemetry import INGEST_INFLIGHT_BYTES

DECODED_BYTES_PER_BYTE = 10


class Overloaded(Exception):
    """The request does not fit in the in-flight budget now; the client should retry later."""


class Admission:
    """A byte budget shared by the ingest requests of one process (one event loop).

    A request larger than the whole budget is still admitted when nothing else is in
    flight, so that no valid request is refused forever.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.in_flight = 0

    def ticket(self) -> Ticket:
        return Ticket(self)

    def _reserve(self, amount: int) -> None:
        if self.in_flight and self.in_flight + amount > self.max_bytes:
            raise Overloaded(
                f"the collector holds {self.in_flight} bytes of requests in flight "
                f"(limit {self.max_bytes}); retry shortly"
            )
        self.in_flight += amount
        INGEST_INFLIGHT_BYTES.inc(amount)

    def _release(self, amount: int) -> None:
        self.in_flight -= amount
        INGEST_INFLIGHT_BYTES.dec(amount)


class Ticket:
    """One request's reservations; released together when the request is answered."""

    __slots__ = ("_admission", "held")

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self.held = 0

    def reserve(self, amount: int) -> None:
        """Add `amount` bytes to this request's reservation, or raise `Overloaded`."""
        if amount <= 0:
            return
        self._admission._reserve(amount)
        self.held += amount

    def release(self) -> None:
        self._admission._release(self.held)
        self.held = 0

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
