"""A Publisher's mount on every output of its server: WebRTC (WHEP reader, signalling),
/api/streams, joining and leaving a running server; URLs under TLS and IPv6. Run under
tools/netns-run (WebRTC needs a non-loopback interface)."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_webrtc_server import SignallingConsumer, framecast_metadata, listener, recv_type, ws_recv

import framecast
from framecast.config import Mount, Settings
from framecast.gst.runtime import Bridge
from framecast.pixelindex import read_index, render_frame
from framecast.server import Server

pytestmark = pytest.mark.timeout(120)
W, H, FPS = 320, 240, 30


def pushed_for(i: int) -> dict[str, Any]:
    """The user metadata pushed with frame ``i`` (its pixels show ``i`` too)."""
    return {"i": i, "boxes": [[i % 200, 20, 40, 30, f"f{i}"]]}


class Pusher:
    """Pushes ``render_frame(i)`` with :func:`pushed_for` at FPS until stopped."""

    def __init__(self, pub: Any) -> None:
        self.pub, self.stop_flag = pub, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop_flag.wait(1 / FPS):
            self.pub.push(render_frame(i, W, H), pushed_for(i))
            i += 1

    def __enter__(self) -> Pusher:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_flag.set()
        self.thread.join(5)


def user_part(md: dict[str, Any]) -> dict[str, Any]:
    return {k: md[k] for k in ("i", "boxes") if k in md}


def test_publisher_to_webrtc_reader_every_frame_has_its_metadata() -> None:
    """Own server (HTTP on): framecast.open("webrtc://…") decodes frames whose user metadata is
    exactly what was pushed with the frame whose index their pixels show; passthrough."""
    pub = framecast.Publisher("cam", W, H, FPS, gop=15,
                              settings=Settings(rtsp_port=0, http_port=0))
    try:
        assert pub.http_url is not None and pub.http_url.endswith("/?stream=cam")
        port = pub.server.http_port
        with Pusher(pub):
            url = f"webrtc://127.0.0.1:{port}/cam"
            with framecast.open(url, decode=True, timeout=20) as reader:
                frames = [f for _, f in zip(range(45), reader, strict=False)]
            streams = _get_json(f"http://127.0.0.1:{port}/api/streams")["streams"]
    finally:
        pub.close()
    assert len(frames) == 45
    wrong = []
    for f in frames:
        px = read_index(f.image)
        got = user_part(f.metadata[0]) if f.metadata else None
        if got != pushed_for(px):
            wrong.append((px, got))
    assert not wrong, f"{len(wrong)}/45 frames without their own metadata: {wrong[:5]}"
    assert len({read_index(f.image) for f in frames}) >= 40  # a moving stream, not one frame
    (cam,) = streams
    assert cam["name"] == "cam" and cam["transcoded_for_webrtc"] is False
    assert cam["webrtc"]["profile"] == "constrained-baseline"


def test_publisher_feeds_rtsp_and_webrtc_at_once() -> None:
    """Both outputs watched together: each reader gets every frame with its own metadata (each
    output runs its own media from the same pushes)."""
    pub = framecast.Publisher("both", W, H, FPS, gop=15,
                              settings=Settings(rtsp_port=0, http_port=0))
    got: dict[str, list[Any]] = {}

    def read(kind: str, url: str) -> None:
        with framecast.open(url, decode=True, timeout=20) as reader:
            got[kind] = [f for _, f in zip(range(30), reader, strict=False)]

    try:
        with Pusher(pub):
            readers = [threading.Thread(target=read, args=a) for a in (
                ("rtsp", pub.url), ("webrtc", f"webrtc://127.0.0.1:{pub.server.http_port}/both"))]
            for t in readers:
                t.start()
            for t in readers:
                t.join(40)
    finally:
        pub.close()
    assert set(got) == {"rtsp", "webrtc"}
    for kind, frames in got.items():
        assert len(frames) == 30, kind
        bad = [f for f in frames
               if not f.metadata or user_part(f.metadata[0]) != pushed_for(read_index(f.image))]
        assert not bad, f"{kind}: {len(bad)} frames without their own metadata"


def test_publisher_joins_and_leaves_a_running_server() -> None:
    """A server started from asyncio; a Publisher made in a worker thread is listed at once
    (/api/streams, signalling producers), streams with its metadata to a signalling viewer, and
    on close the viewer gets endSession and the mount is gone everywhere."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        bridge = Bridge(loop)
        server = await Server(Settings(rtsp_port=0, http_port=0), (), bridge).astart()
        base = server.http_url
        try:
            async with aiohttp.ClientSession() as s:
                ws, _me = await listener(s, base)
                pub = await loop.run_in_executor(
                    None, lambda: framecast.Publisher("app", W, H, FPS, server=server, gop=15))
                # listed when the constructor returns: no waiting
                async with s.get(f"{base}/api/streams") as r:
                    names = [x["name"] for x in (await r.json())["streams"]]
                assert names == ["app"]
                added = await recv_type(ws, "peerStatusChanged")
                assert added["roles"] == ["producer"] and added["meta"]["name"] == "app"
                await ws.send_json({"type": "list"})
                listed = await recv_type(ws, "list")
                assert [p["id"] for p in listed["producers"]] == [added["peerId"]]
                c = SignallingConsumer(bridge, ws)
                with Pusher(pub):
                    await c.play(added["peerId"])
                    await c.pump(lambda: len(c.got) >= 20, timeout=30)
                    with c.got.lock:
                        aus = [au for _pts, au in c.got.aus]
                    await loop.run_in_executor(None, pub.close)
                msgs = []
                while len([m for m in msgs if m["type"] in ("endSession", "peerStatusChanged")
                           ]) < 2:
                    msgs.append(await ws_recv(ws, 10))
                assert {"type": "endSession", "sessionId": c.session_id} in msgs
                assert any(m["type"] == "peerStatusChanged" and m["roles"] == []
                           and m["peerId"] == added["peerId"] for m in msgs)
                await c.close()
                async with s.get(f"{base}/api/streams") as r:
                    assert (await r.json())["streams"] == []
                await ws.close()
        finally:
            await server.astop()
            bridge.close()
        mds = [user_part(m) for au in aus for m in framecast_metadata(au)]
        assert len(mds) >= 15 and all(md == pushed_for(md["i"]) for md in mds)
        idx = [md["i"] for md in mds]
        assert idx == sorted(idx) and len(set(idx)) == len(idx)

    asyncio.run(main())


