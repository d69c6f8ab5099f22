"""The HTTP side of ``framecast serve`` (aiohttp, on the asyncio loop).

Routes::

    GET  /, /<file>            the viewer (built by vite into framecast/web; a plain page if not)
    GET  /ws, /webrtc, / (Upgrade)  signalling WebSocket (webrtcsink's protocol, gstwebrtc-api)
    POST /whep/<mount>         WHEP: SDP offer → 201 + answer (all candidates in it) + Location
    DELETE /whep/<mount>/<id>  end that WHEP viewer
    GET  /api/streams          mounts, codecs, WebRTC profile / transcoding, viewers, loops, urls
    GET  /metrics              Prometheus text from framecast.http.metrics.REGISTRY

Each mount has one :class:`~framecast.gst.webrtc.MountProducer` living on the GLib thread and
registered as a producer peer in the signalling state machine. Producers are lazy: a mount's
pipeline runs from its first viewer until ``idle_stop`` seconds after its last one left. All
GLib work goes through the :class:`~framecast.gst.runtime.Bridge`; webrtcbin events come back
via ``bridge.to_asyncio``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hmac
import html
import logging
import ssl
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from framecast.http.listener import listen_socket
from framecast.http.logfilters import install_log_filters
from framecast.http.metrics import REGISTRY, Registry
from framecast.http.pending import PendingViewers
from framecast.http.ratelog import RateLimitedLog, bounded
from framecast.signalling import protocol as p
from framecast.signalling.state import Signalling

log = logging.getLogger("framecast.http")

MAX_SDP_BYTES = 64 * 1024
WS_MAX_MESSAGE = 1024 * 1024  # larger frames close the socket (1009); up to here we reply error
SIGNALLING_PATHS = ("/ws", "/webrtc", "/signalling")
GATHER_TIMEOUT = 10.0
IDLE_STOP = 5.0  # seconds a producer keeps running after its last viewer left
CLOSE_TIMEOUT = 2.0  # s a close handshake may take before the connection is aborted


@dataclass(frozen=True)
class HttpLimits:
    """What one client may hold (``[server]`` keys of the same names, see config.Settings)."""

    webrtc_pending_timeout: float = 15.0  # s a viewer may take to connect ICE
    webrtc_max_pending: int = 64  # viewers waiting for ICE, per mount
    webrtc_max_pending_per_peer: int = 32  # viewers waiting for ICE, per client address
    webrtc_max_viewers: int = 100  # per mount
    signalling_max_peers: int = 200  # open signalling sockets
    signalling_max_message: int = WS_MAX_MESSAGE  # bytes; larger frames close the socket
    signalling_send_queue: int = 1024 * 1024  # bytes queued for a peer before it is dropped
    http_max_body: int = MAX_SDP_BYTES  # bytes of a request body (a WHEP offer)


def check_basic_auth(header: str | None, users: Mapping[str, str]) -> bool:
    """True when ``header`` (an Authorization value) names a configured user and password."""
    if not header or not header.startswith("Basic "):
        return False
    try:
        name, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    expected = users.get(name)
    # compare in constant time, and compare something even for unknown names
    return hmac.compare_digest((expected or "\0").encode(), password.encode()) and \
        expected is not None


FAVICON_SVG = (b"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
               b"<rect width='16' height='16' rx='3' fill='#222'/><rect x='3' y='4' width='10' "
               b"height='8' fill='none' stroke='#3f3' stroke-width='2'/></svg>")


def web_dir() -> Path:
    return Path(str(resources.files("framecast") / "web"))


@dataclass
class MountSpec:
    """What the HTTP server needs to offer one mount over WebRTC."""

    name: str
    source: Any  # framecast.gst.webrtc.SourceFactory
    info: Any  # framecast.gst.webrtc.StreamInfo
    transcode: bool | None = None  # None: decide from the profile
    rtsp_url: str | None = None
    status: Callable[[], Mapping[str, Any]] | None = None  # e.g. {"loops": 3} from the looper


@dataclass
class _Mount:
    spec: MountSpec
    producer: Any  # MountProducer (GLib thread)
    peer_id: str
    whep: set[str] = field(default_factory=set)


@dataclass
class _Socket:
    ws: web.WebSocketResponse
    remote: str
    transport: Any  # asyncio.Transport: aborted when a close would wait on a stuck peer
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    queued: int = 0  # bytes in ``queue``, bounded by signalling_send_queue
    task: asyncio.Task[None] | None = None
    dropped: bool = False


class HttpServer:
    """The aiohttp app plus the WebRTC producers and the signalling hub."""

    def __init__(self, bridge: Any, mounts: Iterable[MountSpec], *, host: str = "127.0.0.1",
                 port: int = 8080, metrics: Registry = REGISTRY,
                 static_dir: Path | None = None, users: Mapping[str, str] | None = None,
                 ssl_context: ssl.SSLContext | None = None,
                 idle_stop: float | None = IDLE_STOP, limits: HttpLimits | None = None) -> None:
        """``idle_stop``: seconds a mount's producer pipeline keeps running once its last viewer
        left (it starts again with the next viewer); None keeps every producer always on."""
        self.bridge = bridge
        self.limits = limits or HttpLimits()
        self.pending = PendingViewers(self.limits.webrtc_pending_timeout,
                                      self.limits.webrtc_max_pending,
                                      self.limits.webrtc_max_pending_per_peer)
        self.ratelog = RateLimitedLog(log)
        self._sweeper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.idle_stop = idle_stop
        self.users = dict(users or {})
        self.ssl_context = ssl_context
        self.specs = list(mounts)
        self.host, self.port = host, port
        self.metrics = metrics
        self.static_dir = static_dir or web_dir()
        self.signalling = Signalling()
        self.mounts: dict[str, _Mount] = {}
        self.by_peer: dict[str, _Mount] = {}
        self.sockets: dict[str, _Socket] = {}
        self.sessions: dict[str, _Mount] = {}  # signalling sessions held by our producers
        # mount → the edges (e.g. Janus) carrying it, for /api/streams (framecast.edge)
        self.edges: Callable[[str], list[dict[str, Any]]] | None = None
        self.app = web.Application(client_max_size=self.limits.http_max_body,
                                   middlewares=[self._auth])
        self._runner: web.AppRunner | None = None
        self._routes()
        self.app.on_response_prepare.append(self._cors)

    # -- start / stop ----------------------------------------------------------------------------

    async def add_mount(self, spec: MountSpec) -> bool:
        """Offer one more mount over WebRTC (announced to signalling listeners); False if its
        producer could not start (logged in one line)."""
        from framecast.gst import webrtc

        if spec.name in self.mounts:
            await self.remove_mount(spec.name)

        def build() -> Any:
            prod = webrtc.MountProducer(spec.name, spec.source, spec.info,
                                        transcode=spec.transcode, metrics=self.metrics,
                                        idle_stop=self.idle_stop,
                                        max_viewers=self.limits.webrtc_max_viewers)
            if self.idle_stop is None:
                prod.start()
            return prod

        try:
            producer = await self.bridge.run(build)
        except Exception as exc:  # one bad mount never takes the others down
            log.error("/%s: WebRTC producer failed: %s", spec.name, exc)
            return False
        peer_id, out = self.signalling.add_producer({"name": spec.name, "mount": spec.name})
        mount = _Mount(spec, producer, peer_id)
        self.mounts[spec.name] = mount
        self.by_peer[peer_id] = mount
        self._deliver(out)
        return True

    async def remove_mount(self, name: str) -> None:
        """Stop offering ``name``: its sessions end, listeners see the producer leave."""
        mount = self.mounts.pop(name, None)
        if mount is None:
            return
        self.by_peer.pop(mount.peer_id, None)
        for sid in [s for s, m in self.sessions.items() if m is mount]:
            self.sessions.pop(sid, None)
            self.pending.done(sid)
        self._deliver(self.signalling.disconnect(mount.peer_id))
        for rid in mount.whep:
            self.pending.done(rid)
        mount.whep.clear()
        await self.bridge.run(mount.producer.stop)

    async def start(self) -> HttpServer:
        for spec in self.specs:
            await self.add_mount(spec)
        self.metrics.add_collector(self._collect)
        install_log_filters()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        # our own listening socket: running out of fds refuses connections in one log line
        # instead of asyncio's traceback storm (framecast.http.listener)
        sock = listen_socket(self.host, self.port)
        self.port = sock.getsockname()[1]  # port 0 → the one we got
        site = web.SockSite(self._runner, sock, ssl_context=self.ssl_context)
        await site.start()
        self._sweeper = asyncio.create_task(self._sweep_pending())
        log.info("HTTP on %s (viewer, /ws signalling, WHEP, /api/streams, /metrics)", self.url)
        return self

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def stop(self) -> None:
        self.metrics.remove_collector(self._collect)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for peer_id, sock in list(self.sockets.items()):
            self._drop(peer_id, sock, None, code=1001)  # going away
        if self._closing:
            await asyncio.wait(self._closing, timeout=CLOSE_TIMEOUT + 1)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for mount in self.mounts.values():
            await self.bridge.run(mount.producer.stop)
        self.mounts.clear()

    async def webrtcbin_count(self) -> int:
        """Live webrtcbin elements across all mounts (counted in the pipelines themselves)."""
        def count() -> int:
            return sum(m.producer.webrtcbin_count() for m in self.mounts.values())

        return await self.bridge.run(count)

    # -- routing ---------------------------------------------------------------------------------

    def _routes(self) -> None:
        r = self.app.router
        for path in SIGNALLING_PATHS:
            r.add_get(path, self._ws)
        r.add_post("/whep/{mount}", self._whep_post)
        r.add_route("OPTIONS", "/whep/{mount}", self._preflight)
        r.add_route("OPTIONS", "/whep/{mount}/{rid}", self._preflight)
        r.add_delete("/whep/{mount}/{rid}", self._whep_delete)
        r.add_get("/api/streams", self._api_streams)
        r.add_get("/metrics", self._metrics)
        r.add_get("/", self._index)
        r.add_get("/favicon.ico", self._favicon)
        r.add_get("/{path:.+}", self._static)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # Users configured → every route but CORS preflight needs them (Basic; use TLS).
        if self.users and request.method != "OPTIONS" and \
                not check_basic_auth(request.headers.get("Authorization"), self.users):
            self.metrics.inc("framecast_errors_total", kind="http_401")
            # one line per address and interval (the lead wires throttling in later)
            self.ratelog.log(logging.WARNING, f"401 {request.remote}",
                             "HTTP: authentication failed from %s (%s %s)", request.remote,
                             request.method, bounded(request.path, 80))
            return web.Response(status=401, text="authentication required\n",
                                headers={"WWW-Authenticate": 'Basic realm="framecast"'})
        return await handler(request)

    async def _preflight(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    @staticmethod
    async def _cors(request: web.Request, response: web.StreamResponse) -> None:
        # WHEP players and dashboards on other origins (the server binds loopback by default)
        if request.path.startswith(("/whep/", "/api/", "/metrics")):
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Expose-Headers"] = "Location"

    async def _index(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._ws(request)  # gstwebrtc-api's default URL has no path
        index = self.static_dir / "index.html"
        if index.is_file():
            return web.FileResponse(index)
        return web.Response(text=self._fallback_page(), content_type="text/html")

    async def _favicon(self, request: web.Request) -> web.Response:
        # browsers ask for it on any page (the fallback page, /api in a tab): no 404 lines
        return web.Response(body=FAVICON_SVG, content_type="image/svg+xml",
                            headers={"Cache-Control": "max-age=86400"})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        root = self.static_dir.resolve()
        try:
            target = (root / request.match_info["path"]).resolve()
        except (OSError, ValueError):
            raise web.HTTPNotFound() from None
        if not target.is_relative_to(root) or not target.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(target)

    def _fallback_page(self) -> str:
        items = "".join(
            f"<li>{html.escape(n)}: WHEP <code>/whep/{html.escape(n)}</code></li>"
            for n in self.mounts)
        return ("<!doctype html><title>framecast</title><h1>framecast</h1>"
                "<p>The viewer is not built (run <code>make setup</code>).</p>"
                f"<ul>{items}</ul><p><a href='/api/streams'>/api/streams</a> · "
                "<a href='/metrics'>/metrics</a></p>")

    # -- /api/streams and /metrics ---------------------------------------------------------------

    async def _api_streams(self, request: web.Request) -> web.Response:
        def describe() -> dict[str, dict[str, Any]]:
            return {name: m.producer.describe() for name, m in self.mounts.items()}

        described = await self.bridge.run(describe)
        streams = []
        for name, mount in self.mounts.items():
            d = described[name]
            status = dict(mount.spec.status() if mount.spec.status else {})
            streams.append({
                "name": name,
                "mount": name,
                "codec": d["codec"],
                "profile": d["profile"],
                "b_frames": d.get("b_frames", False),
                "audio": d.get("audio"),  # RTSP only: WebRTC carries the video
                "transcoded_for_webrtc": d["webrtc"]["transcoded"],
                "webrtc": d["webrtc"],
                "viewers": d["webrtc"]["viewers"],
                "producer_running": d["webrtc"]["producer_running"],
                "loops": status.pop("loops", None),
                "rtsp_url": mount.spec.rtsp_url,
                "whep_url": f"/whep/{name}",
                "producer_id": mount.peer_id,
                "frames": d["frames"],
                "error": d["error"],
                "edges": self.edges(name) if self.edges is not None else [],
                **status,
            })
        return web.json_response({"streams": streams})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics.render(), content_type="text/plain",
                            charset="utf-8", headers={"X-Content-Type-Options": "nosniff"})

    def _collect(self, reg: Registry) -> None:
        reg.set_gauge("framecast_clients", len(self.sockets), kind="signalling")
        reg.set_gauge("framecast_clients", len(self.sessions), kind="webrtc")
        reg.set_gauge("framecast_clients", sum(len(m.whep) for m in self.mounts.values()),
                      kind="whep")
        for name, m in self.mounts.items():
            # a running total kept by the elements themselves (plain ints, no GStreamer call)
            reg.set_gauge("framecast_sei_injected_total", m.producer.sei_injected,
                          mount=name, output="webrtc")
            reg.set_gauge("framecast_webrtc_producer_running", int(m.producer.running),
                          mount=name)

    # -- signalling WebSocket --------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if len(self.sockets) >= self.limits.signalling_max_peers:
            self.metrics.inc("framecast_errors_total", kind="signalling_refused")
            self.ratelog.log(logging.WARNING, "signalling-full",
                             "signalling: %d peers already; refused %s",
                             len(self.sockets), request.remote)
            return web.Response(status=503, text="too many signalling peers\n",
                                headers={"Retry-After": "10"})
        ws = web.WebSocketResponse(max_msg_size=self.limits.signalling_max_message, heartbeat=30)
        await ws.prepare(request)
        sock = _Socket(ws, request.remote or "?", request.transport)
        peer_id, out = self.signalling.connect()
        self.sockets[peer_id] = sock
        sock.task = asyncio.create_task(self._writer(peer_id, sock))
        log.info("signalling: peer %s connected from %s", peer_id, sock.remote)
        self._deliver(out)
        try:
            async for frame in ws:
                if sock.dropped:
                    break
                if frame.type == WSMsgType.TEXT:
                    self._on_text(peer_id, frame.data)
                elif frame.type == WSMsgType.BINARY:
                    self._reply_error(peer_id, "binary messages are not supported")
                elif frame.type == WSMsgType.ERROR:
                    log.info("signalling: peer %s socket error: %s", peer_id,
                             bounded(ws.exception()))
        finally:
            if self.sockets.get(peer_id) is sock:  # not already dropped
                self._forget(peer_id, sock)
                log.info("signalling: peer %s left", peer_id)
            if ws.close_code in (None, 1006) and sock.transport is not None:
                # no clean close (e.g. heartbeat timeout: the peer stopped answering): closing
                # would wait for unsent data to drain into a peer that does not read
                sock.transport.abort()
        return ws

    def _forget(self, peer_id: str, sock: _Socket) -> None:
        """The peer is gone for everyone: unregistered, its sessions ended, its writer stopped."""
        self.sockets.pop(peer_id, None)
        sock.dropped = True
        if sock.task is not None:
            sock.task.cancel()
        while not sock.queue.empty():  # free what it never read
            sock.queue.get_nowait()
        sock.queued = 0
        self._deliver(self.signalling.disconnect(peer_id))

    def _drop(self, peer_id: str, sock: _Socket, reason: str | None, code: int = 1008) -> None:
        """End a peer now: counted gone at once; its socket closed, or aborted if the close
        handshake would wait on a peer that does not read."""
        if sock.dropped:
            return
        if reason is not None:
            log.warning("signalling: peer %s (%s) %s; dropped", peer_id, sock.remote, reason)
        self._forget(peer_id, sock)
        task = asyncio.ensure_future(self._close(sock, code))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(sock: _Socket, code: int) -> None:
        try:
            await asyncio.wait_for(sock.ws.close(code=code), CLOSE_TIMEOUT)
        except (TimeoutError, ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            # a peer that stops reading never lets the close frame (or the FIN after a pending
            # write) out: transport.close() would wait forever, abort does not
            if sock.transport is not None:
                sock.transport.abort()

    async def _writer(self, peer_id: str, sock: _Socket) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError, RuntimeError):
            while (text := await sock.queue.get()) is not None:
                sock.queued -= len(text)
                await sock.ws.send_str(text)

    def _on_text(self, peer_id: str, text: str) -> None:
        self.metrics.inc("framecast_signalling_messages_total")
        try:
            msg = p.parse(text)
        except p.ProtocolError as exc:
            self._reply_error(peer_id, str(exc))
            return
        if isinstance(msg, p.SetPeerStatus) and "producer" in msg.roles:
            sock = self.sockets.get(peer_id)
            self.ratelog.log(logging.WARNING, f"producer {sock.remote if sock else peer_id}",
                             "signalling: peer %s (%s) tried to announce itself as a producer "
                             "(meta %s); refused", peer_id, sock.remote if sock else "?",
                             bounded(msg.meta, 80))
        self._deliver(self.signalling.handle(peer_id, msg))

    def _reply_error(self, peer_id: str, details: str) -> None:
        self._deliver([(peer_id, p.Error(details))])

    def _deliver(self, out: list[tuple[str, p.Message]]) -> None:
        for dest, msg in out:
            if (sock := self.sockets.get(dest)) is not None:
                if isinstance(msg, p.Error):
                    self.metrics.inc("framecast_errors_total", kind="signalling")
                text = p.dump(msg)
                if sock.queued + len(text) > self.limits.signalling_send_queue:
                    self.metrics.inc("framecast_errors_total", kind="signalling_slow")
                    self._drop(dest, sock, f"is not reading ({sock.queued} bytes queued)")
                    continue
                sock.queued += len(text)
                sock.queue.put_nowait(text)
            elif (mount := self.by_peer.get(dest)) is not None:
                self._to_producer(mount, msg)

    # -- our producers' side of signalling sessions ----------------------------------------------

    def _to_producer(self, mount: _Mount, msg: p.Message) -> None:
        prod = mount.producer
        match msg:
            case p.StartSession(session_id=str(sid), offer=offer):
                self.sessions[sid] = mount
                consumer = self.signalling.sessions.get(sid)
                csock = self.sockets.get(consumer.consumer) if consumer else None
                peer = csock.remote if csock else "?"
                if (why := self.pending.refusal(mount.spec.name, peer)) is not None:
                    self._session_failed(mount, sid, why)
                    return
                self.pending.add(sid, mount.spec.name, peer)
                events = self._session_events(mount, sid)
                self._glib(mount, sid, prod.add_viewer, sid, events, offer)
            case p.Peer(session_id=sid, sdp=p.Sdp(sdp_type=t, sdp=sdp)):
                self._glib(mount, sid, prod.set_remote, sid, t, sdp)
            case p.Peer(session_id=sid, ice=p.Ice(candidate=c, sdp_mline_index=m)):
                self._glib(mount, sid, prod.add_ice, sid, m, c)
            case p.EndSession(session_id=sid):
                self.sessions.pop(sid, None)
                self.pending.done(sid)
                self._glib(mount, None, prod.remove_viewer, sid)
            case p.Error(details=details):
                log.debug("%s: error for our producer: %s", mount.spec.name, bounded(details))

    def _glib(self, mount: _Mount, sid: str | None, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the GLib thread, in order; a failure ends session ``sid``."""
        fut = self.bridge.call(fn, *args)

        def done(f: Any) -> None:
            exc = f.exception()
            if exc is not None and sid is not None:
                self.bridge.to_asyncio(self._session_failed, mount, sid, str(exc))

        fut.add_done_callback(done)

    def _session_events(self, mount: _Mount, sid: str) -> Any:
        from framecast.gst.webrtc import ViewerEvents

        def send(msg: p.Message) -> None:
            if sid in self.sessions:
                self._deliver(self.signalling.handle(mount.peer_id, msg))

        return ViewerEvents(
            post=self.bridge.to_asyncio,
            on_sdp=lambda t, s: send(p.Peer(sid, sdp=p.Sdp(t, s))),
            on_ice=lambda m, c: send(p.Peer(sid, ice=p.Ice(c, m))),
            on_closed=lambda reason: self._session_failed(mount, sid, reason),
            on_connected=lambda: self.pending.done(sid),
        )

    def _session_failed(self, mount: _Mount, sid: str, reason: str) -> None:
        self.pending.done(sid)
        if self.sessions.pop(sid, None) is None:
            return
        log.info("%s: session %s ended: %s", mount.spec.name, sid, reason)
        self.metrics.inc("framecast_errors_total", kind="webrtc_session")
        consumer = self.signalling.sessions.get(sid)
        out = self.signalling.handle(mount.peer_id, p.EndSession(sid))
        if consumer is not None:
            out.insert(0, (consumer.consumer, p.Error(f"session {sid}: {reason}")))
        self._deliver(out)
        self._glib(mount, None, mount.producer.remove_viewer, sid)

    # -- viewers that never connect --------------------------------------------------------------

    async def _sweep_pending(self) -> None:
        """Free viewers still waiting for ICE after ``webrtc_pending_timeout`` seconds."""
        step = min(1.0, max(0.05, self.pending.timeout / 4))
        while True:
            await asyncio.sleep(step)
            for item in self.pending.expired():
                mount = self.mounts.get(item.mount)
                if mount is None:
                    continue
                reason = f"ICE not connected after {self.pending.timeout:g} s"
                self.metrics.inc("framecast_errors_total", kind="webrtc_pending_timeout")
                if item.key in mount.whep:
                    log.info("%s: WHEP viewer %s (%s) freed: %s", item.mount, item.key,
                             item.peer, reason)
                    with contextlib.suppress(Exception):
                        await self.bridge.run(mount.producer.remove_viewer, item.key)
                    mount.whep.discard(item.key)
                elif item.key in self.sessions:
                    self._session_failed(mount, item.key, reason)

    # -- WHEP ------------------------------------------------------------------------------------

    async def _whep_post(self, request: web.Request) -> web.Response:
        from framecast.gst.webrtc import (
            SOURCE_FAILED,
            SourceUnavailable,
            TooManyViewers,
            ViewerEvents,
            WebRTCError,
        )

        name = request.match_info["mount"]
        mount = self.mounts.get(name)
        if mount is None:
            return self._whep_error(404, f"unknown mount '{bounded(name, 60)}'")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._whep_error(413, f"offer larger than {self.limits.http_max_body} bytes")
        try:
            offer = body.decode("utf-8")
        except UnicodeDecodeError:
            return self._whep_error(400, "offer is not UTF-8 text")
        if not offer.startswith("v=0") or "\nm=" not in offer:
            return self._whep_error(400, "body is not an SDP offer")
        peer = request.remote or "?"
        if (why := self.pending.refusal(name, peer)) is not None:
            self.ratelog.log(logging.WARNING, f"pending {peer}", "%s: WHEP from %s refused: %s",
                             name, peer, why)
            return self._whep_error(503, why, retry_after=int(self.pending.timeout) + 1)
        rid = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str] = loop.create_future()

        def gathered(sdp: str) -> None:
            if not answer.done():
                answer.set_result(sdp)

        def closed(reason: str) -> None:
            self.pending.done(rid)
            if not answer.done():
                failed = reason.startswith(SOURCE_FAILED)
                answer.set_exception((SourceUnavailable if failed else WebRTCError)(reason))
            if rid in mount.whep:
                mount.whep.discard(rid)
                log.info("%s: WHEP viewer %s ended: %s", name, rid, reason)

        events = ViewerEvents(post=self.bridge.to_asyncio, on_gathered=gathered, on_closed=closed,
                              on_connected=lambda: self.pending.done(rid))
        self.pending.add(rid, name, peer)  # before the viewer exists: counted at once
        try:
            await self.bridge.run(mount.producer.add_viewer, rid, events, offer)
        except (TooManyViewers, SourceUnavailable) as exc:
            self.pending.done(rid)
            return self._whep_error(503, str(exc), retry_after=5)
        except WebRTCError as exc:
            self.pending.done(rid)
            return self._whep_error(400, str(exc))
        except Exception:
            self.pending.done(rid)
            log.exception("%s: WHEP viewer setup failed", name)
            return self._whep_error(500, "viewer setup failed (see the server log)")
        mount.whep.add(rid)
        try:
            sdp = await asyncio.wait_for(answer, GATHER_TIMEOUT)
        except (TimeoutError, WebRTCError) as exc:
            self.pending.done(rid)
            mount.whep.discard(rid)
            await self.bridge.run(mount.producer.remove_viewer, rid)
            reason = str(exc) or "ICE gathering timed out"
            if isinstance(exc, SourceUnavailable):
                return self._whep_error(503, reason, retry_after=5)
            return self._whep_error(400 if isinstance(exc, WebRTCError) else 504, reason)
        if rid not in mount.whep:  # failed while we waited
            self.pending.done(rid)
            return self._whep_error(500, "viewer ended during negotiation")
        location = f"/whep/{name}/{rid}"
        log.info("%s: WHEP viewer %s from %s", name, rid, request.remote)
        return web.Response(status=201, body=sdp.encode(), content_type="application/sdp",
                            headers={"Location": location, "ETag": f'"{rid}"'})

    async def _whep_delete(self, request: web.Request) -> web.Response:
        name, rid = request.match_info["mount"], request.match_info["rid"]
        mount = self.mounts.get(name)
        if mount is None or rid not in mount.whep:
            return self._whep_error(404, f"unknown WHEP session '{rid}'")
        self.pending.done(rid)
        await self.bridge.run(mount.producer.remove_viewer, rid)
        mount.whep.discard(rid)  # after the removal: "gone from whep" means no webrtcbin left
        log.info("%s: WHEP viewer %s deleted", name, rid)
        return web.Response(status=200, text="ended\n")

    def _whep_error(self, status: int, text: str, retry_after: int | None = None) -> web.Response:
        self.metrics.inc("framecast_errors_total", kind=f"whep_{status}")
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return web.Response(status=status, text=text + "\n", headers=headers)


