"""Against a real Alertmanager (Debian's prometheus-alertmanager): alerts sent to an
`alertmanager` channel appear in its API with our labels and leave it when resolved, and
the webhook JSON it sends for them is byte for byte the one our `webhook` channels send."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from notify_kit import EXTERNAL_URL, Receiver, receiving, resolve
from support import free_port

from app.domain.alert_state import fingerprint

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason="no Alertmanager binary: install Debian's prometheus-alertmanager "
    "(apt-get install -y prometheus-alertmanager); .ci/run does so where apt is available",
)

CONFIG = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    """A running Alertmanager (no clustering, its own storage) whose only route sends its
    webhook to a local receiver; yields its URL and that receiver."""
    assert BINARY is not None
    with receiving() as hook:
        config = tmp_path / "alertmanager.yml"
        config.write_text(CONFIG.format(url=hook.url))
        port = free_port()
        log = open(tmp_path / "alertmanager.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            [
                BINARY,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--web.external-url={EXTERNAL_URL}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise RuntimeError((tmp_path / "alertmanager.log").read_text()[-2000:])
                time.sleep(0.1)
            yield url, hook
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


async def _their_alerts(url: str) -> list[dict]:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{url}/api/v2/alerts")).json()


async def _until(check, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def test_alerts_appear_in_alertmanager_and_go_away_on_resolve(alerting, alertmanager) -> None:
    url, _ = alertmanager
    channel = await alerting.channel(url, type="alertmanager")
    rule = await alerting.rule("HighErrorRate", [channel])
    now = datetime.now(UTC)
    labels = {"service": "checkout", "user.id": "u-1", "model": ""}
    alert_id = await alerting.fire(
        rule,
        "HighErrorRate",
        labels,
        now - timedelta(seconds=10),
        annotations={"summary": "25% errors", "runbook_url": "https://runbooks.example/x"},
    )
    assert len((await alerting.dispatch(now)).queued) == 1
    assert await alerting.deliver(now) == ["sent"]

    [found] = [a for a in await _their_alerts(url) if a["labels"]["alertname"] == "HighErrorRate"]
    assert found["labels"] == {
        "alertname": "HighErrorRate",
        "severity": "critical",
        "service": "checkout",
        "user_id": "u-1",  # dots are not label name characters there
    }
    assert found["annotations"]["runbook_url"] == "https://runbooks.example/x"
    assert found["status"]["state"] == "active"
    assert found["generatorURL"] == f"{EXTERNAL_URL}/api/v1/alert-rules/{rule}"
    assert found["fingerprint"] == fingerprint(found["labels"])  # our hash is theirs
    ends_at = datetime.fromisoformat(found["endsAt"].replace("Z", "+00:00"))
    assert ends_at > now + timedelta(minutes=3)  # 4 × max(30s eval, 1m resend)

    resolved_at = datetime.now(UTC)
    await resolve(alerting.db, alert_id, resolved_at)
    assert len((await alerting.dispatch(resolved_at)).queued) == 1
    assert await alerting.deliver(resolved_at) == ["sent"]
    await asyncio.sleep(0.05)
    remaining = [a for a in await _their_alerts(url) if a["labels"]["alertname"] == "HighErrorRate"]
    assert remaining == []  # endsAt is past: no longer an alert there


async def test_our_webhook_is_the_one_alertmanager_sends(alerting, alertmanager) -> None:
    url, theirs = alertmanager
    with receiving() as ours:
        to_alertmanager = await alerting.channel(url, type="alertmanager")
        # Named and timed like the Alertmanager route, so both send the same thing.
        webhook = await alerting.channel(
            ours.url, name="hook", group_wait="0s", group_interval="1s"
        )
        rule = await alerting.rule("HighErrorRate", [to_alertmanager, webhook])
        fired = datetime.now(UTC) - timedelta(seconds=5)
        ids = [
            await alerting.fire(
                rule,
                "HighErrorRate",
                {"service": "checkout", "model": model},
                fired,
                annotations={"summary": f"errors on {model}", "runbook_url": "https://r.example"},
            )
            for model in ("gpt-4o-mini", "gpt-4o")
        ]

        async def round_until(count: int):
            now = datetime.now(UTC)
            await alerting.dispatch(now)
            await alerting.deliver(now)
            return len(ours.requests) >= count and len(theirs.requests) >= count

        assert await _until(lambda: round_until(1))
        resolved_at = datetime.now(UTC)
        for alert_id in ids:
            await resolve(alerting.db, alert_id, resolved_at)
        await asyncio.sleep(1.1)  # both wait group_interval (1s) before the resolve
        assert await _until(lambda: round_until(2))

    for mine, alertmanagers in zip(ours.requests[:2], theirs.requests[:2], strict=True):
        assert mine.json() == alertmanagers.json()
        assert list(mine.json()) == list(alertmanagers.json())  # same key order too
    body = json.loads(theirs.requests[1].body)
    assert body["status"] == "resolved" and {a["status"] for a in body["alerts"]} == {"resolved"}
