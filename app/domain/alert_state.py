"""The alert state machine, as Prometheus runs it: inactive → pending → firing → resolved.

One alert instance exists per rule and label set. `step` moves one instance through one
evaluation; it is a pure function of the stored instance, whether the rule's condition
holds for its label set now, and the evaluation time:

- condition true, no instance: a new one, `pending` with `active_at = now` — or `firing`
  at once when `for` is 0 (Prometheus promotes in the same evaluation).
- pending and `now - active_at >= for`: `firing`, `fired_at = now`. A late evaluation
  fires as soon as it runs; a clock that jumped backwards (now < active_at) keeps waiting.
- condition false while pending: the instance is dropped, and nothing is notified.
- condition false while firing: resolved, unless `keep_firing_for` holds it: the first
  clear evaluation sets `keep_firing_since`, and the alert resolves once
  `now - keep_firing_since >= keep_firing_for`; the condition coming back clears it.

`fingerprint` is Prometheus' and Alertmanager's label-set fingerprint (FNV-1a 64 over
sorted names and values), so the same alert has the same id here and in Alertmanager.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"
STATES = (PENDING, FIRING, RESOLVED)

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
_SEPARATOR = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """16 lowercase hex digits, equal to Alertmanager's fingerprint of the same labels."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                value = ((value ^ byte) * _FNV_PRIME) & _MASK
            value = ((value ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{value:016x}"


@dataclass(frozen=True, slots=True)
class Instance:
    """A live (pending or firing) alert as stored, or as it is after a step."""

    state: str
    active_at: datetime
    value: float
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    keep_firing_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """The instance after an evaluation and what happened to it.

    `instance` is None when the alert is gone (dropped, or never existed); a resolved
    instance is returned with state `resolved`. `event` is `pending`, `firing`,
    `resolved`, `dropped`, or None when the state did not change.
    """

    instance: Instance | None
    event: str | None


def step(
    current: Instance | None,
    *,
    active: bool,
    value: float,
    now: datetime,
    for_s: float,
    keep_firing_for_s: float = 0.0,
) -> Step:
    if current is not None and current.state == RESOLVED:
        current = None  # a resolved alert that fires again is a new instance
    if active:
        if current is None:
            pending = Instance(PENDING, active_at=now, value=value)
            if for_s <= 0:
                return Step(replace(pending, state=FIRING, fired_at=now), FIRING)
            return Step(pending, PENDING)
        if current.state == PENDING:
            if (now - current.active_at).total_seconds() >= for_s:
                return Step(replace(current, state=FIRING, fired_at=now, value=value), FIRING)
            return Step(replace(current, value=value), None)
        return Step(replace(current, value=value, keep_firing_since=None), None)
    if current is None:
        return Step(None, None)
    if current.state == PENDING:
        return Step(None, "dropped")
    since = current.keep_firing_since or now
    if keep_firing_for_s > 0 and (now - since).total_seconds() < keep_firing_for_s:
        return Step(replace(current, keep_firing_since=since), None)
    return Step(replace(current, state=RESOLVED, resolved_at=now, keep_firing_since=None), RESOLVED)
