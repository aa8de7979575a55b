"""Aggregation groups as Alertmanager runs them: waits, intervals, repeats, resolves and
silences, decided by a pure function with the clock passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.domain.notify_groups import (
    ALL_RESOLVED,
    FIRST,
    NEW_ALERTS,
    REPEAT,
    RESOLVED,
    AlertRecord,
    Decision,
    GroupState,
    Timing,
    decide,
    go_quote,
    group_key,
    group_labels,
    sort_alerts,
)

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TIMING = Timing(group_wait_s=30, group_interval_s=300, repeat_interval_s=3600)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def firing(alert_id: int, fired: float = 0, **labels: str) -> AlertRecord:
    labels = {"alertname": "HighErrorRate", "instance": f"i{alert_id}", **labels}
    return AlertRecord(id=alert_id, labels=labels, firing=True, fired_at=at(fired))


def resolved(alert: AlertRecord, when: float) -> AlertRecord:
    return replace(alert, firing=False, resolved_at=at(when))


def silenced(alert: AlertRecord) -> AlertRecord:
    return replace(alert, silenced=True)


class Group:
    """One group looked at over time, its state carried between looks as the dispatcher
    carries it through notification_groups."""

    def __init__(self, timing: Timing = TIMING) -> None:
        self.timing = timing
        self.state: GroupState | None = None
        self.sent: list[tuple[float, Decision]] = []

    def look(self, seconds: float, *members: AlertRecord) -> Decision:
        labels = {"alertname": "HighErrorRate"}
        decision = decide(
            self.state,
            key=group_key(labels),
            labels=labels,
            members=list(members),
            timing=self.timing,
            now=at(seconds),
        )
        self.state = decision.state
        if decision.alerts:
            self.sent.append((seconds, decision))
        return decision

    def start(self, *members: AlertRecord) -> Decision:
        """The group appears at 0 and sends its first notification at 30 (group_wait)."""
        self.look(0, *members)
        first = self.look(self.timing.group_wait_s, *members)
        assert first.reason == FIRST
        return first

    def ids(self, decision: Decision) -> list[tuple[int, str]]:
        return [(alert.id, "firing" if alert.firing else "resolved") for alert in decision.alerts]


def test_a_new_group_waits_group_wait_and_sends_its_alerts_together() -> None:
    group = Group()
    a, b = firing(1), firing(2, fired=10)
    assert group.look(0, a).alerts == ()
    assert group.state is not None and group.state.next_flush_at == at(30)
    assert group.look(10, a, b).alerts == ()
    assert group.look(29.9, a, b).alerts == ()
    first = group.look(30, a, b)
    assert group.ids(first) == [(1, "firing"), (2, "firing")]
    assert (first.status, first.reason) == ("firing", FIRST)
    assert group.state.notified_firing == {1, 2}
    assert group.state.next_flush_at == at(330)


def test_an_alert_older_than_group_wait_is_sent_at_once() -> None:
    # dispatch.go: an alert "old enough" resets the new group's timer to zero, which is
    # also why a restart with no stored group does not wait again.
    group = Group()
    decision = group.look(100, firing(1, fired=0))
    assert decision.reason == FIRST and group.ids(decision) == [(1, "firing")]


def test_changes_wait_for_group_interval_and_unchanged_groups_repeat() -> None:
    group = Group()
    a, b = firing(1), firing(2, fired=60)
    group.start(a)
    assert group.look(60, a, b).alerts == ()  # b waits for the next flush
    assert group.look(329, a, b).alerts == ()
    second = group.look(330, a, b)
    assert second.reason == NEW_ALERTS and group.ids(second) == [(1, "firing"), (2, "firing")]
    for flush in (630, 930, 3630):  # nothing changed: nothing until repeat_interval
        assert group.look(flush, a, b).alerts == ()
    repeat = group.look(3930, a, b)
    assert repeat.reason == REPEAT and len(repeat.alerts) == 2
    assert [when for when, _ in group.sent] == [30, 330, 3930]


def test_repeat_falls_due_on_the_flush_at_its_interval() -> None:
    group = Group(Timing(group_wait_s=0, group_interval_s=60, repeat_interval_s=120))
    a = firing(1)
    group.look(0, a)
    assert group.look(60, a).alerts == ()
    assert group.look(120, a).reason == REPEAT


def test_a_resolved_alert_is_sent_once_and_the_group_resolves_when_all_have() -> None:
    group = Group()
    a, b = firing(1), firing(2)
    group.start(a, b)
    partly = group.look(330, a, resolved(b, 100))
    assert partly.reason == RESOLVED and partly.status == "firing"
    assert group.ids(partly) == [(1, "firing"), (2, "resolved")]
    assert group.state.notified_firing == {1}
    # b is no longer announced: the dispatcher stops passing it, and nothing repeats it.
    assert group.look(630, a).alerts == ()
    done = group.look(930, resolved(a, 700))
    assert done.reason == ALL_RESOLVED and done.status == "resolved"
    assert group.ids(done) == [(1, "resolved")]
    assert done.state is None and done.changed  # the group is removed
    assert group.look(1230).alerts == ()


def test_without_send_resolved_resolves_are_not_sent_and_the_group_goes_quietly() -> None:
    group = Group(replace(TIMING, send_resolved=False))
    a, b = firing(1), firing(2)
    group.start(a, b)
    assert group.look(330, a, resolved(b, 100)).alerts == ()
    assert group.state.notified_firing == {1, 2}
    repeat = group.look(3630, a, resolved(b, 100))
    assert repeat.reason == REPEAT and group.ids(repeat) == [(1, "firing")]
    gone = group.look(3930, resolved(a, 3700))
    assert gone.alerts == () and gone.state is None and gone.changed


def test_an_alert_that_fires_and_resolves_before_the_first_flush_is_never_sent() -> None:
    group = Group()
    a = firing(1)
    group.look(0, a)
    # The dispatcher passes resolved alerts only if they were announced: a is gone.
    decision = group.look(30)
    assert decision.alerts == () and decision.state is None
    assert group.sent == []


def test_nothing_is_sent_when_there_is_nothing_to_send() -> None:
    group = Group()
    assert group.look(0).state is None  # no firing alert: no group
    a = firing(1)
    group.start(a)
    assert group.look(330, a) == Decision(group.state, changed=True)  # only the timer moved


def test_silenced_alerts_are_left_out_and_sent_after_the_silence_ends() -> None:
    group = Group()
    a, b = firing(1), firing(2)
    group.look(0, a, silenced(b))
    first = group.look(30, a, silenced(b))
    assert group.ids(first) == [(1, "firing")]
    assert group.look(330, a, silenced(b)).alerts == ()
    # The silence ended at 400; b started firing while silenced: the next flush sends it.
    assert group.look(401, a, b).alerts == ()
    after = group.look(630, a, b)
    assert after.reason == NEW_ALERTS and group.ids(after) == [(1, "firing"), (2, "firing")]


def test_an_alert_announced_before_its_silence_is_repeated_on_repeat_interval() -> None:
    group = Group()
    a = firing(1)
    group.start(a)
    for flush in (330, 630, 930):
        assert group.look(flush, silenced(a)).alerts == ()  # muted, still announced
    assert group.state.notified_firing == {1}
    assert group.look(1230, a).alerts == ()  # silence over, nothing changed since 30
    assert group.look(3630, a).reason == REPEAT


def test_all_silenced_sends_nothing_and_a_resolve_while_silenced_is_never_sent() -> None:
    group = Group()
    a = firing(1)
    group.start(a)
    assert group.look(330, silenced(a)).alerts == ()
    gone = group.look(630, silenced(resolved(a, 500)))
    assert gone.alerts == () and gone.state is None and gone.changed


def test_a_silenced_firing_alert_keeps_the_group_and_resolution_reports_the_visible() -> None:
    # Alertmanager: the mute stage hides b, so "all" that the receiver knows resolved.
    group = Group()
    a, b = firing(1), firing(2)
    group.start(a, b)
    decision = group.look(330, resolved(a, 100), silenced(b))
    assert decision.reason == ALL_RESOLVED and group.ids(decision) == [(1, "resolved")]
    assert decision.state is not None and decision.state.notified_firing == frozenset()
    # When b's silence ends it is announced again, as a first notification.
    assert group.look(630, b).reason == FIRST


def test_announced_alerts_no_longer_routed_here_are_forgotten() -> None:
    group = Group()
    a, b = firing(1), firing(2)
    group.start(a, b)
    decision = group.look(330, a)  # b now goes elsewhere (rule's channels changed)
    assert decision.alerts == () and group.state.notified_firing == {1}


def test_no_interval_looks_every_time_and_resends_on_the_repeat_interval() -> None:
    # alertmanager channels: one group, no wait, every change at once, resend delay.
    group = Group(Timing(group_wait_s=0, group_interval_s=0, repeat_interval_s=60))
    a, b = firing(1), firing(2, fired=5)
    assert group.look(0, a).reason == FIRST
    unchanged = group.look(1, a)
    assert unchanged.alerts == () and not unchanged.changed  # no write just for a timer
    assert group.look(5, a, b).reason == NEW_ALERTS
    assert group.look(6, a, resolved(b, 6)).reason == RESOLVED
    assert group.look(64, a).alerts == ()
    assert group.look(66, a).reason == REPEAT


def test_a_late_look_flushes_once_and_restarts_the_interval() -> None:
    group = Group()
    a = firing(1)
    group.look(0, a)
    assert group.look(500, a).reason == FIRST
    assert group.state.next_flush_at == at(800)


def test_group_labels_and_keys_are_alertmanagers() -> None:
    labels = {"alertname": "Cost", "user.id": "u-1", "model": "", "severity": "warning"}
    assert group_labels(labels, ["alertname", "model", "missing"]) == {"alertname": "Cost"}
    assert group_labels(labels, None) == {
        "alertname": "Cost",
        "user.id": "u-1",
        "severity": "warning",
    }
    assert group_labels(labels, ()) == {}
    assert group_key({}) == "{}:{}"
    assert (
        group_key({"severity": "warning", "alertname": "Cost"})
        == '{}:{alertname="Cost", severity="warning"}'
    )
    assert go_quote('a"b\\c\nd\x01é') == '"a\\"b\\\\c\\nd\\x01é"'


def test_alerts_are_ordered_as_alertmanager_orders_them() -> None:
    def alert(alert_id: int, **labels: str) -> AlertRecord:
        return AlertRecord(alert_id, labels, True, T0)

    alerts = [
        alert(1, alertname="B"),
        alert(2, alertname="A", instance="b"),
        alert(3, alertname="A", instance="a"),
        alert(4, alertname="A", job="x"),
        alert(5, alertname="A"),
        alert(6, alertname="A", zone="1"),
    ]
    # job first, then instance, then fewer labels, then label values by name.
    assert [a.id for a in sort_alerts(alerts)] == [4, 3, 2, 5, 1, 6]
