"""A signalling peer that stops reading is dropped and its memory freed.

The server used to log ``peer … is not reading; closing`` and leave the socket open and counted
(``ws.close()`` waits for a close frame that a non-reading peer never lets out) with up to 1000
queued messages each: +55 MB for one peer. Now its queue is bounded in bytes, and it is
unregistered at once and its connection aborted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import aiohttp
import pytest
from webrtc_reliability_helpers import (
    ServerProcess,
    healthy_viewer_plays,
    metric,
    raw_websocket,
    wait_until,
    ws_frame,
)

pytestmark = pytest.mark.timeout(120)

META = "m" * 60_000  # a status change of ~60 kB, under the 64 KiB message limit
CHANGES = 300  # ~18 MB broadcast to each listener


async def flood_and_watch(url: str) -> tuple[int, int]:
    """A noisy peer toggles its status with a big meta; a healthy listener reads everything.
    Returns (changes made, changes the healthy listener saw)."""
    async with aiohttp.ClientSession() as s:
        healthy = await s.ws_connect(url.replace("http", "ws") + "/ws", max_msg_size=0)
        me = json.loads((await healthy.receive(5)).data)["peerId"]
        await healthy.send_json({"type": "setPeerStatus", "roles": ["listener"]})
        noisy = await s.ws_connect(url.replace("http", "ws") + "/ws")
        noisy_id = json.loads((await noisy.receive(5)).data)["peerId"]
        seen = 0

        async def read() -> None:
            nonlocal seen
            while True:
                msg = await healthy.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return
                m = json.loads(msg.data)
                seen += m["type"] == "peerStatusChanged" and m["peerId"] == noisy_id
        reader = asyncio.create_task(read())
        for i in range(CHANGES):
            roles = ["consumer"] if i % 2 == 0 else []
            await noisy.send_json({"type": "setPeerStatus", "roles": roles,
                                   "meta": {"pad": META, "i": i}})
            if i % 20 == 0:
                await asyncio.sleep(0.02)
        deadline = time.monotonic() + 20
        while seen < CHANGES and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        assert me
        await noisy.close()
        await healthy.close()
        return CHANGES, seen


def test_non_reading_listener_is_dropped(tmp_path) -> None:
    log_path = tmp_path / "server.log"
    settings = {"signalling_send_queue": 512 * 1024}
    with ServerProcess(settings, log_path=log_path) as srv:
        base = srv.stats()
        stuck = raw_websocket(srv.port)
        stuck.sendall(ws_frame(json.dumps({"type": "setPeerStatus", "roles": ["listener"]})))
        wait_until(lambda: metric(srv.url, 'framecast_clients{kind="signalling"}') == 1, 5,
                   "the stuck listener registered")
        made, seen = asyncio.run(flood_and_watch(srv.url))
        assert seen == made, "the healthy listener missed status changes"
        peak = srv.stats()
        # dropped: unregistered at once, its connection ended by the server (EOF or RST once
        # we read what the kernel buffered)
        wait_until(lambda: metric(srv.url, 'framecast_clients{kind="signalling"}') == 0, 10,
                   "the stuck listener counted gone")
        stuck.settimeout(10)
        got = 0
        with contextlib.suppress(ConnectionResetError):
            while chunk := stuck.recv(1 << 16):
                got += len(chunk)
        stuck.close()
        assert got < 16 * 1024 * 1024
        text = log_path.read_text()
        assert text.count("is not reading") == 1, text[-2000:]
        # memory: the queue is bounded (512 kB here); before, up to 1000 messages (60 MB of these)
        # stayed queued: +16 MB in this test, +55 MB in the field
        assert peak.rss_kb - base.rss_kb < 10_000, (base.rss_kb, peak.rss_kb)
        assert srv.stats().fds <= base.fds + 2
        assert srv.alive
        healthy_viewer_plays(srv.url)
