"""Alert rules as validated documents: what a rule may ask, and why a bad one is refused.

A rule is a declarative query over one signal (no query language to inject into), a
condition, timing (`for`, `keep_firing_for`), severity, labels, annotations and channels.
`parse_rule` turns a request body into a `RuleSpec` or raises `InvalidRule` whose message
names the field and says what to send instead; the stored `spec` column is
`RuleSpec.document()`, so a stored rule always parses again.

Per signal (`SIGNAL_SCHEMAS`):
- spans: count, rate (per second), error_count, error_rate, avg / p50 / p90 / p95 / p99
  of `duration_ms` (avg also of a token or cost field), sum of a token or cost field;
  filters on service, name, kind, status, model, provider, tool, operation, category
  (request, llm, tool: the dashboards' definitions) and attributes.
- logs: count, rate; filters on service, level (minimum), q (full text) and attributes.
- metrics: every aggregation of the metrics query API over `metric`; attribute filters.
- errors: count (events), new_groups (groups first seen in the window); filters on
  service, type, fingerprint and attributes.
Every signal also has `absent`: the rule fires when nothing matched over the window (per
group_by group that had data in the day before the window, or once without group_by).

`group_by` names columns (per signal, `GROUP_COLUMNS`) or attribute keys, which are
looked up in the item's attributes, then its resource's (`user.id`, `session.id`, ...).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.domain.durations import duration_text, parse_duration_seconds
from app.domain.logs import LEVELS
from app.domain.metric_math import AGGREGATIONS as METRIC_AGGREGATIONS
from app.domain.metrics import METRIC_TYPES
from app.domain.records import SPAN_KIND_NAMES, STATUS_NAMES
from app.domain.templating import TemplateError, check_template

SIGNALS = ("spans", "logs", "metrics", "errors")
OPS = (">", ">=", "<", "<=", "==", "!=")
SEVERITIES = ("info", "warning", "critical")
SPAN_CATEGORIES = ("request", "llm", "tool")
SPAN_PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
# Numeric span fields: duration, and the GenAI columns promoted at ingest.
SPAN_FIELDS = (
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cost_usd",
)

MIN_WINDOW_S = 60.0
MAX_WINDOW_S = 31 * 86400.0
MAX_HOLD_S = 31 * 86400.0
MAX_GROUP_BY = 8
MAX_ATTRIBUTE_FILTERS = 16
MAX_LABELS = 32
MAX_CHANNELS = 16
MAX_NAME_CHARS = 200
MAX_TEXT_CHARS = 4096
RESERVED_LABELS = ("alertname",)
# Prometheus label names, plus dots so attribute keys (`user.id`) can be labels as sent.
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class SignalSchema:
    aggregations: tuple[str, ...]
    filters: tuple[str, ...]
    group_columns: tuple[str, ...]


SIGNAL_SCHEMAS: dict[str, SignalSchema] = {
    "spans": SignalSchema(
        aggregations=(
            "count",
            "rate",
            "error_count",
            "error_rate",
            "avg",
            *SPAN_PERCENTILES,
            "sum",
            "absent",
        ),
        filters=(
            "service",
            "name",
            "kind",
            "status",
            "model",
            "provider",
            "tool",
            "operation",
            "category",
            "attributes",
        ),
        group_columns=(
            "service",
            "name",
            "kind",
            "status",
            "model",
            "provider",
            "tool",
            "operation",
        ),
    ),
    "logs": SignalSchema(
        aggregations=("count", "rate", "absent"),
        filters=("service", "level", "q", "attributes"),
        group_columns=("service", "level"),
    ),
    "metrics": SignalSchema(
        aggregations=(*METRIC_AGGREGATIONS, "absent"),
        filters=("service", "attributes"),
        # Metric group_by keys are series attribute keys (`service.name` matches the
        # series' service), exactly as /api/v1/metrics/query groups.
        group_columns=(),
    ),
    "errors": SignalSchema(
        aggregations=("count", "new_groups", "absent"),
        filters=("service", "type", "fingerprint", "attributes"),
        group_columns=("fingerprint", "service", "type"),
    ),
    # Rules an SLO owns (burn-rate alerts, budget policy); made by the SLO code, never
    # accepted from the rules API. Their samples decide `active` themselves.
    "slo": SignalSchema(
        aggregations=("burn_rate", "budget_policy"),
        filters=("slo_id",),
        group_columns=(),
    ),
}
GROUP_COLUMNS = {signal: schema.group_columns for signal, schema in SIGNAL_SCHEMAS.items()}


class InvalidRule(ValueError):
    """A rule body that cannot be stored; the message names the field and the fix."""


def _clean_text(value: str, what: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    if len(value) > max_chars:
        raise ValueError(f"{what} is longer than {max_chars} characters")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Condition(_Strict):
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    def holds(self, value: float) -> bool:
        return holds(self.op, value, self.threshold)


def holds(op: str, value: float, threshold: float) -> bool:
    """`value op threshold`; NaN never satisfies a condition (as in PromQL comparisons)."""
    if math.isnan(value):
        return False
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    if op == "<=":
        return value <= threshold
    if op == "==":
        return value == threshold
    return value != threshold


class RuleQuery(_Strict):
    aggregation: str
    field: str | None = None
    metric: str | None = None
    # A metric name can hold series of several types; `type` picks one, as the query API's.
    type: str | None = None
    filters: dict[str, Any] = Field(default_factory=dict)
    window: str = "5m"
    group_by: list[str] = Field(default_factory=list)

    @property
    def window_s(self) -> float:
        return parse_duration_seconds(self.window)

    @property
    def attribute_filters(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.filters.get("attributes", {}).items()))

    def filter(self, name: str) -> Any:
        return self.filters.get(name)


class RuleSpec(_Strict):
    """A validated rule. Durations keep the text the user wrote; `*_s` give seconds."""

    name: str
    signal: str
    query: RuleQuery
    condition: Condition | None = None
    for_: str = Field("0s", alias="for")
    keep_firing_for: str = "0s"
    severity: Literal["info", "warning", "critical"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    channels: list[int] = Field(default_factory=list)
    enabled: bool = True

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    @property
    def for_s(self) -> float:
        return parse_duration_seconds(self.for_)

    @property
    def keep_firing_for_s(self) -> float:
        return parse_duration_seconds(self.keep_firing_for)

    @property
    def is_absent(self) -> bool:
        return self.query.aggregation == "absent"

    def document(self) -> dict[str, Any]:
        """The stored and returned form (JSON-ready; `for` spelled as in the API)."""
        return self.model_dump(mode="json", by_alias=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return _clean_text(value, "name", MAX_NAME_CHARS)

    @field_validator("signal")
    @classmethod
    def _signal(cls, value: str, info: ValidationInfo) -> str:
        if value == "slo" and (info.context or {}).get("internal"):
            return value
        if value not in SIGNALS:
            raise ValueError(f"{value!r} is not a signal; use one of: {', '.join(SIGNALS)}")
        return value

    @field_validator("for_", "keep_firing_for", mode="before")
    @classmethod
    def _hold(cls, value: Any) -> str:
        return duration_text(value, max_s=MAX_HOLD_S)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_LABELS:
            raise ValueError(f"at most {MAX_LABELS} labels")
        for name, text in value.items():
            if not LABEL_NAME.match(name):
                raise ValueError(
                    f"label name {name!r} is not accepted: start with a letter or _, then "
                    "letters, digits, _, . or -"
                )
            if name in RESERVED_LABELS:
                raise ValueError(f"label {name!r} is set by the collector (the rule's name)")
            _clean_text(text, f"label {name!r}")
            _template(text, f"label {name!r}")
        return value

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_LABELS:
            raise ValueError(f"at most {MAX_LABELS} annotations")
        for name, text in value.items():
            if not LABEL_NAME.match(name):
                raise ValueError(
                    f"annotation name {name!r} is not accepted: start with a letter or _, "
                    "then letters, digits, _, . or -"
                )
            _clean_text(text, f"annotation {name!r}")
            _template(text, f"annotation {name!r}")
        runbook = value.get("runbook_url")
        if runbook is not None and "{{" not in runbook and not re.match(r"^https?://", runbook):
            raise ValueError("annotation 'runbook_url' must be an http(s) URL")
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[int]) -> list[int]:
        if len(value) > MAX_CHANNELS:
            raise ValueError(f"at most {MAX_CHANNELS} channels")
        if any(not 1 <= channel_id < 2**63 for channel_id in value):
            raise ValueError("channel ids are positive integers (GET /api/v1/channels lists them)")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _query_fits_signal(self) -> RuleSpec:
        _check_query(self.signal, self.query)
        if self.signal == "slo":
            return self
        if self.is_absent:
            if self.condition is not None:
                raise ValueError(
                    "condition: an absent rule fires when nothing matched; leave condition out"
                )
        elif self.condition is None:
            raise ValueError('condition: required, e.g. {"op": ">", "threshold": 0.05}')
        return self


def _template(text: str, what: str) -> None:
    try:
        check_template(text)
    except TemplateError as error:
        raise ValueError(f"{what}: {error}") from None


class _QueryProblem(ValueError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"query.{where}: {message}")


def _check_query(signal: str, query: RuleQuery) -> None:
    schema = SIGNAL_SCHEMAS[signal]
    aggregation = query.aggregation
    if aggregation not in schema.aggregations:
        raise _QueryProblem(
            "aggregation",
            f"{aggregation!r} is not an aggregation of {signal}; use one of: "
            + ", ".join(schema.aggregations),
        )
    try:
        window_s = parse_duration_seconds(query.window)
    except ValueError as error:
        raise _QueryProblem("window", str(error)) from None
    if not MIN_WINDOW_S <= window_s <= MAX_WINDOW_S:
        raise _QueryProblem("window", "must be between 1m and 31d")
    _check_field(signal, query)
    if signal == "metrics":
        if not query.metric:
            raise _QueryProblem("metric", "required for a metrics rule: the metric's name")
        _clean_text(query.metric, "query.metric", 1024)
        if query.type is not None and query.type not in METRIC_TYPES:
            raise _QueryProblem(
                "type",
                f"{query.type!r} is not a metric type; use one of: {', '.join(METRIC_TYPES)}",
            )
    else:
        if query.metric is not None:
            raise _QueryProblem("metric", f"only metrics rules name a metric, not {signal}")
        if query.type is not None:
            raise _QueryProblem("type", f"only metrics rules take a type, not {signal}")
    _check_filters(signal, query.filters, schema)
    if len(query.group_by) > MAX_GROUP_BY:
        raise _QueryProblem("group_by", f"at most {MAX_GROUP_BY} keys")
    if len(set(query.group_by)) != len(query.group_by):
        raise _QueryProblem("group_by", "names a key twice")
    for key in query.group_by:
        if not isinstance(key, str) or not key or len(key) > 256 or _CONTROL.search(key):
            raise _QueryProblem("group_by", f"{key!r} is not a column or attribute key")


def _check_field(signal: str, query: RuleQuery) -> None:
    aggregation, field = query.aggregation, query.field
    if signal != "spans":
        if field is not None:
            raise _QueryProblem("field", f"{signal} rules take no field")
        return
    if aggregation in SPAN_PERCENTILES:
        if field not in (None, "duration_ms"):
            raise _QueryProblem(
                "field", f"{aggregation} is computed over duration_ms only, not {field!r}"
            )
        query.field = "duration_ms"
    elif aggregation == "avg":
        query.field = field or "duration_ms"
        if query.field not in SPAN_FIELDS:
            raise _QueryProblem(
                "field", f"{field!r} is not a span field; use one of: {', '.join(SPAN_FIELDS)}"
            )
    elif aggregation == "sum":
        if field is None:
            raise _QueryProblem(
                "field",
                "sum needs a field: input_tokens, output_tokens, total_tokens, "
                "cache_read_tokens or cost_usd",
            )
        if field not in SPAN_FIELDS or field == "duration_ms":
            raise _QueryProblem(
                "field",
                f"{field!r} cannot be summed; use input_tokens, output_tokens, total_tokens, "
                "cache_read_tokens or cost_usd",
            )
    elif field is not None:
        raise _QueryProblem("field", f"{aggregation} takes no field")


_FILTER_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("spans", "kind"): SPAN_KIND_NAMES[1:],
    ("spans", "status"): STATUS_NAMES,
    ("spans", "category"): SPAN_CATEGORIES,
    ("logs", "level"): LEVELS,
}


def _check_filters(signal: str, filters: dict[str, Any], schema: SignalSchema) -> None:
    for name, value in filters.items():
        if name not in schema.filters:
            raise _QueryProblem(
                f"filters.{name}",
                f"not a filter of {signal}; use: {', '.join(schema.filters)}",
            )
        if name == "attributes":
            if not isinstance(value, dict):
                raise _QueryProblem(
                    "filters.attributes", 'must be an object of key: value, e.g. {"user.id": "42"}'
                )
            if len(value) > MAX_ATTRIBUTE_FILTERS:
                raise _QueryProblem(
                    "filters.attributes", f"at most {MAX_ATTRIBUTE_FILTERS} attributes"
                )
            for key, item in value.items():
                if not key or len(key) > 256 or _CONTROL.search(key):
                    raise _QueryProblem("filters.attributes", f"{key!r} is not an attribute key")
                if isinstance(item, bool):
                    value[key] = "true" if item else "false"
                elif isinstance(item, int | float) and math.isfinite(item):
                    value[key] = f"{item:g}" if isinstance(item, float) else str(item)
                elif not isinstance(item, str):
                    raise _QueryProblem(
                        f"filters.attributes.{key}", "must be a string, number or boolean"
                    )
                _clean_text(value[key], f"query.filters.attributes.{key}", 1024)
            continue
        if signal == "slo" and isinstance(value, int):
            continue
        if not isinstance(value, str) or not value:
            raise _QueryProblem(f"filters.{name}", "must be a non-empty string")
        _clean_text(value, f"query.filters.{name}", 1024)
        choices = _FILTER_CHOICES.get((signal, name))
        if choices and value not in choices:
            raise _QueryProblem(
                f"filters.{name}", f"{value!r} is not accepted; use one of: {', '.join(choices)}"
            )


def describe(error: ValidationError) -> str:
    """One line per problem: `field.path: what is wrong`."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()))
        where = where.replace("for_", "for")
        message = str(item.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        if item.get("type") == "extra_forbidden":
            message = "unknown field"
        elif item.get("type") == "missing":
            message = "required"
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems) or "invalid rule"


def parse_rule(body: Any, *, internal: bool = False) -> RuleSpec:
    """A request body (dict) → RuleSpec, or InvalidRule naming the field and why.

    `internal` admits the `slo` signal, for the rules an SLO owns (stored specs of such
    rules are parsed with it; request bodies never are).
    """
    if not isinstance(body, dict):
        raise InvalidRule("the body must be a JSON object describing the rule")
    try:
        return RuleSpec.model_validate(body, context={"internal": internal})
    except ValidationError as error:
        raise InvalidRule(describe(error)) from None


@dataclass(frozen=True, slots=True)
class RuleSample:
    """One group's value from a rule's query at one evaluation.

    `labels` are the group_by values (empty without group_by). `active` is None for plain
    rules (the evaluator applies the condition); rules whose condition is not a single
    comparison (SLO burn rates) decide it themselves and may add labels and annotations.
    """

    labels: dict[str, str]
    value: float
    active: bool | None = None
    annotations: dict[str, str] | None = None
