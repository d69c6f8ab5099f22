"""Janus edges: framecast keeps one streaming mountpoint per published mount on each edge.

One asyncio task per edge reconciles every ``poll`` seconds: it lists the edge's mountpoints,
removes ours that this process did not make (a previous run's, left by a crash), and creates
the missing ones. So a Janus that restarts (session gone, mountpoints gone) is repopulated at
the next poll, and a Janus that is down costs one log line and a retry with backoff; framecast
itself keeps serving. ``stop()`` removes our mountpoints and the session.

Feeds: ``rtsp`` (Janus pulls the mount's RTSP URL) or ``rtp`` (framecast pushes RTP H.264 from
its own WebRTC producer, transcoded once when browsers cannot play the mount as it is; see
:mod:`framecast.gst.janus_feed`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from framecast.config import JanusEdge
from framecast.edge import janus_api as api
from framecast.edge.janus_api import JanusError, Mountpoint

log = logging.getLogger("framecast.edge")

POLL = 2.0          # s between reconciliations (Janus restart → mountpoints back within this)
RETRY_MAX = 5.0     # s: longest wait between attempts while an edge is down
TIMEOUT = 5.0       # s for one HTTP request to Janus
# aiohttp's own errors, timeouts, refused connections, and answers that are not JSON
DOWN_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError)


class JanusClient:
    """One Janus session with a streaming plugin handle, over the HTTP API."""

    def __init__(self, http: aiohttp.ClientSession, url: str, api_secret: str | None = None,
                 token: str | None = None, timeout: float = TIMEOUT) -> None:
        self.http = http
        self.url = url.rstrip("/")
        self.api_secret = api_secret
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session: int | None = None
        self.handle: int | None = None

    async def _post(self, path: str, kind: str, **fields: Any) -> Mapping[str, Any]:
        body = api.request(kind, api_secret=self.api_secret, token=self.token, **fields)
        async with self.http.post(self.url + path, json=body, timeout=self.timeout) as r:
            if r.status != 200:
                raise JanusError(r.status, f"HTTP {r.status}")
            return api.check(await r.json(content_type=None))

    async def connect(self) -> None:
        self.session = self.handle = None
        sid = api.new_id(await self._post("", "create"))
        self.handle = api.new_id(await self._post(f"/{sid}", "attach", plugin=api.STREAMING))
        self.session = sid

    async def message(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.session is None:
            await self.connect()
        answer = await self._post(f"/{self.session}/{self.handle}", "message", body=dict(body))
        return answer

    async def close(self) -> None:
        if self.session is not None:
            sid, self.session = self.session, None
            try:
                await self._post(f"/{sid}", "destroy")
            except (*DOWN_ERRORS, JanusError) as exc:
                log.debug("janus session destroy: %s", exc)


class JanusWsClient:
    """The same session and handle over Janus's WebSocket transport (``ws://``/``wss://``):
    requests and answers are matched by transaction; a closed socket fails what waits."""

    def __init__(self, http: aiohttp.ClientSession, url: str, api_secret: str | None = None,
                 token: str | None = None, timeout: float = TIMEOUT) -> None:
        self.http = http
        self.url = url
        self.api_secret = api_secret
        self.token = token
        self.timeout = timeout
        self.session: int | None = None
        self.handle: int | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.waiting: dict[str, asyncio.Future[Mapping[str, Any]]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def _socket(self) -> aiohttp.ClientWebSocketResponse:
        if self.ws is None or self.ws.closed:
            self.ws = await self.http.ws_connect(self.url, protocols=("janus-protocol",),
                                                 timeout=aiohttp.ClientWSTimeout(
                                                     ws_receive=None, ws_close=self.timeout))
            self.reader = asyncio.create_task(self._read(self.ws))
        return self.ws

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = msg.json()
                if not isinstance(data, dict) or data.get("janus") == "ack":
                    continue  # events and acks: nothing here waits for them
                fut = self.waiting.pop(str(data.get("transaction")), None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
        except (aiohttp.ClientError, ValueError):
            pass
        finally:
            for fut in self.waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionResetError("janus WebSocket closed"))
            self.waiting.clear()

    async def _send(self, kind: str, **fields: Any) -> Mapping[str, Any]:
        ws = await self._socket()
        body = api.request(kind, api_secret=self.api_secret, token=self.token, **fields)
        fut: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[body["transaction"]] = fut
        try:
            await ws.send_json(body)
            return api.check(await asyncio.wait_for(fut, self.timeout))
        finally:
            self.waiting.pop(body["transaction"], None)

    async def connect(self) -> None:
        self.session = self.handle = None
        sid = api.new_id(await self._send("create"))
        self.handle = api.new_id(await self._send("attach", session_id=sid,
                                                  plugin=api.STREAMING))
        self.session = sid

    async def message(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.session is None:
            await self.connect()
        return await self._send("message", session_id=self.session, handle_id=self.handle,
                                body=dict(body))

    async def close(self) -> None:
        if self.session is not None:
            sid, self.session = self.session, None
            try:
                await self._send("destroy", session_id=sid)
            except (*DOWN_ERRORS, JanusError) as exc:
                log.debug("janus session destroy: %s", exc)
        if self.ws is not None:
            await self.ws.close()
            self.ws = None
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
            self.reader = None


def make_client(http: aiohttp.ClientSession, edge: JanusEdge) -> JanusClient | JanusWsClient:
    """The HTTP API client, or the WebSocket one for a ``ws://``/``wss://`` url."""
    cls = JanusWsClient if edge.url.startswith(("ws://", "wss://")) else JanusClient
    return cls(http, edge.url, edge.api_secret, edge.token)


