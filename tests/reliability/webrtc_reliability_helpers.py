"""Helpers for the WebRTC / HTTP / signalling reliability tests.

The server under test runs in its own process (``python webrtc_reliability_helpers.py
'<json>'``) so that its threads, fds and RSS can be read from ``/proc/<pid>`` without the test's
own consumers (webrtcbins, GLib threads) mixed in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ProcStats:
    threads: int
    fds: int
    rss_kb: int
    names: list[str]


def proc_stats(pid: int) -> ProcStats:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    names = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            names.append((task / "comm").read_text().strip())
    return ProcStats(int(fields["Threads"]), len(os.listdir(f"/proc/{pid}/fd")),
                     int(fields["VmRSS"].split()[0]), sorted(names))


class ServerProcess:
    """``HttpServer`` with one live test-pattern mount (``demo``) in a child process."""

    def __init__(self, settings: dict[str, Any] | None = None, *, nofile: int | None = None,
                 log_path: Path | None = None, fps: int = 15,
                 relays: dict[str, str] | None = None) -> None:
        """``relays``: more mounts, name → rtsp:// URL (relayed as ``framecast serve`` would)."""
        self.spec = {"settings": settings or {}, "nofile": nofile, "fps": fps,
                     "relays": relays or {}}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._log: Any = None

    def __enter__(self) -> ServerProcess:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONUNBUFFERED="1",
                   GST_DEBUG=os.environ.get("FRAMECAST_TEST_SERVER_GST_DEBUG", "1"))
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, __file__, json.dumps(self.spec)],
                                     stdout=subprocess.PIPE, stderr=self._log, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert line.startswith("PORT "), f"server did not start: {line!r}"
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *_: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stats(self) -> ProcStats:
        assert self.proc is not None
        return proc_stats(self.proc.pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(cond: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def api_streams(url: str) -> list[dict[str, Any]]:
    import urllib.request

    with urllib.request.urlopen(f"{url}/api/streams", timeout=5) as r:
        return json.load(r)["streams"]


def metric(url: str, line: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
        text = r.read().decode()
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    raise AssertionError(f"{line} not in /metrics")


def webrtcbins(url: str) -> int:
    return sum(s["webrtc"]["webrtcbins"] for s in api_streams(url))


def healthy_viewer_plays(url: str, frames: int = 10, timeout: float = 20) -> None:
    """One WHEP consumer gets ``frames`` access units, then leaves (DELETE)."""
    from framecast.gst.whep_client import Consumers

    c = Consumers(f"webrtc://127.0.0.1:{url.rsplit(':', 1)[1]}/demo", 1).start()
    try:
        wait_until(lambda: c.frames[0] >= frames or bool(c.errors), timeout,
                   f"{frames} frames at a healthy viewer")
        assert not c.errors, c.errors
    finally:
        c.stop()


@contextlib.contextmanager
def consumers(url: str, n: int) -> Iterator[Any]:
    from framecast.gst.whep_client import Consumers

    c = Consumers(f"webrtc://127.0.0.1:{url.rsplit(':', 1)[1]}/demo", n).start()
    try:
        yield c
    finally:
        c.stop()


class _SignallingViewer:
    """A webrtcbin answering the producer's offer in one signalling session (GLib thread)."""

    def __init__(self, bridge: Any, sid: str, send: Callable[[dict[str, Any]], None]) -> None:
        from gi.repository import Gst, GstWebRTC

        self.sid, self.send, self.frames = sid, send, 0
        self.pipe = Gst.Pipeline.new()
        self.webrtc = Gst.ElementFactory.make("webrtcbin")
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipe.add(self.webrtc)
        self.webrtc.connect("on-ice-candidate", self._on_ice)
        self.webrtc.connect("pad-added", self._on_pad)
        self.pipe.set_state(Gst.State.PLAYING)

    def _on_ice(self, _w: Any, mline: int, cand: str) -> None:
        self.send({"type": "peer", "sessionId": self.sid,
                   "ice": {"candidate": cand, "sdpMLineIndex": mline}})

    def _on_pad(self, _w: Any, pad: Any) -> None:
        from gi.repository import Gst

        sink = Gst.ElementFactory.make("fakesink")
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

        def count(_p: Any, _i: Any) -> Any:
            self.frames += 1
            return Gst.PadProbeReturn.OK

        sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count)

    def on_offer(self, sdp: str) -> None:
        from gi.repository import Gst, GstSdp, GstWebRTC

        _, msg = GstSdp.SDPMessage.new_from_text(sdp)
        offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, msg)

        def answered(promise: Any) -> None:
            reply = promise.get_reply()
            answer = reply.get_value("answer")
            text = answer.sdp.as_text()
            self.webrtc.emit("set-local-description", answer, None)
            self.send({"type": "peer", "sessionId": self.sid,
                       "sdp": {"type": "answer", "sdp": text}})

        def remote_set(_promise: Any) -> None:
            self.webrtc.emit("create-answer", None, Gst.Promise.new_with_change_func(answered))

        self.webrtc.emit("set-remote-description", offer,
                         Gst.Promise.new_with_change_func(remote_set))

    def stop(self) -> None:
        from gi.repository import Gst

        self.pipe.set_state(Gst.State.NULL)


async def signalling_viewers(url: str, n: int, frames: int = 3, timeout: float = 60) -> None:
    """``n`` sessions over one signalling socket (the producer offers, as gstwebrtc-api's
    default), each until ``frames`` RTP packets arrived; then ended with ``endSession``."""
    import aiohttp

    from framecast.gst.runtime import Bridge

    bridge = Bridge(asyncio.get_running_loop())
    viewers: dict[str, _SignallingViewer] = {}
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def send(msg: dict[str, Any]) -> None:
        bridge.to_asyncio(outbox.put_nowait, msg)

    try:
        async with aiohttp.ClientSession() as s:
            ws = await s.ws_connect(url.replace("http", "ws") + "/ws")
            assert (await ws.receive_json(timeout=5))["type"] == "welcome"
            await ws.send_json({"type": "list"})
            producer = (await ws.receive_json(timeout=5))["producers"][0]["id"]
            for _ in range(n):
                await ws.send_json({"type": "startSession", "peerId": producer})
            deadline = time.monotonic() + timeout
            while len(viewers) < n or any(v.frames < frames for v in viewers.values()):
                assert time.monotonic() < deadline, "signalling viewers got no frames"
                while not outbox.empty():
                    await ws.send_json(outbox.get_nowait())
                try:
                    msg = await ws.receive_json(timeout=0.05)
                except TimeoutError:
                    continue
                if msg["type"] == "sessionStarted":
                    sid = msg["sessionId"]
                    viewers[sid] = await bridge.run(_SignallingViewer, bridge, sid, send)
                elif msg["type"] == "peer" and "sdp" in msg:
                    await bridge.run(viewers[msg["sessionId"]].on_offer, msg["sdp"]["sdp"])
                elif msg["type"] == "peer" and "ice" in msg:
                    ice = msg["ice"]
                    await bridge.run(viewers[msg["sessionId"]].webrtc.emit, "add-ice-candidate",
                                     ice["sdpMLineIndex"], ice["candidate"])
                else:
                    assert msg["type"] != "error", msg
            for sid in viewers:
                await ws.send_json({"type": "endSession", "sessionId": sid})
            await ws.close()
    finally:
        for v in viewers.values():
            await bridge.run(v.stop)
        bridge.close()


def ws_frame(text: str) -> bytes:
    """One masked (client → server) WebSocket text frame."""
    data = text.encode()
    mask = os.urandom(4)
    n = len(data)
    head = bytes([0x81])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def raw_websocket(port: int, path: str = "/ws", rcvbuf: int = 4096) -> socket.socket:
    """A WebSocket opened by hand on a socket with a tiny receive buffer: a client that can
    stop reading (aiohttp's client keeps reading in the background)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
              "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:100]
    return s


# A WHEP offer as a browser would send it, but with no candidates: ICE can never connect.
OFFER_WITHOUT_CANDIDATES = "\r\n".join([
    "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
    "a=group:BUNDLE 0", "a=msid-semantic: WMS",
    "m=video 9 UDP/TLS/RTP/SAVPF 102", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:Zz0b", "a=ice-pwd:4Wv9n3VgZkD5iKzY1Yc8hQmT", "a=ice-options:trickle",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass", "a=mid:0",
    "a=recvonly", "a=rtcp-mux", "a=rtpmap:102 H264/90000", "a=rtcp-fb:102 nack",
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    ""])


# -- the child process ---------------------------------------------------------------------------

async def _serve(spec: dict[str, Any]) -> None:
    import signal

    from framecast.config import Mount, Settings, User
    from framecast.gst import webrtc
    from framecast.gst.demosources import test_source
    from framecast.gst.runtime import Bridge
    from framecast.server import Server

    kw = {"http_port": 0, "rtsp_port": 0, **spec["settings"]}
    kw["users"] = tuple(User(n, pw) for n, pw in kw.get("users", {}).items())
    settings = Settings(**kw)
    source, info = test_source(fps=spec["fps"], stamp=False)
    bridge = Bridge(asyncio.get_running_loop())
    relays = tuple(Mount(name=n, source=url) for n, url in spec["relays"].items())
    srv = await Server(settings, relays, bridge).astart()
    await srv.http.add_mount(webrtc.mount_spec("demo", source, info))
    print(f"PORT {srv.http_port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await srv.astop()
    bridge.close()


def _main() -> None:
    import logging

    spec = json.loads(sys.argv[1])
    if spec.get("nofile"):
        resource.setrlimit(resource.RLIMIT_NOFILE, (spec["nofile"], spec["nofile"]))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(spec))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    _main()
