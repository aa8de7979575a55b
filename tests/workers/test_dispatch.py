"""The dispatcher and delivery end to end, from `alerts` rows to a real HTTP receiver, with
the clock passed in: the exact payloads, grouping, intervals, silences, superseding, and
several dispatchers at once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from notify_kit import golden, normalised, receiving, resolve

from app.workers.dispatch import dispatch_round

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


ANNOTATIONS = {
    "summary": "Error rate of checkout-agent on gpt-4o is 25%",
    "runbook_url": "https://runbooks.example.com/high-error-rate",
}


async def test_a_webhook_gets_the_exact_payload_and_the_resolved_one_once(alerting) -> None:
    with receiving() as receiver:
        channel = await alerting.channel(
            receiver.url, name="oncall", headers={"Authorization": "Bearer s3cret"}
        )
        rule = await alerting.rule("HighErrorRate", [channel])
        first = await alerting.fire(
            rule,
            "HighErrorRate",
            {"service": "checkout-agent", "model": "gpt-4o"},
            at(0),
            annotations=ANNOTATIONS,
        )
        second = await alerting.fire(
            rule,
            "HighErrorRate",
            {"service": "checkout-agent", "model": "gpt-4o-mini"},
            at(5),
            annotations={**ANNOTATIONS, "summary": "Error rate of gpt-4o-mini is 9%"},
        )
        assert (await alerting.dispatch(at(1))).queued == []  # group_wait (30s) runs
        assert (await alerting.dispatch(at(29))).queued == []
        [queued] = (await alerting.dispatch(at(31))).queued
        assert await alerting.deliver(at(31)) == ["sent"]

        [request] = receiver.requests
        assert request.headers["idempotency-key"] == str(queued)
        assert request.headers["x-telemetry-notification-id"] == str(queued)
        assert request.headers["authorization"] == "Bearer s3cret"
        assert request.headers["content-type"] == "application/json"
        names = {f"/alert-rules/{rule}": "/alert-rules/RULE"}
        golden("e2e_webhook_firing.json", normalised(request.json(), names))

        await resolve(alerting.db, first, at(100))
        await resolve(alerting.db, second, at(120))
        for moment in (100, 200, 330):  # the next flush is at 31 + 5m
            assert (await alerting.dispatch(at(moment))).queued == []
        assert len((await alerting.dispatch(at(331))).queued) == 1
        assert await alerting.deliver(at(331)) == ["sent"]
        golden("e2e_webhook_resolved.json", normalised(receiver.requests[1].json(), names))
        assert await alerting.group(channel) == []  # all resolved: the group is gone

        for moment in (631, 931, 20000):
            assert (await alerting.dispatch(at(moment))).queued == []
            assert await alerting.deliver(at(moment)) == []
        assert len(receiver.requests) == 2
        rows = await alerting.notifications(channel)
        assert [row["status"] for row in rows] == ["sent", "sent"]
        assert rows[0]["attempts"] == 1 and rows[0]["sent_at"] == at(31)


async def test_group_wait_group_interval_and_repeat_interval(alerting) -> None:
    with receiving() as receiver:
        channel = await alerting.channel(
            receiver.url, group_wait="10s", group_interval="1m", repeat_interval="5m"
        )
        rule = await alerting.rule("SlowLLM", [channel])
        await alerting.fire(rule, "SlowLLM", {"model": "a"}, at(0))
        await alerting.dispatch(at(0))
        sent_at = []
        for second in range(1, 800):
            if second == 20:
                await alerting.fire(rule, "SlowLLM", {"model": "b"}, at(20))
            if (await alerting.dispatch(at(second))).queued:
                await alerting.deliver(at(second))
                sent_at.append(second)
        # 10: first (a); 70: b joined at the flush after it; 370, 670: repeats of both.
        assert sent_at == [10, 70, 370, 670]
        sizes = [len(body["alerts"]) for body in receiver.bodies()]
        assert sizes == [1, 2, 2, 2]
        assert len({body["groupKey"] for body in receiver.bodies()}) == 1


async def test_group_by_splits_groups_and_all_labels_group_per_alert(alerting) -> None:
    with receiving() as by_model, receiving() as by_everything:
        per_model = await alerting.channel(by_model.url, group_by=["model"], group_wait="0s")
        per_alert = await alerting.channel(by_everything.url, group_by=["..."], group_wait="0s")
        rule = await alerting.rule("Cost", [per_model, per_alert])
        for user, model in [("u1", "a"), ("u2", "a"), ("u3", "b")]:
            await alerting.fire(rule, "Cost", {"model": model, "user": user}, at(0))
        assert len((await alerting.dispatch(at(1))).queued) == 5
        await alerting.deliver(at(1))
        assert sorted(len(body["alerts"]) for body in by_model.bodies()) == [1, 2]
        assert {json.dumps(b["groupLabels"]) for b in by_model.bodies()} == {
            '{"model": "a"}',
            '{"model": "b"}',
        }
        assert sorted(len(body["alerts"]) for body in by_everything.bodies()) == [1, 1, 1]


async def test_a_silence_suppresses_and_its_end_lets_the_next_notification_go(alerting) -> None:
    with receiving() as receiver:
        channel = await alerting.channel(receiver.url)
        rule = await alerting.rule("HighErrorRate", [channel])
        await alerting.db.execute(
            "INSERT INTO silences (project_id, matchers, starts_at, ends_at)"
            " VALUES ($1, $2, $3, $4)",
            alerting.project_id,
            json.dumps([{"name": "model", "value": "gpt-4o.*", "is_regex": True}]),
            at(-60),
            at(200),
        )
        await alerting.fire(rule, "HighErrorRate", {"model": "gpt-4o"}, at(0))
        await alerting.fire(rule, "HighErrorRate", {"model": "claude"}, at(0))
        await alerting.dispatch(at(0))
        await alerting.dispatch(at(30))
        await alerting.deliver(at(30))
        [first] = receiver.bodies()
        assert [alert["labels"]["model"] for alert in first["alerts"]] == ["claude"]
        await alerting.dispatch(at(199))  # nothing new while silenced
        await alerting.dispatch(at(300))  # the silence ended at 200; next flush is at 330
        assert await alerting.deliver(at(300)) == []
        assert len((await alerting.dispatch(at(330))).queued) == 1
        await alerting.deliver(at(330))
        second = receiver.bodies()[1]
        assert sorted(a["labels"]["model"] for a in second["alerts"]) == ["claude", "gpt-4o"]


async def test_a_superseded_notification_hands_on_its_resolved_alerts(alerting) -> None:
    with receiving() as receiver:
        channel = await alerting.channel(receiver.url, group_wait="0s", group_interval="1m")
        rule = await alerting.rule("ToolFails", [channel])
        a = await alerting.fire(rule, "ToolFails", {"tool": "search"}, at(0))
        await alerting.fire(rule, "ToolFails", {"tool": "shell"}, at(0))
        await alerting.dispatch(at(0))
        assert await alerting.deliver(at(0)) == ["sent"]
        await resolve(alerting.db, a, at(30))
        receiver.default = 503  # the receiver goes down
        await alerting.dispatch(at(60))  # "search resolved" queued, fails, will retry
        assert await alerting.deliver(at(60)) == ["retry"]
        await alerting.fire(rule, "ToolFails", {"tool": "browser"}, at(90))
        receiver.default = 200
        [newest] = (await alerting.dispatch(at(120))).queued
        statuses = [row["status"] for row in await alerting.notifications(channel)]
        assert statuses == ["sent", "superseded", "pending"]
        assert await alerting.deliver(at(121)) == ["sent"]
        last = receiver.bodies()[-1]
        assert receiver.requests[-1].headers["idempotency-key"] == str(newest)
        assert {(x["labels"]["tool"], x["status"]) for x in last["alerts"]} == {
            ("browser", "firing"),
            ("search", "resolved"),
            ("shell", "firing"),
        }


async def test_two_dispatchers_at_once_queue_each_notification_once(alerting) -> None:
    from app.db.engine import create_engine

    other_engine = create_engine(alerting.settings, alerting.settings.database_url, pool_size=2)
    try:
        with receiving() as receiver:
            channels = [await alerting.channel(receiver.url, group_wait="0s") for _ in range(3)]
            rule = await alerting.rule("Dup", channels)
            for index in range(4):
                await alerting.fire(rule, "Dup", {"n": str(index)}, at(0))
            for moment in (1, 2, 400, 401):
                reports = await asyncio.gather(
                    alerting.dispatch(at(moment)),
                    dispatch_round(other_engine, alerting.settings, at(moment)),
                )
                tasks = await asyncio.gather(
                    alerting.deliverer().round(alerting.engine, at(moment)),
                    alerting.deliverer().round(other_engine, at(moment)),
                )
                await asyncio.gather(*tasks[0], *tasks[1])
                if moment == 1:
                    assert sum(len(report.queued) for report in reports) == 3
            assert len(receiver.requests) == 3  # one per channel, each once
            keys = [request.headers["idempotency-key"] for request in receiver.requests]
            assert len(set(keys)) == 3
    finally:
        await other_engine.dispose()


async def test_after_a_restart_a_firing_group_waits_for_its_repeat_interval(alerting) -> None:
    # Group state lives in the database: new dispatcher and deliverer objects (a restart)
    # pick up where the old ones were.
    with receiving() as receiver:
        channel = await alerting.channel(receiver.url, repeat_interval="1h")
        rule = await alerting.rule("Down", [channel])
        await alerting.fire(rule, "Down", {}, at(0))
        await alerting.dispatch(at(0))
        await alerting.dispatch(at(30))
        await alerting.deliver(at(30))
        for moment in (600, 1800, 3600):
            assert (await alerting.dispatch(at(moment))).queued == []
            assert await alerting.deliver(at(moment), alerting.deliverer()) == []
        # The flush at 3600 restarted the 5m interval; the repeat goes at the next flush.
        assert len((await alerting.dispatch(at(3900))).queued) == 1
        assert len(receiver.requests) == 1


async def test_a_slack_channel_gets_a_coloured_message_and_its_resolve(alerting) -> None:
    with receiving() as slack:
        channel = await alerting.channel(
            slack.url, type="slack", group_wait="0s", group_interval="1m"
        )
        rule = await alerting.rule("HighErrorRate", [channel])
        alert = await alerting.fire(
            rule, "HighErrorRate", {"model": "gpt-4o"}, at(0), annotations=ANNOTATIONS, value=0.25
        )
        await alerting.dispatch(at(0))
        await alerting.deliver(at(0))
        await resolve(alerting.db, alert, at(30))
        await alerting.dispatch(at(60))
        await alerting.deliver(at(60))
        firing, resolved = (body["attachments"][0] for body in slack.bodies())
        assert firing["color"] == "#d63232" and resolved["color"] == "#2eb886"
        assert firing["title"] == "[FIRING:1] HighErrorRate (gpt-4o critical)"
        assert resolved["title"].startswith("[RESOLVED] HighErrorRate")
        assert "value 0.25" in firing["text"] and ANNOTATIONS["summary"] in firing["text"]
        assert f"<{ANNOTATIONS['runbook_url']}|Runbook>" in firing["text"]
        assert f"<https://telemetry.example.com/api/v1/alert-rules/{rule}|Rule>" in firing["text"]
        assert firing["title_link"] == "https://telemetry.example.com/api/v1/alerts"
