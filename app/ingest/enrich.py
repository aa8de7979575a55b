"""Enrichment at ingest: redaction of sensitive attributes and GenAI usage with cost.

Runs on decoded records before they become rows. Cost is fixed here, at ingest, so a
later change to the price table never rewrites history.
"""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.domain.genai import extract_genai
from app.domain.pricing import PriceTable
from app.domain.records import Resource, SpanRecord
from app.domain.redaction import Redactor


class Enricher:
    def __init__(self, redactor: Redactor, prices: PriceTable) -> None:
        self.redactor = redactor
        self.prices = prices

    @classmethod
    def from_settings(cls, settings: Settings) -> Enricher:
        # An operator's price file replaces the built-in table as a whole.
        prices = (
            PriceTable.from_file(settings.prices_file)
            if settings.prices_file
            else PriceTable.builtin()
        )
        return cls(Redactor(settings.redact_keys), prices)

    def redact(self, attributes: dict[str, Any]) -> dict[str, Any]:
        return self.redactor.redact(attributes) if attributes else attributes

    def resource(self, resource: Resource) -> None:
        resource.attributes = self.redact(resource.attributes)

    def spans(self, spans: list[SpanRecord], seen_resources: set[int] | None = None) -> None:
        """Enrich `spans` in place; `seen_resources` (ids) carries over between calls on
        parts of one batch, so that a shared resource is redacted once."""
        if seen_resources is None:
            seen_resources = set()
        for span in spans:
            if id(span.resource) not in seen_resources:
                seen_resources.add(id(span.resource))
                self.resource(span.resource)
            # GenAI fields are read before redaction: none of them is a secret.
            usage = extract_genai(span.attributes)
            if usage is not None:
                span.genai = usage
                span.cost_usd = self.prices.cost_usd(usage)
            span.attributes = self.redact(span.attributes)
            for event in span.events:
                event["attributes"] = self.redact(event["attributes"])
            for link in span.links:
                link["attributes"] = self.redact(link["attributes"])
