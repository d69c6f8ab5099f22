"""The HTTP/WebRTC server with real peers: aiohttp WebSocket clients, GStreamer webrtcbin
consumers (WHEP and signalling), real encoders. Run under tools/netns-run (ICE needs a
non-loopback interface)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from framecast.gst.runtime import Bridge, init_gst

init_gst()
from gi.repository import Gst, GstSdp, GstWebRTC  # noqa: E402

from framecast.gst import (
    demosources,  # noqa: E402
    webrtc,  # noqa: E402
)
from framecast.gst.webrtcsource import bin_source, file_source  # noqa: E402
from framecast.gst.whep_client import make_webrtc_source  # noqa: E402
from framecast.http.metrics import Registry  # noqa: E402
from framecast.http.server import HttpServer  # noqa: E402
from framecast.pixelindex import read_index  # noqa: E402
from framecast.producer import MountSpec  # noqa: E402
from framecast.streaminfo import StreamInfo  # noqa: E402

pytestmark = pytest.mark.timeout(180)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@contextlib.asynccontextmanager
async def serving(*specs: MountSpec, idle_stop: float | None = 5.0,
                  ) -> AsyncIterator[tuple[Bridge, HttpServer]]:
    bridge = Bridge(asyncio.get_running_loop())
    srv = HttpServer(bridge, specs, port=0, metrics=Registry(), idle_stop=idle_stop)
    try:
        await srv.start()
        yield bridge, srv
    finally:
        await srv.stop()
        bridge.close()


def demo(fps: int = 30, stamp: bool = True) -> MountSpec:
    source, info = demosources.test_source(fps=fps, stamp=stamp)
    return webrtc.mount_spec("demo", source, info, rtsp_url="rtsp://127.0.0.1:1/demo")


class Received:
    """Access units that reached a consumer's appsink (thread-safe)."""

    def __init__(self) -> None:
        self.aus: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()
        self.errors: list[str] = []

    def __len__(self) -> int:
        with self.lock:
            return len(self.aus)

    def on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        if ok:
            with self.lock:
                self.aus.append((buf.pts, bytes(info.data)))
            buf.unmap(info)
        return Gst.FlowReturn.OK


def consumer_pipeline(source: Gst.Element, got: Received) -> Gst.Pipeline:
    """source ! appsink, on the GLib thread; bus errors land in ``got.errors``."""
    pipe = Gst.Pipeline.new()
    sink = Gst.ElementFactory.make("appsink")
    sink.set_property("emit-signals", True)
    sink.set_property("sync", False)
    sink.connect("new-sample", got.on_sample)
    pipe.add(source)
    pipe.add(sink)
    assert source.link(sink)
    bus = pipe.get_bus()
    bus.add_signal_watch()
    bus.connect("message::error", lambda _b, m: got.errors.append(m.parse_error()[0].message))
    pipe.set_state(Gst.State.PLAYING)
    return pipe


async def wait_for(cond: Callable[[], bool], timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.05)


def framecast_metadata(au: bytes) -> list[dict]:
    from framecast import metadata, sei

    return [metadata.decode_metadata(data) for uuid, data in sei.extract_user_data(au, "h264")
            if uuid == metadata.FRAMECAST_UUID]


def seq_and_pixel_index(aus: list[tuple[int, bytes]]) -> list[tuple[int | None, int]]:
    """(metadata seq, index drawn in the pixels) of each H.264 AU decoded with PyAV, from the
    first keyframe on (a receiver that joins a passthrough mount between keyframes gets
    the rest of that GOP first: PyAV refuses those AUs, a player skips them)."""
    import av

    from framecast import sei

    codec = av.CodecContext.create("h264", "r")
    pairs = []
    idr = next((i for i, (_pts, au) in enumerate(aus)
                if any(sei.nal_type(n, "h264") == 5 for n in sei.split_annexb(au))), len(aus))
    for _pts, au in aus[idr:]:
        metas = framecast_metadata(au)
        for frame in codec.decode(av.Packet(au)):
            pairs.append((metas[0]["seq"] if metas else None,
                          read_index(frame.to_ndarray(format="rgb24"))))
    return pairs


