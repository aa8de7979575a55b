"""SLO minute counts end to end: spans in through ingest, a counting round with `now`
given, the status read back over HTTP with exact values; late data, backfill, zero
traffic and two rounds at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from query.query_kit import send_spans
from slo_kit import (
    SETTINGS,
    child_of,
    count_round,
    hidden_slo,
    minute_ago,
    minute_rows,
    new_project,
    request_spans,
    slo_body,
)
from sqlalchemy import select

from app.db.engine import create_engine
from app.db.partitions import PartitionManager
from app.db.tables import slos
from app.domain.error_budget import window_end
from app.main import background_jobs

DAY = 86_400


async def test_status_end_to_end_through_ingest(engine, collector) -> None:
    project = await new_project(engine, collector)
    async with project.client() as client:
        availability = (
            await client.post("/api/v1/slos", json=slo_body(service="svc-a", objective=99))
        ).json()
        latency = (
            await client.post(
                "/api/v1/slos",
                json=slo_body(
                    service="svc-a", objective=80, sli={"type": "latency", "threshold_ms": 500}
                ),
            )
        ).json()
        # 40 requests: 4 errors (fast ones); 35 at or below 500 ms, 5 slower.
        durations = [100.0] * 30 + [500.0] * 5 + [501.0] * 3 + [2000.0] * 2
        requests = request_spans("svc-a", minute_ago(2), durations, errors={0, 1, 2, 3})
        # Not events: failed spans inside the requests, and another service's requests.
        noise = [child_of(request) for request in requests[:10]]
        noise += request_spans("svc-b", minute_ago(2), [100.0] * 5, errors={0, 1})
        await send_spans(client, requests[:20] + noise, "native")
        await send_spans(client, requests[20:], "otlp-protobuf")
        await count_round(engine, datetime.now(UTC), [availability["id"], latency["id"]])

        status = (await client.get(f"/api/v1/slos/{availability['id']}/status")).json()
        assert (status["good"], status["total"], status["bad"]) == (36, 40, 4)
        assert status["sli"] == 0.9
        assert status["no_data"] is False
        # B = 1%: 0.4 bad events allowed, 4 spent.
        assert status["error_budget"] == {
            "total": 0.4,
            "consumed": 4,
            "remaining": -3.6,
            "remaining_ratio": -9.0,
        }
        assert status["burn_rates"] == dict.fromkeys(
            ("5m", "30m", "1h", "2h", "6h", "1d", "3d"), 10.0
        )
        assert status["time_to_exhaustion_s"] is None  # already spent
        assert status["policy"] == "freeze"
        assert (status["objective"], status["window"], status["sli_type"]) == (
            99.0,
            "30d",
            "availability",
        )
        # 10x burns above 6 (6h/30m) but not 14.4; 40 events are under the 100-event guard.
        assert [(a["long_window"], a["burning"], a["guarded"]) for a in status["alerts"]] == [
            ("1h", False, True),
            ("6h", True, True),
            ("1d", True, True),
            ("3d", True, True),
        ]

        status = (await client.get(f"/api/v1/slos/{latency['id']}/status")).json()
        assert (status["good"], status["total"], status["sli"]) == (35, 40, 0.875)
        # B = 20%: 8 allowed, 5 spent, 3/8 left; burning at (5/40)/0.2 = 0.625.
        assert status["error_budget"] == {
            "total": 8.0,
            "consumed": 5,
            "remaining": 3.0,
            "remaining_ratio": 0.375,
        }
        assert status["burn_rates"]["1h"] == 0.625
        # 3/8 of a 30-day budget at 0.625x lasts 0.6 x 30 days.
        assert status["time_to_exhaustion_s"] == 1_555_200.0
        assert status["policy"] == "ok"


async def test_zero_traffic_is_no_data_not_a_violation(engine, collector) -> None:
    project = await new_project(engine, collector)
    async with project.client() as client:
        slo = (await client.post("/api/v1/slos", json=slo_body(service="quiet"))).json()
        await count_round(engine, datetime.now(UTC), [slo["id"]])
        status = (await client.get(f"/api/v1/slos/{slo['id']}/status")).json()
        history = (await client.get(f"/api/v1/slos/{slo['id']}/history")).json()
    assert status["no_data"] is True
    assert (status["sli"], status["good"], status["total"]) == (None, 0, 0)
    assert status["error_budget"]["remaining_ratio"] == 1.0
    assert set(status["burn_rates"].values()) == {0.0}
    assert status["time_to_exhaustion_s"] is None
    assert status["policy"] == "ok"
    assert not any(alert["firing"] for alert in status["alerts"])
    assert status["counting"]["complete"] is True  # nothing stored to backfill from
    assert history["points"] and all(
        (point["sli"], point["budget_remaining_ratio"], point["burn_rate"]) == (None, 1.0, 0.0)
        for point in history["points"]
    )


async def test_late_spans_within_the_recount_window_count(engine, collector) -> None:
    project = await new_project(engine, collector)
    async with project.client() as client:
        slo = (await client.post("/api/v1/slos", json=slo_body(service="late"))).json()
        minute = minute_ago(3)
        await send_spans(client, request_spans("late", minute, [10.0] * 10, {0, 1}), "native")
        await count_round(engine, datetime.now(UTC), [slo["id"]])
        assert list((await minute_rows(engine, slo["id"])).values()) == [(8, 10)]

        # Five more spans of the same minute arrive late.
        late = request_spans("late", minute + timedelta(seconds=20), [10.0] * 5, {0})
        await send_spans(client, late, "native")
        await count_round(engine, datetime.now(UTC), [slo["id"]])
        rows = await minute_rows(engine, slo["id"])
        assert rows == {minute.replace(second=0): (12, 15)}

        # Later than the recount window (15 minutes), a span is no longer counted.
        await send_spans(client, request_spans("late", minute_ago(30), [10.0]), "native")
        await count_round(engine, datetime.now(UTC), [slo["id"]])
        assert await minute_rows(engine, slo["id"]) == rows
        status = (await client.get(f"/api/v1/slos/{slo['id']}/status")).json()
        assert (status["good"], status["total"]) == (12, 15)


async def test_a_new_slo_is_backfilled_in_chunks_newest_first(engine, collector) -> None:
    project = await new_project(engine, collector)
    old, recent = minute_ago(150), minute_ago(4)
    async with project.client() as client:
        await send_spans(client, request_spans("back", old, [10.0] * 5, {0}), "native")
        await send_spans(client, request_spans("back", recent, [10.0] * 10), "native")
    slo_id = await hidden_slo(engine, project.id, service="back")
    now = datetime.now(UTC)
    end = window_end(now)
    newest = end - timedelta(minutes=15)

    async def counted_from() -> datetime:
        async with engine.connect() as connection:
            return await connection.scalar(select(slos.c.counted_from).where(slos.c.id == slo_id))

    chunks = {"max_backfill_chunks": 1, "chunk": timedelta(hours=1)}
    await count_round(engine, now, [slo_id], **chunks)
    assert await counted_from() == newest - timedelta(hours=1)
    assert list((await minute_rows(engine, slo_id)).values()) == [(10, 10)]
    await count_round(engine, now, [slo_id], **chunks)
    assert await counted_from() == newest - timedelta(hours=2)
    await count_round(engine, now, [slo_id], **chunks)
    # Nothing older than the oldest span is stored: the chunk stops there.
    assert await counted_from() == old.replace(second=0)
    assert await minute_rows(engine, slo_id) == {
        old.replace(second=0): (4, 5),
        recent.replace(second=0): (10, 10),
    }
    report = await count_round(engine, now, [slo_id], **chunks)
    assert report.backfill_chunks == 1
    assert await counted_from() == end - timedelta(days=30)  # complete
    report = await count_round(engine, now, [slo_id], **chunks)
    assert (report.recounted, report.backfill_chunks) == (1, 0)


async def test_two_rounds_at_once_count_each_minute_once(engine, collector, database_url) -> None:
    project = await new_project(engine, collector)
    # An hour ahead (ingest accepts up to a day): the shared collector's job, which counts
    # at its own now, is not due for this SLO before then.
    ahead = datetime.now(UTC) + timedelta(hours=1, minutes=5)
    slo_id = await hidden_slo(engine, project.id, service="twice")
    async with project.client() as client:
        start = ahead.replace(second=1, microsecond=0) - timedelta(minutes=3)
        await send_spans(client, request_spans("twice", start, [10.0] * 12, {0, 5}), "native")
    other = create_engine(SETTINGS, database_url, pool_size=2)  # a second process's pool
    try:
        reports = await asyncio.gather(
            count_round(engine, ahead, [slo_id], force=False),
            count_round(other, ahead, [slo_id], force=False),
        )
    finally:
        await other.dispose()
    # One recounts; the other finds it locked (skipped) or already not due.
    assert sum(report.recounted for report in reports) == 1
    assert await minute_rows(engine, slo_id) == {start.replace(second=0): (10, 12)}
    # A third round right after is not due: 0.8 of the interval has not passed.
    later = await count_round(engine, ahead + timedelta(seconds=20), [slo_id], force=False)
    assert later.recounted == 0
    later = await count_round(engine, ahead + timedelta(seconds=24), [slo_id], force=False)
    assert later.recounted == 1


def test_the_counting_job_is_registered(engine) -> None:
    jobs = {job.name: job for job in background_jobs(SETTINGS, PartitionManager(engine))}
    assert jobs["slo-evaluation"].interval_s == 30
    assert "storage-stats" in jobs


async def test_filters_pick_the_events_of_each_slo_in_one_scan(engine, collector) -> None:
    project = await new_project(engine, collector)
    bodies = {
        "requests": {},
        "all spans": {"category": "all"},
        "by name": {"name": "POST /chat", "category": "all"},
        "by attribute": {"attributes": {"tenant": "acme"}},
    }
    async with project.client() as client:
        ids = {}
        for name, filters in bodies.items():
            sli = {"type": "availability", "filters": filters}
            body = slo_body(name=name, service="mixed", sli=sli)
            ids[name] = (await client.post("/api/v1/slos", json=body)).json()["id"]
        requests = request_spans("mixed", minute_ago(2), [10.0] * 6, errors={0})
        requests[0].attributes = requests[1].attributes = {"tenant": "acme"}
        children = [child_of(request) for request in requests[:3]]  # 3 failed, not requests
        await send_spans(client, requests + children, "otlp-json")
        await count_round(engine, datetime.now(UTC), list(ids.values()))
        found = {}
        for name, slo_id in ids.items():
            status = (await client.get(f"/api/v1/slos/{slo_id}/status")).json()
            found[name] = (status["good"], status["total"])
    assert found == {
        "requests": (5, 6),
        "all spans": (5, 9),
        "by name": (5, 6),  # the children are named llm.chat
        "by attribute": (1, 2),
    }
