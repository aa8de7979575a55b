"""Plain records that decoding produces and the writer stores: spans, and what they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.domain.genai import GenAIUsage

# Span kinds and status codes, numbered as in the OTLP protobuf enums.
SPAN_KIND_NAMES = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_NAMES = ("unset", "ok", "error")
STATUS_ERROR = 2
KIND_SERVER = 2


@dataclass(slots=True)
class Resource:
    """Who sent the data; shared by every item of one resource block."""

    attributes: dict[str, Any]
    dropped_attributes_count: int = 0
    schema_url: str = ""

    @property
    def service_name(self) -> str:
        name = self.attributes.get("service.name")
        return name if isinstance(name, str) and name else "unknown_service"


@dataclass(slots=True)
class Scope:
    """The instrumentation scope (library) that produced the data."""

    name: str = ""
    version: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    schema_url: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "attributes": self.attributes,
            "schema_url": self.schema_url,
        }


@dataclass(slots=True)
class SpanRecord:
    """One span as stored. Times are Unix nanoseconds; ids are raw bytes."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    name: str
    kind: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Any]
    resource: Resource
    scope: Scope
    status_code: int = 0
    status_message: str = ""
    trace_state: str = ""
    flags: int = 0
    # A list of events (links), or the shared empty tuple when there are none.
    events: Sequence[dict[str, Any]] = ()
    links: Sequence[dict[str, Any]] = ()
    dropped_attributes_count: int = 0
    dropped_events_count: int = 0
    dropped_links_count: int = 0
    # Filled by enrichment: the GenAI usage the attributes describe, and its cost.
    genai: GenAIUsage | None = None
    cost_usd: float | None = None

    @property
    def service_name(self) -> str:
        return self.resource.service_name

    @property
    def duration_ns(self) -> int:
        return self.end_time_unix_nano - self.start_time_unix_nano


@dataclass(slots=True)
class DecodedBatch:
    """What a decoder hands on: the valid items and a count and sample of the rejected ones."""

    items: list[Any]
    rejected: int = 0
    messages: list[str] = field(default_factory=list)
    taken: int = 0  # items handed on by `take`

    MAX_MESSAGES = 5

    @property
    def accepted(self) -> int:
        """Valid items: those still here and those handed on to be stored."""
        return self.taken + len(self.items)

    def take(self) -> list[Any]:
        """Hand the items on (to be stored), keeping their count: the batch no longer
        holds them, so they are freed once their rows are built rather than staying alive
        while the request waits for its commit (a quarter of what a waiting span holds,
        docs/benchmarks.md)."""
        items, self.items = self.items, []
        self.taken += len(items)
        return items

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.messages) < self.MAX_MESSAGES:
            self.messages.append(message)

    def reject_many(self, count: int, message: str) -> None:
        """`count` items rejected for one reason (say, the resource they share)."""
        if count:
            self.rejected += count - 1
            self.reject(message)

    def error_message(self) -> str:
        """One line for OTLP partial success: the first reasons, and how many more."""
        if not self.rejected:
            return ""
        shown = "; ".join(self.messages)
        hidden = self.rejected - len(self.messages)
        return f"{shown}; and {hidden} more" if hidden > 0 else shown