# -- the RTSP URL in /api/streams, built in one place ------------------------------------------

def _get_json(url: str, context: ssl.SSLContext | None = None) -> Any:
    with urllib.request.urlopen(url, timeout=10, context=context) as res:
        return json.loads(res.read())


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from framecast.gst.clips import make_clip

    return make_clip(tmp_path_factory.mktemp("urls") / "c.mp4", frames=15, fps=15, gop=15)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    yield str(cert), str(key)


def test_api_rtsp_url_under_tls(clip: Path, tls_files: tuple[str, str]) -> None:
    cert, key = tls_files
    settings = Settings(rtsp_port=0, http_port=0, tls_cert=cert, tls_key=key)
    with Server(settings, (Mount(name="c", file=str(clip)),)) as srv:
        assert srv.http_url is not None and srv.http_url.startswith("https://127.0.0.1:")
        insecure = ssl.create_default_context()
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
        (c,) = _get_json(f"{srv.http_url}/api/streams", insecure)["streams"]
        assert c["rtsp_url"] == f"rtsps://127.0.0.1:{srv.port}/c" == srv.rtsp_url("c")


def test_api_rtsp_url_with_an_ipv6_bind(clip: Path) -> None:
    with Server(Settings(bind="::1", rtsp_port=0, http_port=0),
                (Mount(name="c", file=str(clip)),)) as srv:
        assert srv.http_url == f"http://[::1]:{srv.http_port}"
        (c,) = _get_json(f"{srv.http_url}/api/streams")["streams"]
        assert c["rtsp_url"] == f"rtsp://[::1]:{srv.port}/c"


def test_publisher_without_http_serves_rtsp_only() -> None:
    with framecast.Publisher("quiet", W, H, FPS, http=False,
                             settings=Settings(rtsp_port=0)) as pub:
        assert pub.server.http is None and pub.http_url is None
        assert pub.url.startswith("rtsp://127.0.0.1:")


def test_http_port_in_use_is_one_clear_error() -> None:
    import socket

    from framecast.server import HttpPortError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(HttpPortError, match=rf"^HTTP port {port}: .*in use.*turn HTTP off"):
            framecast.Publisher("x", W, H, FPS, settings=Settings(rtsp_port=0, http_port=port))
