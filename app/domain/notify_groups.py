"""Alertmanager's aggregation groups: when a group of alerts is due a notification.

Pure functions over plain data; the caller passes the clock. The dispatcher
(app/workers/dispatch.py) keeps each group's `GroupState` in `notification_groups`.

Modelled on Alertmanager's `dispatch/dispatch.go` (aggrGroup: `getGroupLabels`,
`groupAlert`, `run`, `flush`) and `notify/dedup_stage.go` (DedupStage.needsUpdate),
with the mute stage (`notify/mute.go`) in front as Alertmanager runs it:

- A channel's alerts fall into groups by their `group_by` label values (missing and
  empty labels are left out, as Prometheus treats an empty label as absent; `...` groups
  by every label). The key is Alertmanager's: `{}:{name="value", ...}` (root route).
- A group appears with its first firing alert and waits `group_wait` before its first
  flush — at once when that alert fired more than `group_wait` ago (dispatch.go flushes
  an alert that is "old enough" immediately, which is also what makes a restart quiet).
- Then it is flushed every `group_interval` (the timer restarts at each flush). A group
  with no interval (alertmanager channels) is looked at every dispatch round.
- At a flush, silenced alerts are left out first. Of the rest (firing alerts, and alerts
  the last notification announced as firing that have resolved since), a notification
  goes out when (DedupStage): a firing alert was not announced by the last notification
  (`first` / `new_alerts`); no alert fires any more but some were announced
  (`all_resolved`, status "resolved"); an announced alert resolved and the channel sends
  resolved alerts (`resolved`); or `repeat_interval` has passed since the last
  notification (`repeat`, `>=`: a repeat falls due on the flush at its interval).
- What a notification announces as firing is remembered (`notified_firing`, alert ids);
  a silenced alert is not in it, so an alert that started firing while silenced is
  announced at the first flush after the silence ends, while one announced before the
  silence is repeated on `repeat_interval`, as Alertmanager's notification log does.
- With `send_resolved` off, resolved alerts are left out of notifications; when all have
  resolved the group is forgotten without sending (Alertmanager's RetryStage does so).
- An alert that fired and resolved before the group's first flush is never sent, and
  neither is one that resolved while silenced (the mute stage drops it).
- The group is removed once nothing in it fires and nothing announced awaits its
  resolution.

Where this differs from Alertmanager: a resolved alert is only ever sent if a
notification announced it as firing (Alertmanager also lists, in a notification sent for
another reason, alerts that fired and resolved in between, which the receiver never saw
fire); the group state is written when the notification is queued, not after delivery
(delivery retries the queued notification instead).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache

FIRST, NEW_ALERTS, RESOLVED, ALL_RESOLVED, REPEAT = (
    "first",
    "new_alerts",
    "resolved",
    "all_resolved",
    "repeat",
)


@dataclass(frozen=True, slots=True)
class Timing:
    """A channel's grouping options, in seconds."""

    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float
    send_resolved: bool = True


@dataclass(slots=True)  # not frozen: a dispatch round makes thousands, and frozen is slower
class AlertRecord:
    """An alert as notifications see it: one row of `alerts` plus whether it is muted."""

    id: int
    labels: Mapping[str, str]
    firing: bool
    fired_at: datetime
    annotations: Mapping[str, str] = field(default_factory=dict)
    resolved_at: datetime | None = None
    value: float | None = None
    rule_id: int | None = None
    fingerprint: str = ""
    silenced: bool = False


@dataclass(frozen=True, slots=True)
class GroupState:
    """One stored aggregation group (a row of notification_groups)."""

    key: str
    labels: Mapping[str, str]
    created_at: datetime
    next_flush_at: datetime
    last_notified_at: datetime | None = None
    notified_firing: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Decision:
    """What one look at a group decided.

    `state` is the group afterwards (None: the group is gone and its row is deleted);
    `changed` says whether it must be written. `alerts` is what to notify, sorted (empty:
    send nothing); `status` is "firing" when any of them fires, else "resolved".
    """

    state: GroupState | None
    changed: bool
    alerts: tuple[AlertRecord, ...] = ()
    status: str = ""
    reason: str = ""


def group_labels(labels: Mapping[str, str], group_by: Sequence[str] | None) -> dict[str, str]:
    """The labels that name an alert's group (`group_by` None: every label)."""
    names = labels if group_by is None else group_by
    return {name: labels[name] for name in names if labels.get(name)}


def group_key(labels: Mapping[str, str]) -> str:
    """Alertmanager's group key for the root route: `{}:{a="1", b="2"}`."""
    return _group_key(tuple(sorted(labels.items())))


@lru_cache(maxsize=65536)
def _group_key(pairs: tuple[tuple[str, str], ...]) -> str:
    return "{}:{" + ", ".join(f"{name}={go_quote(value)}" for name, value in pairs) + "}"


