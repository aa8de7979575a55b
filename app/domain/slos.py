"""SLO definitions as validated documents: what an SLO may say, and why a bad one is refused.

An SLO names a service and an SLI over the spans that count as events, an objective and a
rolling window; `parse_slo` turns a request body into an `SloSpec` or raises `InvalidSlo`
whose message names the field (`objective: must be above 0 and below 100`). The stored
`slos.spec` column is `SloSpec.document()`, so a stored SLO always parses again.

- `sli.type`: `availability` (good = no error status) or `latency` (good = duration at or
  below `sli.threshold_ms`, whatever the status; required for latency, refused otherwise).
- `sli.filters`: which spans are events. `category` is `request` by default (a SERVER or
  root span: the dashboards' definition), `llm` / `tool` (model calls, tool executions,
  as the dashboards count them) or `all` (every span of the service); then `name`,
  `kind`, `model`, `provider`, `tool`, `operation` (equality) and `attributes` (key:
  value, matched in the span's attributes or its resource's).
- `objective`: a percentage strictly between 0 and 100 (99.9). The error budget is
  B = 1 - objective/100 of the window's events.
- `window`: the rolling window, whole minutes from 1d to 90d (default 30d). A day is the
  shortest window whose budget means anything for a deploy decision (and the longest
  burn-rate alert window fits in it); a quarter is the longest window teams report on, and
  bounds what is kept per SLO (one row per minute with traffic) and what a status read sums.
- `policy.warn_below`: the share of budget remaining under which the policy says `warn`
  (default 0.25; 0 never warns). `freeze` is an exhausted budget (remaining <= 0).
- `alerting`: `min_events` in an alert's long window before it may fire (default 100, the
  low-traffic guard: below 100 events one failure is over 1% of the window, a page on
  noise), the channels to notify and whether the SLO's alert rules are enabled.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from app.domain.alert_rules import MAX_CHANNELS, RuleSpec, describe, parse_rule
from app.domain.durations import parse_duration_seconds

MIN_WINDOW_S = 86_400
MAX_WINDOW_S = 90 * 86_400
DEFAULT_WINDOW = "30d"
DEFAULT_WARN_BELOW = 0.25
DEFAULT_MIN_EVENTS = 100
# Owned rule names are "SLOBudgetPolicy:<name>" and must fit the rules' 200 characters.
MAX_NAME_CHARS = 180
MAX_TEXT_CHARS = 1024
MAX_DESCRIPTION_CHARS = 4096
MAX_ATTRIBUTE_FILTERS = 16
MAX_THRESHOLD_MS = 86_400_000.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidSlo(ValueError):
    """An SLO body that cannot be stored; the message names the field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _text(value: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    if not value:
        raise ValueError("must not be empty")
    if len(value) > max_chars:
        raise ValueError(f"must be at most {max_chars} characters")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


class SliFilters(_Strict):
    category: Literal["request", "llm", "tool", "all"] = "request"
    name: str | None = None
    kind: Literal["internal", "server", "client", "producer", "consumer"] | None = None
    model: str | None = None
    provider: str | None = None
    tool: str | None = None
    operation: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)

    @field_validator("name", "model", "provider", "tool", "operation")
    @classmethod
    def _equality(cls, value: str | None) -> str | None:
        return None if value is None else _text(value)

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise ValueError('must be an object of key: value, e.g. {"env": "prod"}')
        if len(value) > MAX_ATTRIBUTE_FILTERS:
            raise ValueError(f"at most {MAX_ATTRIBUTE_FILTERS} attributes")
        cleaned = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key or len(key) > 256 or _CONTROL.search(key):
                raise ValueError(f"{key!r} is not an attribute key")
            if isinstance(item, bool):
                item = "true" if item else "false"
            elif isinstance(item, int | float) and math.isfinite(item):
                item = f"{item:g}" if isinstance(item, float) else str(item)
            elif not isinstance(item, str):
                raise ValueError(f"{key}: must be a string, number or boolean")
            if len(item) > MAX_TEXT_CHARS:
                raise ValueError(f"{key}: must be at most {MAX_TEXT_CHARS} characters")
            cleaned[key] = item
        return cleaned


class Sli(_Strict):
    type: Literal["availability", "latency"]
    filters: SliFilters = Field(default_factory=SliFilters)
    threshold_ms: float | None = None

    @field_validator("threshold_ms", mode="before")
    @classmethod
    def _threshold(cls, value: Any) -> float | None:
        if value is None:
            return None
        number = _number(value)
        if not 0 < number <= MAX_THRESHOLD_MS:
            raise ValueError("must be above 0 and at most 86400000 (a day)")
        return number

    def problem(self) -> str | None:
        """Why the threshold does not fit the type (checked by parse_slo, which can name
        the field `sli.threshold_ms`; a model validator could only name `sli`)."""
        if self.type == "latency" and self.threshold_ms is None:
            return (
                "sli.threshold_ms: required for a latency SLI: an event is good when its "
                "duration is at or below it, e.g. 2000"
            )
        if self.type == "availability" and self.threshold_ms is not None:
            return (
                "sli.threshold_ms: only latency SLIs take a threshold; leave it out or use "
                '"type": "latency"'
            )
        return None


