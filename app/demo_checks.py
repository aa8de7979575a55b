"""What `telemetry-collector demo` checks: the collector is ready, the key may ingest, and
every export it then makes succeeded; each failure becomes one message saying what to do."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

CREATE_KEY = (
    "create one with `telemetry-collector keys create --project demo --scope ingest "
    "--scope read` and pass it with --key or TELEMETRY_API_KEY (or run `make demo`, "
    "which creates one)"
)


class DemoError(Exception):
    """The demo cannot run, or did not deliver everything; the message says why."""


def _message(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:300]
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        if "message" in document:  # OTLP's google.rpc.Status in JSON
            return str(document["message"])
        if "checks" in document:  # /readyz
            return json.dumps(document["checks"])
    return json.dumps(document)[:300]


def _request(url: str, headers: dict[str, str], body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http(s) URL
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def check_collector(url: str, key: str | None) -> None:
    """Raise DemoError unless `url` answers /readyz and accepts an export with `key`."""
    if not url.startswith(("http://", "https://")):
        raise DemoError(f"--url {url!r} must start with http:// or https://")
    try:
        status, body = _request(f"{url}/readyz", {})
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DemoError(
            f"cannot reach the collector at {url} ({reason}): start it with `make run` (or "
            "`telemetry-collector serve`), or point --url at it; the default port is "
            "TELEMETRY_PORT's (4318)"
        ) from None
    if status != 200:
        raise DemoError(f"the collector at {url} is not ready ({status}): {_message(body)}")
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    # An empty export: it stores nothing, but is authenticated like a real one.
    status, body = _request(f"{url}/v1/traces", headers, b"{}")
    if status == 401:
        given = "the collector refused the key" if key else "no API key given"
        raise DemoError(f"{given} ({_message(body)}): {CREATE_KEY}")
    if status == 403:
        raise DemoError(f"the key cannot send data ({_message(body)}): {CREATE_KEY}")
    if status != 200:
        raise DemoError(f"the collector refused a test export ({status}): {_message(body)}")


@dataclass
class ExportTally:
    """Exports the SDK made and how many failed, per signal."""

    made: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)

    def record(self, signal: str, result: Any) -> Any:
        self.made[signal] = self.made.get(signal, 0) + 1
        if getattr(result, "name", "") != "SUCCESS":
            self.failed[signal] = self.failed.get(signal, 0) + 1
        return result

    def check(self) -> None:
        if self.failed:
            failed = ", ".join(
                f"{count} of {self.made[signal]} {signal}" for signal, count in self.failed.items()
            )
            raise DemoError(
                f"exports failed: {failed} (the exporter's warnings above say why); "
                "the collector stored only what it acknowledged"
            )


class _Counted:
    """Mixed into an OTLP exporter: every export's result goes to the tally."""

    def __init__(self, tally: ExportTally, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tally = tally


class CountedSpanExporter(_Counted, OTLPSpanExporter):
    def export(self, spans: Any) -> Any:
        return self.tally.record("span exports", super().export(spans))


class CountedLogExporter(_Counted, OTLPLogExporter):
    def export(self, batch: Any) -> Any:
        return self.tally.record("log exports", super().export(batch))


class CountedMetricExporter(_Counted, OTLPMetricExporter):
    def export(self, metrics_data: Any, timeout_millis: float | None = 10000, **kwargs: Any) -> Any:
        result = super().export(metrics_data, timeout_millis, **kwargs)
        return self.tally.record("metric exports", result)
