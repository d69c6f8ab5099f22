"""The signalling hub: WebSocket peers (webrtcsink's protocol) and our producers' sessions.

Consumers talk to :class:`framecast.signalling.state.Signalling`; messages for a producer peer
go to that mount's :class:`~framecast.producer.Producer` on the GLib thread (via the bridge),
and its events come back as signalling messages on the asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from framecast.http.metrics import Registry
from framecast.http.pending import PendingViewers
from framecast.http.ratelog import RateLimitedLog, bounded
from framecast.producer import ViewerEvents
from framecast.signalling import protocol as p
from framecast.signalling.state import Signalling

log = logging.getLogger("framecast.http")

CLOSE_TIMEOUT = 2.0  # s a close handshake may take before the connection is aborted


@dataclass
class _Socket:
    ws: web.WebSocketResponse
    remote: str
    transport: Any  # asyncio.Transport: aborted when a close would wait on a stuck peer
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    queued: int = 0  # bytes in ``queue``, bounded by signalling_send_queue
    task: asyncio.Task[None] | None = None
    dropped: bool = False


class SignallingHub:
    """Mixin of :class:`~framecast.http.server.HttpServer`: ``/ws`` and producer sessions."""

    bridge: Any
    limits: Any
    metrics: Registry
    ratelog: RateLimitedLog
    pending: PendingViewers
    signalling: Signalling
    sockets: dict[str, _Socket]
    sessions: dict[str, Any]
    by_peer: dict[str, Any]
    _closing: set[asyncio.Task[None]]

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

    def _to_producer(self, mount: Any, msg: p.Message) -> None:
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

    def _glib(self, mount: Any, sid: str | None, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the GLib thread, in order; a failure ends session ``sid``."""
        fut = self.bridge.call(fn, *args)

        def done(f: Any) -> None:
            exc = f.exception()
            if exc is not None and sid is not None:
                self.bridge.to_asyncio(self._session_failed, mount, sid, str(exc))

        fut.add_done_callback(done)

    def _session_events(self, mount: Any, sid: str) -> Any:
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

    def _session_failed(self, mount: Any, sid: str, reason: str) -> None:
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