async def stop_pipeline(bridge: Bridge, pipe: Gst.Pipeline) -> None:
    await bridge.run(pipe.set_state, Gst.State.NULL)


# -- signalling over a real WebSocket ------------------------------------------------------------

async def ws_recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> dict:
    msg = await ws.receive(timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def recv_type(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict:
    """The next message of type ``kind`` (other peers' status changes may come first)."""
    while (msg := await ws_recv(ws))["type"] != kind:
        assert msg["type"] == "peerStatusChanged", msg
    return msg


async def listener(session: aiohttp.ClientSession, url: str,
                   path: str = "/ws") -> tuple[aiohttp.ClientWebSocketResponse, str]:
    ws = await session.ws_connect(url.replace("http", "ws") + path)
    welcome = await ws_recv(ws)
    assert welcome["type"] == "welcome"
    await ws.send_json({"type": "setPeerStatus", "roles": ["listener"], "meta": {"name": "t"}})
    # the peer is ready when it sees its own status (what gstwebrtc-api waits for)
    while True:
        msg = await ws_recv(ws)
        if msg["type"] == "peerStatusChanged" and msg["peerId"] == welcome["peerId"]:
            assert msg["roles"] == ["listener"]
            return ws, welcome["peerId"]


def test_signalling_errors_do_not_break_the_server() -> None:
    async def main() -> None:
        async with serving(demo(stamp=False)) as (_bridge, srv), aiohttp.ClientSession() as s:
            ws, _me = await listener(s, srv.url)
            cases = [
                ("{not json", "malformed JSON"),
                ('{"type":"dance"}', 'unknown message type "dance"'),
                ('{"type":"startSession"}', "startSession: missing field 'peerId'"),
                ('{"type":"startSession","peerId":"nobody"}', "unknown peer 'nobody'"),
                ('{"type":"endSession","sessionId":"s-1"}', "unknown session 's-1'"),
                ('{"type":"peer","sessionId":"s-1","ice":{"candidate":"c","sdpMLineIndex":0}}',
                 "unknown session 's-1'"),
                ('{"type":"error","details":"' + "x" * 100_000 + '"}',
                 "message too large: 100029 bytes > 65536"),
            ]
            for text, details in cases:
                await ws.send_str(text)
                assert await ws_recv(ws) == {"type": "error", "details": details}
            await ws.send_bytes(b"\x00")
            assert (await ws_recv(ws))["details"] == "binary messages are not supported"
            # the same socket still works
            await ws.send_json({"type": "list"})
            listed = await ws_recv(ws)
            assert [p["meta"]["name"] for p in listed["producers"]] == ["demo"]
            # a frame beyond the socket limit closes that socket only
            big, _ = await listener(s, srv.url, "/webrtc")
            await big.send_str("x" * (2 * 1024 * 1024))
            closed = await big.receive(5)
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            await ws.send_json({"type": "listConsumers"})
            assert await recv_type(ws, "listConsumers") == {"type": "listConsumers",
                                                            "consumers": []}
            # gstwebrtc-api's default URL has no path: "/" upgrades too
            root, _ = await listener(s, srv.url, "/")
            await root.close()
            assert srv.metrics.get("framecast_errors_total", kind="signalling") == 8
            await ws.close()

    run(main())


class SignallingConsumer:
    """What gstwebrtc-api does, with a GStreamer webrtcbin answering the producer's offer."""

    def __init__(self, bridge: Bridge, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.bridge, self.ws = bridge, ws
        self.got = Received()
        self.session_id: str | None = None
        self.pipe: Gst.Pipeline | None = None
        self.webrtc: Gst.Element | None = None
        self.outbox: asyncio.Queue[dict] = asyncio.Queue()

    def _build(self) -> None:
        self.pipe = Gst.Pipeline.new()
        self.webrtc = Gst.ElementFactory.make("webrtcbin")
        self.webrtc.set_property("stun-server", None)
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipe.add(self.webrtc)
        self.webrtc.connect("on-ice-candidate", self._on_ice)
        self.webrtc.connect("pad-added", self._on_pad)
        self.pipe.set_state(Gst.State.PLAYING)

    def _post(self, msg: dict) -> None:
        self.bridge.to_asyncio(self.outbox.put_nowait, msg)

    def _on_ice(self, _w: Gst.Element, mline: int, cand: str) -> None:
        self._post({"type": "peer", "sessionId": self.session_id,
                    "ice": {"candidate": cand, "sdpMLineIndex": mline}})

    def _on_pad(self, _w: Gst.Element, pad: Gst.Pad) -> None:
        bin_ = Gst.parse_bin_from_description(
            "rtph264depay ! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au "
            "! appsink name=sink emit-signals=true sync=false", True)
        bin_.get_by_name("sink").connect("new-sample", self.got.on_sample)
        self.pipe.add(bin_)
        bin_.sync_state_with_parent()
        pad.link(bin_.get_static_pad("sink"))

    def _on_offer(self, sdp: str) -> None:
        _, msg = GstSdp.SDPMessage.new_from_text(sdp)
        offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, msg)

        def answered(promise: Gst.Promise) -> None:
            reply = promise.get_reply()
            answer = reply.get_value("answer")
            text = answer.sdp.as_text()  # read before webrtcbin owns it
            self.webrtc.emit("set-local-description", answer, None)
            self._post({"type": "peer", "sessionId": self.session_id,
                        "sdp": {"type": "answer", "sdp": text}})

        def remote_set(_promise: Gst.Promise) -> None:
            self.webrtc.emit("create-answer", None, Gst.Promise.new_with_change_func(answered))

        self.webrtc.emit("set-remote-description", offer,
                         Gst.Promise.new_with_change_func(remote_set))

    async def play(self, producer_id: str) -> None:
        await self.bridge.run(self._build)
        await self.ws.send_json({"type": "startSession", "peerId": producer_id})

    async def play_offering(self, producer_id: str) -> None:
        """gstwebrtc-api with offerOptions: the consumer's offer rides in startSession."""
        offered: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def build() -> None:
            self._build()
            caps = Gst.Caps.from_string("application/x-rtp,media=video,encoding-name=H264,"
                                        "clock-rate=90000,payload=102,packetization-mode=(string)1")
            self.webrtc.emit("add-transceiver",
                             GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, caps)

            def created(promise: Gst.Promise) -> None:
                reply = promise.get_reply()  # keep it referenced: gi frees chained temporaries
                offer = reply.get_value("offer")
                text = offer.sdp.as_text()
                self.webrtc.emit("set-local-description", offer, None)
                self.bridge.to_asyncio(offered.set_result, text)

            self.webrtc.emit("create-offer", None, Gst.Promise.new_with_change_func(created))

        await self.bridge.run(build)
        offer = await asyncio.wait_for(offered, 5)
        await self.ws.send_json({"type": "startSession", "peerId": producer_id, "offer": offer})

    def _on_answer(self, sdp: str) -> None:
        _, msg = GstSdp.SDPMessage.new_from_text(sdp)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        self.webrtc.emit("set-remote-description", answer, None)

    async def pump(self, until: Callable[[], bool], timeout: float = 15) -> list[dict]:
        """Relay messages both ways until ``until()``; returns what the server sent."""
        seen: list[dict] = []
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"timed out; server said {seen[-5:]}"
            while not self.outbox.empty():
                await self.ws.send_json(self.outbox.get_nowait())
            try:
                msg = await ws_recv(self.ws, 0.05)
            except TimeoutError:
                continue
            seen.append(msg)
            if msg["type"] == "sessionStarted":
                self.session_id = msg["sessionId"]
            elif msg["type"] == "peer" and "sdp" in msg and msg["sdp"]["type"] == "answer":
                await self.bridge.run(self._on_answer, msg["sdp"]["sdp"])
            elif msg["type"] == "peer" and "sdp" in msg:
                assert msg["sdp"]["type"] == "offer"
                await self.bridge.run(self._on_offer, msg["sdp"]["sdp"])
            elif msg["type"] == "peer" and "ice" in msg:
                ice = msg["ice"]
                await self.bridge.run(self.webrtc.emit, "add-ice-candidate",
                                      ice["sdpMLineIndex"], ice["candidate"])
        return seen

    async def close(self) -> None:
        if self.pipe is not None:
            await self.bridge.run(self.pipe.set_state, Gst.State.NULL)


def test_signalling_session_streams_frames_and_cleans_up() -> None:
    async def main() -> None:
        async with serving(demo()) as (bridge, srv), aiohttp.ClientSession() as s:
            ws, _me = await listener(s, srv.url)
            await ws.send_json({"type": "list"})
            producer = (await ws_recv(ws))["producers"][0]
            assert producer["meta"]["name"] == "demo"
            c = SignallingConsumer(bridge, ws)
            await c.play(producer["id"])
            seen = await c.pump(lambda: len(c.got) >= 20)
            assert [m["type"] for m in seen][:2] == ["sessionStarted", "peer"]
            assert await srv.webrtcbin_count() == 1
            metas = [m for _pts, au in c.got.aus for m in framecast_metadata(au)]
            assert len(metas) >= 15, "frames arrived without framecast SEI"
            seqs = [m["seq"] for m in metas]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            # the consumer ends the session: the server removes its webrtcbin
            await ws.send_json({"type": "endSession", "sessionId": c.session_id})
            await wait_for(lambda: not srv.sessions, what="session end")
            assert await srv.webrtcbin_count() == 0
            # a second session, then the socket drops without a word
            c2 = SignallingConsumer(bridge, ws)
            await c2.play(producer["id"])
            await c2.pump(lambda: len(c2.got) >= 5)
            assert await srv.webrtcbin_count() == 1
            await ws.close()
            await c.close()
            await c2.close()
            await wait_for(lambda: not srv.sessions, what="socket drop")
            for _ in range(50):
                if await srv.webrtcbin_count() == 0:
                    break
                await asyncio.sleep(0.1)
            assert await srv.webrtcbin_count() == 0

    run(main())


def test_signalling_session_where_the_consumer_offers() -> None:
    async def main() -> None:
        async with serving(demo()) as (bridge, srv), aiohttp.ClientSession() as s:
            ws, _me = await listener(s, srv.url)
            await ws.send_json({"type": "list"})
            producer = (await recv_type(ws, "list"))["producers"][0]
            c = SignallingConsumer(bridge, ws)
            await c.play_offering(producer["id"])
            seen = await c.pump(lambda: len(c.got) >= 10)
            answers = [m for m in seen if m["type"] == "peer" and "sdp" in m]
            assert [m["sdp"]["type"] for m in answers] == ["answer"]
            assert "a=fmtp:102 " in answers[0]["sdp"]["sdp"]  # our payload type, answered
            assert any(framecast_metadata(au) for _pts, au in c.got.aus)
            await ws.close()
            await c.close()
            await wait_for(lambda: not srv.sessions, what="socket drop")
            for _ in range(50):
                if await srv.webrtcbin_count() == 0:
                    break
                await asyncio.sleep(0.1)
            assert await srv.webrtcbin_count() == 0

    run(main())


def test_whep_round_trip_frames_carry_our_sei() -> None:
    async def main() -> None:
        async with serving(demo()) as (bridge, srv):
            got = Received()
            src = make_webrtc_source(f"webrtc://127.0.0.1:{srv.port}/demo")
            pipe = await bridge.run(consumer_pipeline, src, got)
            await wait_for(lambda: len(got) >= 30 or got.errors, what="30 frames over WHEP")
            assert not got.errors
            assert await srv.webrtcbin_count() == 1
            with got.lock:
                aus = list(got.aus)
            with_meta = [framecast_metadata(au) for _pts, au in aus]
            assert sum(1 for m in with_meta if m) >= 0.95 * len(aus)
            first = next(m[0] for m in with_meta if m)
            assert {"seq", "loop", "pts_ns", "wallclock_ns"} <= set(first)
            # glass-to-glass on loopback through the WebRTC stack: well under a second
            assert 0 <= time.time_ns() - with_meta[-1][0]["wallclock_ns"] < 1_000_000_000
            await stop_pipeline(bridge, pipe)  # sends the WHEP DELETE
            await wait_for(lambda: not srv.mounts["demo"].whep, what="WHEP DELETE")
            assert await srv.webrtcbin_count() == 0

    run(main())


def test_whep_http_errors() -> None:
    async def main() -> None:
        async with serving(demo(stamp=False)) as (_bridge, srv), aiohttp.ClientSession() as s:
            sdp = {"Content-Type": "application/sdp"}
            async with s.post(f"{srv.url}/whep/nope", data="v=0\r\n", headers=sdp) as r:
                assert r.status == 404
                assert "unknown mount 'nope'" in await r.text()
            async with s.post(f"{srv.url}/whep/demo", data="hello", headers=sdp) as r:
                assert r.status == 400
            async with s.post(f"{srv.url}/whep/demo", data=b"\xff\xfe", headers=sdp) as r:
                assert r.status == 400
            async with s.post(f"{srv.url}/whep/demo", data="v=0\r\nm=garbage", headers=sdp) as r:
                assert r.status == 400
            vp8_only = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
                        "a=recvonly\r\na=rtpmap:96 VP8/90000\r\n")
            async with s.post(f"{srv.url}/whep/demo", data=vp8_only, headers=sdp) as r:
                assert r.status == 400
                assert "H.264" in await r.text()
            async with s.post(f"{srv.url}/whep/demo", data="v=0\r\n" + "a=x\r\n" * 20000,
                              headers=sdp) as r:
                assert r.status == 413
            async with s.delete(f"{srv.url}/whep/demo/0123") as r:
                assert r.status == 404
            srv.mounts["demo"].producer.max_viewers = 0
            async with s.post(f"{srv.url}/whep/demo", data=vp8_only, headers=sdp) as r:
                assert r.status == 503
            srv.mounts["demo"].producer.max_viewers = 100
            async with s.options(f"{srv.url}/whep/demo") as r:  # CORS preflight
                assert r.status == 204
                assert r.headers["Access-Control-Expose-Headers"] == "Location"
            async with s.delete(f"{srv.url}/whep/nope/0123") as r:
                assert r.status == 404
            assert await srv.webrtcbin_count() == 0
            # after all that, the server still serves
            async with s.get(f"{srv.url}/api/streams") as r:
                assert r.status == 200

    run(main())


def test_twenty_consumers_join_and_leave() -> None:
    async def main() -> None:
        async with serving(demo(fps=15, stamp=False)) as (bridge, srv):
            url = f"webrtc://127.0.0.1:{srv.port}/demo"
            consumers = []
            for _ in range(20):
                got = Received()
                pipe = await bridge.run(consumer_pipeline, make_webrtc_source(url), got)
                consumers.append((pipe, got))
            await wait_for(lambda: all(len(g) >= 3 or g.errors for _, g in consumers),
                           timeout=60, what="frames at 20 consumers")
            assert not [g.errors for _, g in consumers if g.errors]
            assert await srv.webrtcbin_count() == 20
            async with aiohttp.ClientSession() as s, s.get(f"{srv.url}/api/streams") as r:
                assert (await r.json())["streams"][0]["viewers"] == 20
            for pipe, _ in consumers:
                await stop_pipeline(bridge, pipe)
            await wait_for(lambda: not srv.mounts["demo"].whep, timeout=20, what="20 DELETEs")
            assert await srv.webrtcbin_count() == 0

    run(main())


def test_api_streams_and_metrics() -> None:
    async def main() -> None:
        async with serving(demo(stamp=False)) as (bridge, srv), aiohttp.ClientSession() as s:
            got = Received()
            pipe = await bridge.run(consumer_pipeline,
                                    make_webrtc_source(f"webrtc://127.0.0.1:{srv.port}/demo"), got)
            await wait_for(lambda: len(got) >= 10, what="frames")
            async with s.get(f"{srv.url}/api/streams") as r:
                body = await r.json()
            (stream,) = body["streams"]
            assert stream["name"] == stream["mount"] == "demo"
            assert stream["codec"] == "h264" and stream["profile"] == "constrained-baseline"
            assert stream["transcoded_for_webrtc"] is False
            assert stream["viewers"] == 1
            assert stream["rtsp_url"] == "rtsp://127.0.0.1:1/demo"
            assert stream["whep_url"] == "/whep/demo"
            async with s.get(f"{srv.url}/metrics") as r:
                assert r.headers["Content-Type"].startswith("text/plain")
                text = await r.text()
            lines = dict(line.rsplit(" ", 1) for line in text.splitlines()
                         if line and not line.startswith("#"))
            assert lines['framecast_webrtc_viewers{mount="demo"}'] == "1"
            assert int(lines['framecast_webrtc_frames_total{mount="demo"}']) >= 10
            assert int(lines['framecast_webrtc_bytes_sent_total{mount="demo"}']) > 1000
            assert lines['framecast_clients{kind="whep"}'] == "1"
            assert "# TYPE framecast_webrtc_frames_total counter" in text
            await stop_pipeline(bridge, pipe)
            await wait_for(lambda: not srv.mounts["demo"].whep, what="WHEP DELETE")
            async with s.get(f"{srv.url}/metrics") as r:
                assert 'framecast_webrtc_viewers{mount="demo"} 0' in await r.text()
            async with s.get(f"{srv.url}/") as r:
                assert r.status == 200 and "html" in r.headers["Content-Type"]
            async with s.get(f"{srv.url}/../../etc/passwd") as r:
                assert r.status == 404

    run(main())


def test_high_profile_mount_is_transcoded_once_and_keeps_its_metadata() -> None:
    """High profile with B-frames in; constrained-baseline out; every frame's SEI seq equals
    the index drawn in its pixels (the metadata followed its frame through decode/encode)."""

    async def main() -> None:
        source, info = demosources.index_source(fps=15, profile="high", bframes=2)
        spec = webrtc.mount_spec("high", source, info)
        async with serving(spec) as (bridge, srv):
            assert srv.mounts["high"].producer.transcoded
            got = Received()
            src = make_webrtc_source(f"webrtc://127.0.0.1:{srv.port}/high")
            pipe = await bridge.run(consumer_pipeline, src, got)
            await wait_for(lambda: len(got) >= 25 or got.errors, what="25 transcoded frames")
            await stop_pipeline(bridge, pipe)
            with got.lock:
                aus = list(got.aus)
        # decode what arrived (constrained-baseline: decode order = presentation order)
        pairs = seq_and_pixel_index(aus)
        assert len(pairs) >= 20
        assert all(seq is not None for seq, _ in pairs), f"a frame lost its metadata: {pairs}"
        assert [seq for seq, _ in pairs] == [idx for _, idx in pairs]
        sps_profile_idc = next(au for _, au in aus if b"\x00\x00\x01\x67" in au or
                               b"\x00\x00\x00\x01\x67" in au)
        i = sps_profile_idc.index(b"\x00\x00\x01\x67") + 4
        assert sps_profile_idc[i] == 66  # baseline family, not High (100)

    run(main())


@pytest.mark.parametrize(("profile", "bframes", "transcoded"),
                         [("main", 0, False), ("high", 0, True), ("main", 2, True),
                          ("h265", 0, True)])
def test_file_mount_loops_over_webrtc(tmp_path: Any, profile: str, bframes: int,
                                      transcoded: bool) -> None:
    """A 1 s file served over WHEP keeps going past its end (looped, no EOS); Main without
    B-frames passes through, High or B-frames are transcoded once."""
    from framecast.gst.clips import make_clip

    h265 = profile == "h265"
    clip = make_clip(tmp_path / f"{profile}.mp4", frames=15, fps=15, gop=15, bframes=bframes,
                     codec="h265" if h265 else "h264", profile=None if h265 else profile)
    source, info, status = file_source(str(clip), profile)
    assert info.codec == ("h265" if h265 else "h264")
    assert h265 or info.profile == profile

    async def main() -> None:
        spec = webrtc.mount_spec(profile, source, info, status=status)
        async with serving(spec) as (bridge, srv):
            assert srv.mounts[profile].producer.transcoded == transcoded
            got = Received()
            src = make_webrtc_source(f"webrtc://127.0.0.1:{srv.port}/{profile}")
            pipe = await bridge.run(consumer_pipeline, src, got)
            await wait_for(lambda: len(got) >= 40 or got.errors, timeout=20, what="frames")
            assert not got.errors
            async with aiohttp.ClientSession() as s, s.get(f"{srv.url}/api/streams") as r:
                (stream,) = (await r.json())["streams"]
            async with aiohttp.ClientSession() as s, s.get(f"{srv.url}/metrics") as r:
                metrics = await r.text()
            sei = f'framecast_sei_injected_total{{mount="{profile}",output="webrtc"}} '
            assert int(metrics.split(sei)[1].split()[0]) >= 25
            assert stream["loops"] >= 1
            assert stream["transcoded_for_webrtc"] == transcoded
            assert stream["webrtc"]["profile"] == ("constrained-baseline" if transcoded
                                                   else "main")
            if bframes:
                assert "B-frames" in stream["webrtc"]["transcode_reason"]
            if h265:
                assert "H265" in stream["webrtc"]["transcode_reason"]
            await stop_pipeline(bridge, pipe)
            with got.lock:
                aus = list(got.aus)
        # every decoded frame's metadata names the frame drawn in its pixels, across loops
        pairs = seq_and_pixel_index(aus)
        assert len(pairs) >= 20
        assert all(seq is not None for seq, _ in pairs), f"frames without metadata: {pairs}"
        assert [seq % 15 for seq, _ in pairs] == [idx for _, idx in pairs]
        assert max(seq for seq, _ in pairs) >= 15  # went round the loop

    run(main())


@pytest.mark.slow
def test_whep_viewer_that_vanishes_without_delete_is_removed() -> None:
    """No DELETE, no socket: the peer's RTCP (BYE or silence) ends the server's webrtcbin."""
    async def main() -> None:
        async with serving(demo(stamp=False)) as (bridge, srv):
            got = Received()
            src = make_webrtc_source(f"webrtc://127.0.0.1:{srv.port}/demo")
            pipe = await bridge.run(consumer_pipeline, src, got)
            await wait_for(lambda: len(got) >= 5, what="frames")
            src.resource = None  # forget the resource: no DELETE will be sent
            await stop_pipeline(bridge, pipe)
            assert srv.mounts["demo"].whep
            t0 = time.monotonic()
            await wait_for(lambda: not srv.mounts["demo"].whep, timeout=60, what="RTCP timeout")
            assert time.monotonic() - t0 < 45  # RTCP timeout: ~30 s here
            assert await srv.webrtcbin_count() == 0

    run(main())


def test_mounts_added_and_removed_at_run_time() -> None:
    """An RTSP-style bin (pay0) offered over WebRTC while running (app-frame mounts), then
    removed: listeners see the producer come and go, its viewer's session ends."""
    def rtsp_style_bin() -> Gst.Bin:
        return Gst.parse_bin_from_description(
            "videotestsrc is-live=true ! video/x-raw,format=I420,width=160,height=120 "
            "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 "
            "! video/x-h264,profile=constrained-baseline ! h264parse ! rtph264pay name=pay0",
            False)

    async def main() -> None:
        async with serving() as (bridge, srv), aiohttp.ClientSession() as s:
            ws, _me = await listener(s, srv.url)
            info = StreamInfo("h264", "constrained-baseline")
            assert await srv.add_mount(webrtc.mount_spec("app", bin_source(rtsp_style_bin), info))
            added = await recv_type(ws, "peerStatusChanged")
            assert added["roles"] == ["producer"] and added["meta"]["name"] == "app"
            c = SignallingConsumer(bridge, ws)
            await c.play(added["peerId"])
            await c.pump(lambda: len(c.got) >= 5)
            await srv.remove_mount("app")
            msgs = []
            while len([m for m in msgs if m["type"] in ("endSession", "peerStatusChanged")]) < 2:
                msgs.append(await ws_recv(ws))  # ICE messages still in flight may come first
            assert {"type": "endSession", "sessionId": c.session_id} in msgs
            assert {"type": "peerStatusChanged", "peerId": added["peerId"], "roles": [],
                    "meta": {"name": "app", "mount": "app"}} in msgs
            assert await srv.webrtcbin_count() == 0 and "app" not in srv.mounts
            async with s.post(f"{srv.url}/whep/app", data="v=0\r\nm=video 9 X 96\r\n") as r:
                assert r.status == 404
            await c.close()
            await ws.close()

    run(main())


async def stream_info(srv: HttpServer) -> dict:
    async with aiohttp.ClientSession() as s, s.get(f"{srv.url}/api/streams") as r:
        (stream,) = (await r.json())["streams"]
    return stream


async def metric(srv: HttpServer, line: str) -> str:
    async with aiohttp.ClientSession() as s, s.get(f"{srv.url}/metrics") as r:
        text = await r.text()
    return next(x.rsplit(" ", 1)[1] for x in text.splitlines() if x.startswith(line + " "))


def test_producer_runs_only_while_watched_and_restarts_as_a_fresh_stream() -> None:
    """No pipeline before the first viewer; PLAYING with one (WHEP); freed ``idle_stop`` after
    the last one left; the next viewer (signalling) gets a fresh stream whose seq starts over."""
    grace = 1.5

    async def main() -> None:
        async with serving(demo(), idle_stop=grace) as (bridge, srv), \
                aiohttp.ClientSession() as s:
            prod = srv.mounts["demo"].producer
            stream = await stream_info(srv)
            assert stream["producer_running"] is False and stream["viewers"] == 0
            assert stream["webrtc"]["producer_starts"] == 0 and stream["frames"] == 0
            assert await metric(srv, 'framecast_webrtc_producer_running{mount="demo"}') == "0"
            # first viewer (WHEP) starts it
            got = Received()
            src = make_webrtc_source(f"webrtc://127.0.0.1:{srv.port}/demo")
            pipe = await bridge.run(consumer_pipeline, src, got)
            await wait_for(lambda: len(got) >= 60 or got.errors, what="60 frames, cold start")
            assert not got.errors
            stream = await stream_info(srv)
            assert stream["producer_running"] is True and stream["viewers"] == 1
            assert stream["webrtc"]["producer_starts"] == 1
            assert stream["webrtc"]["stopping_in_s"] is None
            assert await metric(srv, 'framecast_webrtc_producer_running{mount="demo"}') == "1"
            with got.lock:
                first = [m["seq"] for _pts, au in got.aus for m in framecast_metadata(au)]
            assert len(first) >= 55
            await stop_pipeline(bridge, pipe)  # WHEP DELETE
            await wait_for(lambda: not srv.mounts["demo"].whep, what="WHEP DELETE")
            # still running during the grace period, then stopped and freed
            stream = await stream_info(srv)
            assert stream["producer_running"] is True and stream["viewers"] == 0
            assert 0 <= stream["webrtc"]["stopping_in_s"] <= grace
            await wait_for(lambda: not prod.running, timeout=grace + 10, what="idle stop")
            assert prod.pipeline is None and await srv.webrtcbin_count() == 0
            frames = (await stream_info(srv))["frames"]
            await asyncio.sleep(0.3)
            stream = await stream_info(srv)
            assert stream["producer_running"] is False and stream["frames"] == frames
            assert await metric(srv, 'framecast_webrtc_producer_running{mount="demo"}') == "0"
            # the next viewer (signalling, the producer offers) restarts it: a fresh stream
            ws, _me = await listener(s, srv.url)
            await ws.send_json({"type": "list"})
            producer = (await recv_type(ws, "list"))["producers"][0]
            c = SignallingConsumer(bridge, ws)
            await c.play(producer["id"])
            await c.pump(lambda: len(c.got) >= 10)
            assert prod.running and (await stream_info(srv))["webrtc"]["producer_starts"] == 2
            second = [m["seq"] for _pts, au in c.got.aus for m in framecast_metadata(au)]
            assert len(second) >= 8, "frames after the restart came without framecast SEI"
            assert second == sorted(second) and len(set(second)) == len(second)
            # seq counts from the new stream's start, not on from the first run
            assert second[0] < first[-1], (first[-1], second[:5])
            await ws.close()
            await c.close()
            await wait_for(lambda: not srv.sessions, what="socket drop")
            await wait_for(lambda: not prod.running, timeout=grace + 10, what="idle stop 2")
            assert await srv.webrtcbin_count() == 0

    run(main())
