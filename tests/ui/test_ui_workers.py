"""`serve --workers N`: a UI sign-in holds on every worker, whichever a connection lands on."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from support import Collector


async def test_a_sign_in_holds_on_every_worker(
    start_collector: Callable[..., Collector], key: str
) -> None:
    collector = start_collector(workers=2)
    async with httpx.AsyncClient(base_url=collector.url, timeout=30) as client:
        answer = await client.post(
            "/ui/login", data={"key": key, "next": "/ui/"}, headers={"Origin": collector.url}
        )
        assert answer.status_code == 303, answer.text
        cookies = client.cookies
    for _ in range(30):
        # A connection of its own each time: either worker may take it.
        async with httpx.AsyncClient(base_url=collector.url, cookies=cookies, timeout=30) as fresh:
            page = await fresh.get("/ui/logs", headers={"Connection": "close"})
        assert page.status_code == 200, (page.status_code, page.headers.get("location"))