class Policy(_Strict):
    warn_below: float = DEFAULT_WARN_BELOW

    @field_validator("warn_below", mode="before")
    @classmethod
    def _share(cls, value: Any) -> float:
        number = _number(value)
        if not 0 <= number < 1:
            raise ValueError("must be a share of the budget from 0 to below 1, e.g. 0.25")
        return number


class Alerting(_Strict):
    min_events: int = DEFAULT_MIN_EVENTS
    channels: list[int] = Field(default_factory=list)
    enabled: bool = True

    @field_validator("min_events", mode="before")
    @classmethod
    def _min_events(cls, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("must be a whole number of events, 0 or more (0: no guard)")
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[int]) -> list[int]:
        if len(value) > MAX_CHANNELS:
            raise ValueError(f"at most {MAX_CHANNELS} channels")
        if any(not 0 < channel < 2**63 for channel in value):
            raise ValueError("must be channel ids (positive integers)")
        return list(dict.fromkeys(value))


class SloSpec(_Strict):
    """A validated SLO. `window` keeps the text the user wrote; `window_s` gives seconds."""

    name: str
    service: str
    sli: Sli
    objective: float
    window: str = DEFAULT_WINDOW
    policy: Policy = Field(default_factory=Policy)
    alerting: Alerting = Field(default_factory=Alerting)
    description: str = ""

    @property
    def window_s(self) -> int:
        return int(parse_duration_seconds(self.window))

    def document(self) -> dict[str, Any]:
        """The stored and returned form (JSON-ready; unset filters left out)."""
        document = self.model_dump(mode="json", exclude_none=True)
        if not document["sli"]["filters"]["attributes"]:
            del document["sli"]["filters"]["attributes"]
        return document

    def counts_differently(self, other: SloSpec) -> bool:
        """Whether `other` counts other events as good or total (stored counts are void)."""
        return (self.service, self.sli) != (other.service, other.sli)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _text(value, MAX_NAME_CHARS)

    @field_validator("service")
    @classmethod
    def _service(cls, value: str) -> str:
        return _text(value)

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        if len(value) > MAX_DESCRIPTION_CHARS:
            raise ValueError(f"must be at most {MAX_DESCRIPTION_CHARS} characters")
        return value

    @field_validator("objective", mode="before")
    @classmethod
    def _objective(cls, value: Any) -> float:
        number = _number(value)
        if not 0 < number < 100:
            raise ValueError("must be above 0 and below 100 (a percentage, e.g. 99.9)")
        return number

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a duration such as 7d, 28d or 30d")
        seconds = parse_duration_seconds(value)
        if seconds % 60:
            raise ValueError("must be a whole number of minutes, e.g. 28d")
        if not MIN_WINDOW_S <= seconds <= MAX_WINDOW_S:
            raise ValueError("must be from 1d to 90d, e.g. 7d, 28d or 30d")
        return value.strip()


def parse_slo(body: Any) -> SloSpec:
    """A request body (dict) → SloSpec, or InvalidSlo naming the field and why."""
    if not isinstance(body, dict):
        raise InvalidSlo("the body must be a JSON object describing the SLO")
    try:
        spec = SloSpec.model_validate(body)
    except ValidationError as error:
        raise InvalidSlo(describe(error)) from None
    problem = spec.sli.problem()
    if problem:
        raise InvalidSlo(problem)
    return spec


# The alert rules each SLO owns (alert_rules.builtin), kept in step with it by the store.
BURN_RATE_RULE = "slo_burn_rate"
BUDGET_POLICY_RULE = "slo_budget_policy"
# What their alerts are called (sample labels carry it; API.md fixes SLOBurnRate).
BURN_RATE_ALERT = "SLOBurnRate"
BUDGET_POLICY_ALERT = "SLOBudgetPolicy"


def owned_rules(spec: SloSpec, slo_id: int) -> dict[str, RuleSpec]:
    """The SLO's burn-rate and budget-policy rules (signal `slo`), by builtin kind.

    Rule names are unique per project, so each carries the SLO's name; the alerts' own
    `alertname` comes from the samples (app/workers/slo_alerts.py).
    """
    common = {
        "signal": "slo",
        "channels": spec.alerting.channels,
        "enabled": spec.alerting.enabled,
    }
    burn_rate = {
        **common,
        "name": f"{BURN_RATE_ALERT}:{spec.name}",
        "query": {"aggregation": "burn_rate", "filters": {"slo_id": slo_id}, "window": "3d"},
        "severity": "critical",
        "annotations": {
            "summary": "SLO {{ $labels.slo }} burns its error budget too fast "
            "({{ $labels.long_window }} and {{ $labels.short_window }} windows)",
        },
    }
    budget_policy = {
        **common,
        "name": f"{BUDGET_POLICY_ALERT}:{spec.name}",
        "query": {"aggregation": "budget_policy", "filters": {"slo_id": slo_id}, "window": "1m"},
        "severity": "warning",
        "annotations": {
            "summary": "SLO {{ $labels.slo }}: error budget policy is {{ $labels.policy }}",
        },
    }
    return {
        BURN_RATE_RULE: parse_rule(burn_rate, internal=True),
        BUDGET_POLICY_RULE: parse_rule(budget_policy, internal=True),
    }
