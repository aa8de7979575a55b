"""The alert rules every project gets: a new error group, and error-group spikes.

Each is a plain rule body (validated by `parse_rule` like any other) stored with
`alert_rules.builtin` set to its key. They are listed by the API with `builtin: true`,
can be disabled and have their channels, labels and annotations changed, but are never
deleted, and their query, condition and timing stay as defined here.

The error samples of a rule grouped by `fingerprint` carry the group's `service` and
`type` as labels and its `message` and `culprit` as annotations
(app/query/error_samples.py), so the templates below can name them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from app.domain.alert_rules import RuleSpec, parse_rule

# The fields of a built-in rule that its project may change.
EDITABLE_FIELDS = ("enabled", "channels", "labels", "annotations")

_LINK = "{{ $externalURL }}/api/v1/errors/{{ $labels.fingerprint }}"


def _spike(name: str, window: str, threshold: int, severity: str, wording: str) -> dict[str, Any]:
    """An error group with more than `threshold` events in `window`."""
    return {
        "name": name,
        "signal": "errors",
        "query": {"aggregation": "count", "window": window, "group_by": ["fingerprint"]},
        "condition": {"op": ">", "threshold": threshold},
        "for": "0s",
        "severity": severity,
        "annotations": {
            "summary": "{{ $labels.type }} in {{ $labels.service }}: {{ $value }} events "
            f"in the last {wording}",
            "link": _LINK,
        },
    }


BUILTIN_RULES: dict[str, dict[str, Any]] = {
    "error_new_group": {
        "name": "NewErrorGroup",
        "signal": "errors",
        # A new group is counted while its first event is in the window, so the alert
        # fires at the first evaluation that sees it and resolves 10 minutes later.
        "query": {"aggregation": "new_groups", "window": "10m", "group_by": ["fingerprint"]},
        "condition": {"op": ">", "threshold": 0},
        "for": "0s",
        "severity": "info",
        "annotations": {
            "summary": "New error in {{ $labels.service }}: {{ $labels.type }}",
            "link": _LINK,
        },
    },
    "error_spike_5m": _spike("ErrorSpike5m", "5m", 10, "warning", "5 minutes"),
    "error_spike_1h": _spike("ErrorSpike1h", "1h", 50, "critical", "hour"),
}


@lru_cache(maxsize=1)
def builtin_specs() -> tuple[tuple[str, RuleSpec], ...]:
    """(key, validated spec) of every built-in rule."""
    return tuple((key, parse_rule(body)) for key, body in BUILTIN_RULES.items())


def locked_field_changed(stored: dict[str, Any], proposed: dict[str, Any]) -> str | None:
    """The first field a built-in rule may not change that `proposed` changes, else None.

    Both are rule documents (`RuleSpec.document()`).
    """
    for name in sorted(stored.keys() | proposed.keys()):
        if name in EDITABLE_FIELDS:
            continue
        if stored.get(name) != proposed.get(name):
            return name
    return None