_PLAIN = re.compile(r"^[ !#-\[\]-~]*$")  # printable ASCII without " and \


def go_quote(text: str) -> str:
    """A string as Go's strconv.Quote writes it (label values in group keys)."""
    if _PLAIN.match(text):
        return f'"{text}"'
    escapes = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f"}
    escapes |= {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _labels_before(left: Mapping[str, str], right: Mapping[str, str]) -> bool:
    # prometheus/common model.LabelSet.Before: fewer labels first, then by sorted names.
    if len(left) != len(right):
        return len(left) < len(right)
    for name in sorted(set(left) | set(right)):
        if name not in left:
            return True
        if name not in right:
            return False
        if left[name] != right[name]:
            return left[name] < right[name]
    return False


def sort_alerts(alerts: Iterable[AlertRecord]) -> list[AlertRecord]:
    """Alertmanager's notification order (alert.AlertSlice.Less): by `job`, `instance`,
    then label set; ties keep their order (sort.Stable)."""
    ordered: list[AlertRecord] = []
    for alert in alerts:  # insertion sort keeps equal ones stable; groups are small
        position = len(ordered)
        while position > 0 and _less(alert, ordered[position - 1]):
            position -= 1
        ordered.insert(position, alert)
    return ordered


def _less(left: AlertRecord, right: AlertRecord) -> bool:
    for name in ("job", "instance"):
        if name not in left.labels and name not in right.labels:
            continue
        if name not in left.labels:
            return False
        if name not in right.labels:
            return True
        if left.labels[name] != right.labels[name]:
            return left.labels[name] < right.labels[name]
    return _labels_before(left.labels, right.labels)


def decide(
    state: GroupState | None,
    *,
    key: str,
    labels: Mapping[str, str],
    members: Sequence[AlertRecord],
    timing: Timing,
    now: datetime,
) -> Decision:
    """Look at one group at `now`.

    `members` are the group's alerts now: its firing alerts (silenced ones too, marked)
    and those of `state.notified_firing` that have resolved. Announced alerts missing
    from `members` (no longer routed here, or deleted) are forgotten without a word.
    """
    created = False
    if state is None:
        firing = [alert for alert in members if alert.firing]
        if not firing:
            return Decision(None, changed=False)
        wait = timedelta(seconds=timing.group_wait_s)
        oldest = min(alert.fired_at for alert in firing)
        first_flush = now if oldest + wait < now else now + wait
        state = GroupState(key, dict(labels), created_at=now, next_flush_at=first_flush)
        created = True
    if now < state.next_flush_at:
        return Decision(state, changed=created)
    return _flush(state, members, timing, now, created)


def _flush(
    state: GroupState,
    members: Sequence[AlertRecord],
    timing: Timing,
    now: datetime,
    created: bool,
) -> Decision:
    # No interval: due at every look, and the row is not rewritten just to move a timer.
    next_flush_at = (
        now + timedelta(seconds=timing.group_interval_s)
        if timing.group_interval_s > 0
        else state.next_flush_at
    )
    present = {alert.id for alert in members}
    muted_resolved = {alert.id for alert in members if alert.silenced and not alert.firing}
    announced = (state.notified_firing & present) - muted_resolved
    visible = [alert for alert in members if not alert.silenced]
    firing = [alert for alert in visible if alert.firing]
    resolved = [alert for alert in visible if not alert.firing and alert.id in announced]
    firing_ids = {alert.id for alert in firing}

    reason = ""
    if firing or resolved:  # the mute stage passes nothing on when all is silenced
        if firing_ids - announced:
            reason = NEW_ALERTS if announced else FIRST
        elif not firing:
            reason = ALL_RESOLVED
        elif resolved and timing.send_resolved:
            reason = RESOLVED
        elif state.last_notified_at is None or now - state.last_notified_at >= timedelta(
            seconds=timing.repeat_interval_s
        ):
            reason = REPEAT

    if not reason:
        after = replace(state, next_flush_at=next_flush_at, notified_firing=frozenset(announced))
        return _settle(state, after, members, created)

    sent = firing + resolved if timing.send_resolved else firing
    after = replace(
        state,
        next_flush_at=next_flush_at,
        last_notified_at=now,
        notified_firing=frozenset(firing_ids),
    )
    decision = _settle(state, after, members, created)
    if not sent:  # all resolved, resolved ones not wanted: forget quietly
        return decision
    return replace(
        decision,
        alerts=tuple(sort_alerts(sent)),
        status="firing" if firing else "resolved",
        reason=reason,
    )


def _settle(
    before: GroupState, after: GroupState, members: Sequence[AlertRecord], created: bool
) -> Decision:
    if not after.notified_firing and not any(alert.firing for alert in members):
        return Decision(None, changed=not created)  # nothing left: the group is removed
    return Decision(after, changed=created or after != before)