# -- integration with `framecast serve` ---------------------------------------------------------

def mount_specs(mounts: Iterable[Any], settings: Any = None) -> list[MountSpec]:
    """MountSpecs for ``mounts`` (MountSpec as is; config mounts via the WebRTC source seam)."""
    from framecast.gst.webrtc import source_for_mount

    specs = []
    for m in mounts:
        if isinstance(m, MountSpec):
            specs.append(m)
            continue
        name = getattr(m, "name", None) or str(m)
        try:
            source, info, status = source_for_mount(m)
        except Exception as exc:  # one bad mount never takes the others down
            log.error("/%s: not offered over WebRTC: %s", name, exc)
            continue
        rtsp = None
        if settings is not None and getattr(settings, "rtsp_port", None):
            host = getattr(settings, "bind", None) or "127.0.0.1"
            host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            rtsp = f"rtsp://{host}:{settings.rtsp_port}/{name}"
        specs.append(MountSpec(name, source, info, rtsp_url=rtsp, status=status))
    return specs


async def start_http(bridge: Any, mounts: Iterable[Any], settings: Any = None) -> HttpServer:
    """Start the HTTP/WebRTC side of ``framecast serve``; ``await server.stop()`` ends it.

    ``settings`` may carry ``bind`` (default 127.0.0.1), ``http_port`` (default 8080),
    ``rtsp_port`` (for the URLs in /api/streams), ``webrtc_idle_stop`` (seconds, default
    :data:`IDLE_STOP`; negative = producers always on) and the :class:`HttpLimits` keys.
    """
    host = getattr(settings, "bind", None) or "127.0.0.1"
    port = getattr(settings, "http_port", None)
    # probing files blocks for a moment: not on the asyncio loop
    specs = await asyncio.to_thread(mount_specs, list(mounts), settings)
    users = {u.name: u.password for u in getattr(settings, "users", ()) or ()}
    ctx = None
    if getattr(settings, "tls", False):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    idle: float | None = getattr(settings, "webrtc_idle_stop", IDLE_STOP)
    if idle is not None and idle < 0:
        idle = None
    limits = HttpLimits(**{f.name: getattr(settings, f.name)
                           for f in dataclasses.fields(HttpLimits) if hasattr(settings, f.name)})
    server = HttpServer(bridge, specs, host=host, port=8080 if port is None else port,
                        users=users, ssl_context=ctx, idle_stop=idle, limits=limits)
    return await server.start()
