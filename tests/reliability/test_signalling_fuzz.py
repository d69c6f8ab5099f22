"""Signalling under hostile input: malformed, mutated, oversized and impostor messages.

Each case is answered (an ``error`` message, or the socket closed for frames over the size
limit) and nothing reaches other peers or takes the server down; afterwards a viewer still plays.
Run under tools/netns-run."""

from __future__ import annotations

import asyncio
import json
import random

import aiohttp
import pytest
from webrtc_reliability_helpers import (
    ServerProcess,
    healthy_viewer_plays,
    wait_until,
    webrtcbins,
)

pytestmark = pytest.mark.timeout(120)

MAX_PEERS = 6
VALID = [
    {"type": "setPeerStatus", "roles": ["listener"], "meta": {"name": "x"}},
    {"type": "list"},
    {"type": "listConsumers"},
    {"type": "startSession", "peerId": "nobody"},
    {"type": "peer", "sessionId": "s", "sdp": {"type": "answer", "sdp": "v=0\r\n"}},
    {"type": "peer", "sessionId": "s", "ice": {"candidate": "c", "sdpMLineIndex": 0}},
    {"type": "endSession", "sessionId": "s"},
    {"type": "setProtocolVersion", "version": "1.0"},
]
ODD_VALUES = [None, True, -1, 2**70, 1.5, "", "x" * 1000, [], {}, [[[]]], {"a": {"b": None}},
              "\u0000\ud7ff\U0001f600", "producer", ["producer"], ["listener", "listener"]]


def mutations(rng: random.Random, n: int) -> list[str]:
    """Valid messages with fields dropped, retyped or added, plus text that is not JSON."""
    out = []
    for _ in range(n):
        msg = json.loads(json.dumps(rng.choice(VALID)))
        match rng.randrange(6):
            case 0:
                msg.pop(rng.choice(list(msg)))
            case 1:
                msg[rng.choice(list(msg))] = rng.choice(ODD_VALUES)
            case 2:
                msg[rng.choice(["sdp", "ice", "peerId", "x", "roles", "offer"])] = rng.choice(
                    ODD_VALUES)
            case 3:
                msg["type"] = rng.choice(ODD_VALUES + ["welcome", "sessionStarted", "error"])
        text = json.dumps(msg)
        if rng.randrange(5) == 0:  # byte-level damage
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice(['"', "{", "}", "\\", "\x00", "é", ""]) + text[i + 1:]
        out.append(text)
    out += ["", "null", "[]", "1", '"s"', "{" * 50_000, "[" * 30_000 + "]" * 30_000,
            '{"type":"list"' + ',"x":1' * 20_000 + "}"]
    return out


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> dict:
    msg = await ws.receive(timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def until_type(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict:
    for _ in range(5000):
        if (m := await recv(ws))["type"] == kind:
            return m
    raise AssertionError(f"no {kind}")


async def hostile(url: str) -> None:
    ws_url = url.replace("http", "ws") + "/ws"
    async with aiohttp.ClientSession() as s:
        watcher = await s.ws_connect(ws_url)
        await recv(watcher)
        await watcher.send_json({"type": "setPeerStatus", "roles": ["listener"]})
        await until_type(watcher, "peerStatusChanged")
        await watcher.send_json({"type": "list"})
        (real,) = (await until_type(watcher, "list"))["producers"]

        # 1. mutated and malformed messages: the socket survives them all
        fuzz = await s.ws_connect(ws_url)
        await recv(fuzz)
        for text in mutations(random.Random(8), 600):
            await fuzz.send_str(text)
        await fuzz.send_bytes(b"\x00\xff")
        # a marker to read up to: every reply to the fuzz comes before its answer
        await fuzz.send_json({"type": "endSession", "sessionId": "marker-8"})
        for _ in range(5000):
            if (await recv(fuzz)).get("details") == "unknown session 'marker-8'":
                break
        await fuzz.send_json({"type": "list"})
        listed = await recv(fuzz)
        assert [p["id"] for p in listed["producers"]] == [real["id"]], listed

        # 2. an impostor producer named like the real mount is refused, never listed
        fake = await s.ws_connect(ws_url)
        fake_id = (await recv(fake))["peerId"]
        for _ in range(10):
            await fake.send_json({"type": "setPeerStatus", "roles": ["producer"],
                                  "meta": real["meta"]})
            err = await recv(fake)
            assert err["type"] == "error" and "producer role is reserved" in err["details"]
        await watcher.send_json({"type": "list"})
        assert (await until_type(watcher, "list"))["producers"] == [real]
        await watcher.send_json({"type": "startSession", "peerId": fake_id})
        err = await until_type(watcher, "error")
        assert "neither producer nor consumer" in err["details"]

        # 3. unknown ids and sessions, and a real session fed garbage
        for msg in ({"type": "startSession", "peerId": "x" * 300},
                    {"type": "endSession", "sessionId": "nope"},
                    {"type": "peer", "sessionId": "nope", "ice": {"candidate": "c",
                                                                  "sdpMLineIndex": 0}}):
            await fuzz.send_json(msg)
            assert (await until_type(fuzz, "error"))["details"].startswith("unknown ")
        await fuzz.send_json({"type": "startSession", "peerId": real["id"]})
        sid = (await until_type(fuzz, "sessionStarted"))["sessionId"]
        await fuzz.send_json({"type": "peer", "sessionId": sid,
                              "ice": {"candidate": "candidate:garbage", "sdpMLineIndex": 9}})
        await fuzz.send_json({"type": "peer", "sessionId": sid,
                              "sdp": {"type": "answer", "sdp": "v=0\r\nm=nonsense\r\n"}})
        await until_type(fuzz, "endSession")  # the garbage answer ends that session

        # 4. a 10 MB frame closes that socket only (1009), the others carry on
        big = await s.ws_connect(ws_url)
        await recv(big)
        try:
            await big.send_str("x" * (10 * 1024 * 1024))
        except ConnectionError:
            pass  # the server closed on the frame header (its length), before the end
        else:
            closed = await big.receive(10)
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closed
            assert big.close_code == 1009 or closed.data == 1009, (big.close_code, closed)

        # 5. signalling peers are capped (watcher, fuzz, fake open: MAX_PEERS - 3 more fit)
        extra = [await s.ws_connect(ws_url) for _ in range(MAX_PEERS - 3)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await s.ws_connect(ws_url)
        assert refused.value.status == 503
        for ws in extra:
            await ws.close()
        await watcher.send_json({"type": "list"})
        assert (await until_type(watcher, "list"))["producers"] == [real]
        for ws in (fuzz, fake, watcher):
            await ws.close()


def test_signalling_fuzz_impostor_and_limits(tmp_path) -> None:
    log_path = tmp_path / "server.log"
    settings = {"signalling_max_peers": MAX_PEERS, "webrtc_idle_stop": 0.5}
    with ServerProcess(settings, log_path=log_path) as srv:
        asyncio.run(hostile(srv.url))
        assert srv.alive
        wait_until(lambda: webrtcbins(srv.url) == 0, 10, "no webrtcbin left")
        text = log_path.read_text()
        assert text.count("tried to announce itself as a producer") == 1  # rate-limited
        assert text.count(f"signalling: {MAX_PEERS} peers already; refused") == 1
        assert "Traceback" not in text, text[:3000]
        assert max(map(len, text.splitlines())) < 400
        healthy_viewer_plays(srv.url)
