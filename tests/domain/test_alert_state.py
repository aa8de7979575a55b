"""The alert state machine over plain data, including clock edge cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.domain.alert_state import FIRING, PENDING, RESOLVED, Instance, fingerprint, step

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(
    instance: Instance | None, active: bool, seconds: float, for_s: float = 300, keep: float = 0
):
    return step(
        instance, active=active, value=1.0, now=at(seconds), for_s=for_s, keep_firing_for_s=keep
    )


def test_pending_then_firing_after_for() -> None:
    first = run(None, True, 0)
    assert first.event == PENDING and first.instance.state == PENDING
    assert first.instance.active_at == T0
    waiting = run(first.instance, True, 299)
    assert waiting.event is None and waiting.instance.state == PENDING
    fired = run(waiting.instance, True, 300)
    assert fired.event == FIRING and fired.instance.fired_at == at(300)
    assert fired.instance.active_at == T0, "active_at keeps when the condition first held"


def test_for_zero_fires_at_once() -> None:
    result = run(None, True, 0, for_s=0)
    assert result.event == FIRING
    assert result.instance.state == FIRING and result.instance.fired_at == T0


def test_pending_alert_whose_condition_clears_is_dropped_without_notification() -> None:
    pending = run(None, True, 0).instance
    dropped = run(pending, False, 60)
    assert dropped.instance is None and dropped.event == "dropped"


def test_firing_alert_resolves_when_condition_clears() -> None:
    firing = run(None, True, 0, for_s=0).instance
    resolved = run(firing, False, 30, for_s=0)
    assert resolved.event == RESOLVED
    assert resolved.instance.state == RESOLVED and resolved.instance.resolved_at == at(30)


def test_keep_firing_for_holds_then_resolves() -> None:
    firing = run(None, True, 0, for_s=0).instance
    held = run(firing, False, 30, for_s=0, keep=120)
    assert held.event is None and held.instance.state == FIRING
    assert held.instance.keep_firing_since == at(30)
    still = run(held.instance, False, 149, for_s=0, keep=120)
    assert still.instance.state == FIRING
    resolved = run(still.instance, False, 150, for_s=0, keep=120)
    assert resolved.event == RESOLVED and resolved.instance.resolved_at == at(150)


def test_condition_returning_during_keep_firing_for_clears_the_hold() -> None:
    firing = run(None, True, 0, for_s=0).instance
    held = run(firing, False, 30, for_s=0, keep=120).instance
    back = run(held, True, 60, for_s=0, keep=120)
    assert back.event is None and back.instance.keep_firing_since is None
    # The hold starts again from the next clear evaluation.
    again = run(back.instance, False, 200, for_s=0, keep=120)
    assert again.instance.state == FIRING and again.instance.keep_firing_since == at(200)


def test_late_evaluation_fires_as_soon_as_it_runs() -> None:
    pending = run(None, True, 0).instance
    late = run(pending, True, 3600)
    assert late.event == FIRING and late.instance.fired_at == at(3600)


def test_clock_jumping_backwards_keeps_pending_and_keeps_firing() -> None:
    pending = run(None, True, 0).instance
    earlier = run(pending, True, -600)
    assert earlier.event is None and earlier.instance.state == PENDING
    firing = run(None, True, 0, for_s=0).instance
    held = run(firing, False, 10, for_s=0, keep=60).instance
    jumped = run(held, False, -3600, for_s=0, keep=60)
    assert jumped.instance.state == FIRING, "a negative elapsed time never resolves early"


def test_resolved_instance_that_fires_again_is_new() -> None:
    resolved = Instance(RESOLVED, active_at=T0, value=1.0, fired_at=T0, resolved_at=at(60))
    again = run(resolved, True, 120)
    assert again.event == PENDING and again.instance.active_at == at(120)
    assert again.instance.fired_at is None and again.instance.resolved_at is None


def test_inactive_without_instance_stays_inactive() -> None:
    assert run(None, False, 0) == run(None, False, 0)
    assert run(None, False, 0).instance is None and run(None, False, 0).event is None


def test_value_follows_the_latest_evaluation() -> None:
    firing = run(None, True, 0, for_s=0).instance
    updated = step(firing, active=True, value=7.5, now=at(30), for_s=0)
    assert updated.instance.value == 7.5 and updated.event is None


def test_fingerprint_matches_alertmanager() -> None:
    # prometheus/common's LabelSet.Fingerprint: FNV-1a 64; the empty set is the offset basis.
    assert fingerprint({}) == "cbf29ce484222325"
    assert fingerprint({"alertname": "a"}) == fingerprint({"alertname": "a"})
    assert fingerprint({"a": "b", "c": "d"}) == fingerprint({"c": "d", "a": "b"})
    assert fingerprint({"a": "bc"}) != fingerprint({"ab": "c"}), "separators keep pairs apart"
    assert len(fingerprint({"alertname": "HighErrorRate", "service": "api"})) == 16
