"""Viewers that never complete ICE are freed after ``webrtc_pending_timeout`` and cannot lock a
mount: 100 WHEP offers without candidates (and signalling sessions nobody answers) once held
100 webrtcbins forever and the 101st viewer got 503. Run under tools/netns-run."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from webrtc_reliability_helpers import (
    OFFER_WITHOUT_CANDIDATES,
    ServerProcess,
    consumers,
    healthy_viewer_plays,
    wait_until,
    webrtcbins,
)

pytestmark = pytest.mark.timeout(180)

TIMEOUT = 2.0  # webrtc_pending_timeout for these tests
SDP = {"Content-Type": "application/sdp"}


async def post_offers(url: str, n: int, parallel: int = 10) -> list[int]:
    sem = asyncio.Semaphore(parallel)

    async def one(s: aiohttp.ClientSession) -> int:
        async with sem, s.post(f"{url}/whep/demo", data=OFFER_WITHOUT_CANDIDATES,
                               headers=SDP) as r:
            await r.read()
            return r.status

    async with aiohttp.ClientSession() as s:
        return list(await asyncio.gather(*(one(s) for _ in range(n))))


def test_hundred_offers_that_never_connect_are_freed(tmp_path) -> None:
    settings = {"webrtc_pending_timeout": TIMEOUT, "webrtc_max_pending": 200,
                "webrtc_max_pending_per_peer": 200, "webrtc_max_viewers": 100,
                "webrtc_idle_stop": 0.5}
    with ServerProcess(settings, log_path=tmp_path / "server.log") as srv:
        seen: list[int] = []
        t0 = time.monotonic()
        statuses = asyncio.run(post_offers(srv.url, 100))
        seen.append(webrtcbins(srv.url))
        assert statuses.count(201) == 100, statuses
        assert seen[0] >= 50 or time.monotonic() - t0 > TIMEOUT, seen
        # all freed about TIMEOUT after their POST (the sweep runs every TIMEOUT/4)
        wait_until(lambda: webrtcbins(srv.url) == 0, TIMEOUT + 10, "pending viewers freed")
        assert time.monotonic() - t0 < 100 * 0.2 + TIMEOUT + 10
        # a real viewer connects and is not taken for a pending one: it outlives the timeout
        with consumers(srv.url, 1) as c:
            wait_until(lambda: c.frames[0] >= 5 or bool(c.errors), 20, "a viewer's frames")
            time.sleep(TIMEOUT * 2)
            before = c.frames[0]
            time.sleep(0.5)
            assert not c.errors and c.frames[0] > before, "the connected viewer was freed"
            assert webrtcbins(srv.url) == 1
        log = (tmp_path / "server.log").read_text()
        assert log.count("ICE not connected after 2 s") == 100
        assert srv.alive


async def _pending_limits(url: str) -> None:
    async with aiohttp.ClientSession() as s:
        # per peer address: 4 wait for ICE, the 5th is told to come back later
        for _ in range(4):
            async with s.post(f"{url}/whep/demo", data=OFFER_WITHOUT_CANDIDATES,
                              headers=SDP) as r:
                assert r.status == 201
        async with s.post(f"{url}/whep/demo", data=OFFER_WITHOUT_CANDIDATES, headers=SDP) as r:
            assert r.status == 503
            assert "waiting for ICE" in await r.text()
            assert int(r.headers["Retry-After"]) >= 1
        # signalling sessions count too, and nobody answering them frees them as well
        ws = await s.ws_connect(url.replace("http", "ws") + "/ws")
        assert (await ws.receive_json(timeout=5))["type"] == "welcome"
        await ws.send_json({"type": "list"})
        producer = (await ws.receive_json(timeout=5))["producers"][0]["id"]
        await ws.send_json({"type": "startSession", "peerId": producer})
        got = [await ws.receive_json(timeout=5) for _ in range(2)]
        assert got[0]["type"] == "sessionStarted"
        assert got[1]["type"] == "error" and "waiting for ICE" in got[1]["details"], got
        await asyncio.sleep(TIMEOUT + 1.5)  # the 4 WHEP viewers expire
        sessions = []
        for _ in range(3):
            await ws.send_json({"type": "startSession", "peerId": producer})
            while (msg := await ws.receive_json(timeout=5))["type"] != "sessionStarted":
                pass
            sessions.append(msg["sessionId"])
        # never answered: each ends with an error and endSession after the timeout
        ended: set[str] = set()
        deadline = time.monotonic() + TIMEOUT + 5
        while ended != set(sessions) and time.monotonic() < deadline:
            msg = await ws.receive_json(timeout=deadline - time.monotonic())
            if msg["type"] == "endSession":
                ended.add(msg["sessionId"])
        assert ended == set(sessions)
        await ws.close()


def test_pending_viewers_are_limited_per_peer(tmp_path) -> None:
    settings = {"webrtc_pending_timeout": TIMEOUT, "webrtc_max_pending_per_peer": 4,
                "webrtc_idle_stop": 0.5}
    with ServerProcess(settings, log_path=tmp_path / "server.log") as srv:
        asyncio.run(_pending_limits(srv.url))
        wait_until(lambda: webrtcbins(srv.url) == 0, TIMEOUT + 5, "pending viewers freed")
        assert srv.alive
        healthy_viewer_plays(srv.url)
        log = (tmp_path / "server.log").read_text()
        assert "refused: 4 viewers from 127.0.0.1 already waiting for ICE" in log
