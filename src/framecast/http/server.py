"""The HTTP side of ``framecast serve`` (aiohttp, on the asyncio loop): the app and its mounts.

Routes (one module each)::

    GET  /, /<file>            the viewer (framecast.http.static)
    GET  /ws, /webrtc, / (Upgrade)  signalling WebSocket (framecast.http.hub)
    POST /whep/<mount>         WHEP: SDP offer → 201 + answer + Location (framecast.http.whep)
    DELETE /whep/<mount>/<id>  end that WHEP viewer
    GET  /api/streams          mounts, codecs, WebRTC profile / transcoding, viewers, loops, urls
    GET  /metrics              Prometheus text (framecast.http.api)

Each mount has one :class:`~framecast.producer.Producer` living on the GLib thread (made by
its :class:`~framecast.producer.MountSpec`'s factory: this package never imports GStreamer)
and registered as a producer peer in the signalling state machine. Producers are lazy: a mount's
pipeline runs from its first viewer until ``idle_stop`` seconds after its last one left. All
GLib work goes through the bridge (``framecast.gst.runtime.Bridge``); producer events come back
via ``bridge.to_asyncio``. Which mounts exist is decided by ``framecast.server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from framecast.config import DEFAULTS
from framecast.http.api import ApiRoutes
from framecast.http.auth import AuthRoutes
from framecast.http.hub import CLOSE_TIMEOUT, SignallingHub, _Socket
from framecast.http.listener import listen_socket
from framecast.http.logfilters import install_log_filters
from framecast.http.metrics import REGISTRY, Registry
from framecast.http.pending import PendingViewers
from framecast.http.ratelog import RateLimitedLog
from framecast.http.static import StaticRoutes, web_dir
from framecast.http.whep import WhepRoutes
from framecast.producer import MountSpec, ProducerOptions
from framecast.signalling.state import Signalling
from framecast.urls import http_url

log = logging.getLogger("framecast.http")

SIGNALLING_PATHS = ("/ws", "/webrtc", "/signalling")
IDLE_STOP = DEFAULTS.webrtc_idle_stop  # s a producer keeps running after its last viewer left


@dataclass(frozen=True)
class HttpLimits:
    """What one client may hold (``[server]`` keys of the same names; defaults from there)."""

    webrtc_pending_timeout: float = DEFAULTS.webrtc_pending_timeout  # s to connect ICE
    webrtc_max_pending: int = DEFAULTS.webrtc_max_pending  # viewers waiting for ICE, per mount
    webrtc_max_pending_per_peer: int = DEFAULTS.webrtc_max_pending_per_peer  # per address
    webrtc_max_viewers: int = DEFAULTS.webrtc_max_viewers  # per mount
    signalling_max_peers: int = DEFAULTS.signalling_max_peers  # open signalling sockets
    signalling_max_message: int = DEFAULTS.signalling_max_message  # bytes; larger: closed
    signalling_send_queue: int = DEFAULTS.signalling_send_queue  # bytes queued, then dropped
    http_max_body: int = DEFAULTS.http_max_body  # bytes of a request body (a WHEP offer)

    @classmethod
    def of(cls, settings: Any) -> HttpLimits:
        """The limits a :class:`framecast.config.Settings` names."""
        return cls(**{k: getattr(settings, k) for k in cls.__dataclass_fields__
                      if hasattr(settings, k)})


@dataclass
class _Mount:
    spec: MountSpec
    producer: Any  # framecast.producer.Producer (GLib thread)
    peer_id: str
    whep: set[str] = field(default_factory=set)


class HttpServer(AuthRoutes, StaticRoutes, ApiRoutes, SignallingHub, WhepRoutes):
    """The aiohttp app plus the WebRTC producers and the signalling hub."""

    def __init__(self, bridge: Any, mounts: Iterable[MountSpec], *, host: str = DEFAULTS.bind,
                 port: int = DEFAULTS.http_port, metrics: Registry = REGISTRY,
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
        self.app = web.Application(client_max_size=self.limits.http_max_body,
                                   middlewares=[self._auth])
        self._runner: web.AppRunner | None = None
        self._routes()
        self.app.on_response_prepare.append(self._cors)

    # -- start / stop ----------------------------------------------------------------------------

    async def add_mount(self, spec: MountSpec) -> bool:
        """Offer one more mount over WebRTC (announced to signalling listeners); False if its
        producer could not start (logged in one line)."""
        if spec.name in self.mounts:
            await self.remove_mount(spec.name)
        opts = ProducerOptions(self.metrics, self.idle_stop, self.limits.webrtc_max_viewers)
        try:
            producer = await self.bridge.run(spec.make_producer, opts)
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
        return http_url(self.host, self.port, self.ssl_context is not None)

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