class Feed(Protocol):
    """framecast's RTP sender into an rtp-type mountpoint (lives on the GLib thread)."""

    async def target(self, host: str, port: int, audio_port: int | None = None) -> None: ...
    async def stop(self) -> None: ...


@dataclass(frozen=True)
class EdgeMount:
    """A mount as the edges need it."""

    name: str
    rtsp_url: str
    browser_ok: bool = True           # H.264 Constrained Baseline/Baseline/Main, no B-frames
    reason: str = ""                  # why not (a transcode reason)
    profile_level_id: str = "42e01f"  # what an rtp feed announces
    audio: str = "none"               # what WebRTC gets of its audio (streaminfo.webrtc_audio)


FeedFactory = Callable[[EdgeMount], Awaitable[Feed]]


@dataclass
class EdgeLink:
    """One edge: its client, our mountpoints on it, its rtp feeds, its state."""

    edge: JanusEdge
    client: JanusClient | JanusWsClient
    origin: str
    mounts: list[EdgeMount]
    feeds: FeedFactory | None = None
    mountpoints: dict[str, Mountpoint] = field(default_factory=dict)
    rtp: dict[str, Feed] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)  # mounts whose video reaches Janus now
    failing: set[str] = field(default_factory=set)  # mounts Janus refused (said once)
    up: bool = False
    said_down: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.edge.url

    @property
    def rtp_host(self) -> str:
        return self.edge.rtp_host or urlsplit(self.edge.url).hostname or "127.0.0.1"

    async def reconcile(self) -> None:
        """Make Janus hold exactly our mountpoints (one per mount)."""
        listed = api.listed(await self.client.message({"request": "list"}), self.origin)
        wanted = {m.name: m for m in self.mounts}
        present: dict[str, Mountpoint] = {}
        for mp in listed:
            mine = self.mountpoints.get(mp.mount)
            if mp.mount in wanted and mine is not None and mine.id == mp.id:
                present[mp.mount] = mine
            else:  # a previous run's (or a duplicate): nobody else will ever remove it
                await self._destroy(mp.id)
        made = 0
        for name, m in wanted.items():
            if name in present:
                continue
            try:
                present[name] = await self._create(m)
            except JanusError as exc:
                if exc.session_gone:
                    raise
                # e.g. Janus could not reach our RTSP: said once, tried again every poll
                if name not in self.failing:
                    log.warning("janus %s: cannot create /%s: %s (retrying)", self.name, name,
                                exc.reason)
                    self.failing.add(name)
                continue
            self.failing.discard(name)
            made += 1
        self.mountpoints = present
        live = set()
        for name, mp in present.items():
            if api.live(await self.client.message(api.info(mp.id))):
                live.add(name)
            elif name in self.rtp and mp.port is not None:
                # no video: our RTP feed may have stalled (a relay's camera gone); the feed
                # starts itself again if so
                await self.rtp[name].target(self.rtp_host, mp.port, mp.audio_port)
        self.live = live
        if made:
            log.info("janus %s: %d mountpoint(s) created: %s", self.name, made,
                     ", ".join(f"/{n}→{mp.id} ({self.feed_for(wanted[n])})"
                               for n, mp in present.items()))

    def feed_for(self, m: EdgeMount) -> str:
        """auto: Janus pulls the RTSP of a mount browsers play as it is (no extra pipeline
        here); the others (video, or audio that is not Opus) are pushed as RTP, transcoded
        once."""
        if self.edge.feed != "auto":
            return self.edge.feed
        return "rtsp" if m.browser_ok and m.audio != "transcoded" else "rtp"

    async def _create(self, m: EdgeMount) -> Mountpoint:
        key = self.edge.admin_key
        if self.feed_for(m) == "rtp":
            body = api.create_rtp(m.name, self.origin, self.rtp_iface, m.profile_level_id, key,
                                  audio=m.audio != "none")
        else:  # Janus relays what RTSP carries: Opus only reaches browsers
            body = api.create_rtsp(m.name, self.origin, self._rtsp_url(m), key,
                                   audio=m.audio == "passthrough")
        mp = api.created(await self.client.message(body), m.name)
        if self.feed_for(m) == "rtp" and mp.port is not None and self.feeds is not None:
            feed = self.rtp.get(m.name)
            if feed is None:
                feed = self.rtp[m.name] = await self.feeds(m)
            await feed.target(self.rtp_host, mp.port, mp.audio_port)
        return mp

    @property
    def rtp_iface(self) -> str:
        return self.rtp_host

    def _rtsp_url(self, m: EdgeMount) -> str:
        """The mount's RTSP URL as this edge reaches it (``origin_host`` replaces the host)."""
        if not self.edge.origin_host:
            return m.rtsp_url
        u = urlsplit(m.rtsp_url)
        host = self.edge.origin_host
        netloc = f"{host}:{u.port}" if u.port else host
        return u._replace(netloc=netloc).geturl()

    async def _destroy(self, mountpoint_id: int) -> None:
        try:
            await self.client.message(api.destroy(mountpoint_id, self.edge.admin_key))
        except JanusError as exc:
            if exc.code != api.ERR_NO_MOUNTPOINT:
                raise

    async def run(self, poll: float) -> None:
        backoff = 0.5
        while True:
            try:
                await self.reconcile()
                if self.said_down:
                    log.warning("janus %s: back; mountpoints recreated", self.name)
                self.up, self.said_down, backoff = True, False, 0.5
                await asyncio.sleep(poll)
                continue
            except JanusError as exc:
                if exc.session_gone:  # Janus restarted (or timed us out): a new session now
                    self.client.session = None
                    self.mountpoints.clear()
                    self.live.clear()
                    await asyncio.sleep(0.2)  # never a busy loop, whatever Janus answers
                    continue
                reason = str(exc)
            except DOWN_ERRORS as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except Exception as exc:  # an answer we did not expect: the edge task must live on
                log.debug("janus %s: reconcile", self.name, exc_info=True)
                reason = f"unexpected {type(exc).__name__}: {exc}"
            self.up = False
            self.live.clear()
            self.client.session = None
            if not self.said_down:
                log.warning("janus %s: down (%s); framecast keeps serving, retrying",
                            self.name, reason)
                self.said_down = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RETRY_MAX)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        if self.client.session is not None:
            for mp in list(self.mountpoints.values()):
                try:
                    await self._destroy(mp.id)
                except (*DOWN_ERRORS, JanusError) as exc:
                    log.debug("janus %s: destroy %s: %s", self.name, mp.id, exc)
                    break
            await self.client.close()
        self.mountpoints.clear()

    async def stop_feeds(self) -> None:
        for feed in self.rtp.values():
            await feed.stop()
        self.rtp.clear()


class EdgeManager:
    """Every configured edge, started with the mount list, stopped with the server."""

    def __init__(self, edges: Sequence[JanusEdge], mounts: Sequence[EdgeMount], origin: str,
                 feeds: FeedFactory | None = None, poll: float = POLL) -> None:
        self.poll = poll
        self.origin = origin
        self.http: aiohttp.ClientSession | None = None
        self.links: list[EdgeLink] = []
        self._edges = list(edges)
        self._mounts = list(mounts)
        self._feeds = feeds

    def _published(self, edge: JanusEdge) -> list[EdgeMount]:
        unknown = sorted(set(edge.mounts) - {m.name for m in self._mounts})
        if unknown:  # a config's names are checked when read; command-line files only here
            log.warning("janus %s: no mount named %s: not published", edge.url,
                        ", ".join(unknown))
        out = []
        for m in self._mounts:
            if edge.mounts and m.name not in edge.mounts:
                continue
            if edge.feed == "rtsp" and not m.browser_ok:  # asked for explicitly
                # Janus relays the RTSP as it is: a browser could not play it
                log.warning("janus %s: /%s not published with feed = \"rtsp\" (%s): use "
                            "feed = \"rtp\" or \"auto\", which send it transcoded", edge.url,
                            m.name, m.reason)
                continue
            out.append(m)
        return out

    async def start(self) -> EdgeManager:
        self.http = aiohttp.ClientSession()
        for edge in self._edges:
            client = make_client(self.http, edge)
            link = EdgeLink(edge, client, self.origin, self._published(edge), self._feeds)
            link.task = asyncio.create_task(link.run(self.poll), name=f"janus {edge.url}")
            self.links.append(link)
        return self

    async def stop(self, timeout: float = 5.0) -> None:
        """Remove our mountpoints from every edge (at most ``timeout`` s: a hung edge must not
        hold the shutdown; what it keeps is replaced by the next run)."""
        try:
            await asyncio.wait_for(asyncio.gather(*(link.stop() for link in self.links),
                                                  return_exceptions=True), timeout)
        except TimeoutError:
            log.warning("janus: edges did not answer within %.0f s; their mountpoints are "
                        "replaced at the next start", timeout)
        for link in self.links:  # our own pipelines stop whatever the edges did
            await link.stop_feeds()
        self.links.clear()
        if self.http is not None:
            await self.http.close()
            self.http = None

    def describe(self, mount: str) -> list[dict[str, Any]]:
        """The edges that carry ``mount`` (for /api/streams)."""
        out = []
        for link in self.links:
            mp = link.mountpoints.get(mount)
            m = next((m for m in link.mounts if m.name == mount), None)
            if m is None:
                continue
            out.append({"kind": "janus", "url": link.edge.browser_url, "feed": link.feed_for(m),
                        "mountpoint": mp.id if mp else None,
                        # up: viewers can join now (Janus answers and the video reaches it)
                        "up": link.up and mp is not None and mount in link.live})
        return out
