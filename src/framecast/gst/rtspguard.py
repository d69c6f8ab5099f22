"""Keeps every RTSP connection within bounds: slow readers, silent and surplus connections.

gst-rtsp-server 1.22 never closes a client that stops reading: after ~10 s of backlog it
silently removes the client's transport and leaves the socket ESTABLISHED with megabytes
unsent. Here a GLib timer (on the server's own context, so ``RTSPClient.close()`` runs on the
GLib thread) looks at each connection's socket:

- unsent bytes (``SIOCOUTQNSD``) non-zero at every look for ``max_lag`` seconds: the reader
  is stalled or slower than the stream, it is closed with one log line naming it and its mount;
- no request within ``first_request_timeout`` seconds of connecting: closed; no request for
  ``idle_timeout`` seconds and no session (nothing playing): closed;
- more than ``max_clients`` connections: the newest is closed at once.
"""

from __future__ import annotations

import fcntl
import logging
import struct
import time
from dataclasses import dataclass
from typing import Any

from gi.repository import GLib  # noqa: I001 - after runtime's gi.require_version

from framecast.logs import RateLimiter, bounded

log = logging.getLogger("framecast.rtsp")

SIOCOUTQNSD = 0x894B  # bytes in the send queue not yet sent (Linux)
SIOCOUTQ = 0x5411     # TIOCOUTQ: bytes not yet acknowledged (fallback)
TICK_S = 0.25


def unsent_bytes(fd: int) -> int:
    """Bytes queued in the kernel for ``fd`` and not yet sent (-1 if unknown)."""
    for req in (SIOCOUTQNSD, SIOCOUTQ):
        try:
            return struct.unpack("i", fcntl.ioctl(fd, req, b"\0\0\0\0"))[0]
        except OSError:
            continue
    return -1


def _has_sessions(client: Any) -> bool:
    found: list[bool] = []

    def look(*_a: Any) -> Any:
        from gi.repository import GstRtspServer

        found.append(True)
        return GstRtspServer.RTSPFilterResult.KEEP

    client.session_filter(look)
    return bool(found)


@dataclass
class ClientState:
    client: Any                 # GstRtspServer.RTSPClient
    peer: str
    connected_at: float
    path: str = ""
    requested: bool = False
    last_request: float = 0.0
    lag_since: float | None = None
    closing: bool = False
    refused: bool = False       # over a limit: 503 to any request, closed at the next tick

    def where(self) -> str:
        return f" on {self.path}" if self.path else ""


class ClientGuard:
    """Tracks the server's clients; :meth:`attach` starts the timer on a context."""

    def __init__(self, max_lag: float = 5.0, first_request_timeout: float = 10.0,
                 max_clients: int = 0, idle_timeout: float = 60.0) -> None:
        self.max_lag = max_lag
        self.first_request_timeout = first_request_timeout
        self.idle_timeout = idle_timeout
        self.max_clients = max_clients
        self.clients: dict[int, ClientState] = {}
        self.dropped = 0            # closed for lagging (for tests and metrics)
        self.refused = 0            # closed as surplus or silent
        self._source: GLib.Source | None = None
        self._limiter = RateLimiter(burst=3, interval_s=10.0)

    # -- life -------------------------------------------------------------------------------
    def attach(self, context: GLib.MainContext) -> None:
        if self._source is None:
            self._source = GLib.timeout_source_new(int(TICK_S * 1000))
            self._source.set_callback(self._tick)
            self._source.attach(context)

    def detach(self) -> None:
        if self._source is not None:
            self._source.destroy()
            self._source = None
        self.clients.clear()

    # -- clients ----------------------------------------------------------------------------
    def add(self, client: Any, peer: str) -> ClientState:
        """Track ``client``; one too many is marked ``refused`` (closed at the next tick: it
        is not attached yet while client-connected runs)."""
        st = ClientState(client, peer, time.monotonic())
        st.last_request = st.connected_at
        active = self.active()
        if self.max_clients and active >= self.max_clients:
            self.refuse(st, "limit", "client %s refused: %d RTSP connections already "
                        "(max_clients)", peer, active)
        self.clients[id(client)] = st
        return st

    def refuse(self, st: ClientState, key: str, fmt: str, *args: Any) -> None:
        self.refused += 1
        st.refused = True
        self.say(key, fmt, *args)

    def active(self) -> int:
        return sum(1 for c in self.clients.values() if not c.refused and not c.closing)

    def remove(self, client: Any) -> None:
        self.clients.pop(id(client), None)

    def get(self, client: Any) -> ClientState | None:
        return self.clients.get(id(client))

    def count_on(self, path: str, but: Any = None) -> int:
        return sum(1 for c in self.clients.values()
                   if c.path == path and c.client is not but and not c.closing)

    def close(self, st: ClientState) -> None:
        if not st.closing:
            st.closing = True
            st.client.close()

    def say(self, key: str, fmt: str, *args: Any) -> None:
        ok, suppressed = self._limiter.allow(key)
        if ok:
            more = f" ({suppressed} more like it suppressed)" if suppressed else ""
            log.warning(bounded(fmt % args, 300) + more)

    # -- the timer --------------------------------------------------------------------------
    def _tick(self, *_args: Any) -> bool:
        now = time.monotonic()
        for st in list(self.clients.values()):
            if st.closing:
                continue
            try:
                self._check(st, now)
            except Exception as exc:  # a vanished connection must not stop the timer
                log.debug("guard: %s: %s", st.peer, exc)
        return GLib.SOURCE_CONTINUE

    def request(self, st: ClientState) -> None:
        st.requested = True
        st.last_request = time.monotonic()

    def _check(self, st: ClientState, now: float) -> None:
        if st.refused:
            self.close(st)
            return
        if st.requested and self.idle_timeout > 0 and \
                now - st.last_request >= self.idle_timeout and not _has_sessions(st.client):
            self.refused += 1
            self.say("idle", "client %s%s idle for %.0f s without a session; closing", st.peer,
                     st.where(), now - st.last_request)
            self.close(st)
            return
        if not st.requested and self.first_request_timeout > 0 and \
                now - st.connected_at >= self.first_request_timeout:
            self.refused += 1
            self.say("silent", "client %s sent no request in %.0f s; closing", st.peer,
                      self.first_request_timeout)
            self.close(st)
            return
        if self.max_lag <= 0:
            return
        conn = st.client.get_connection()
        sock = conn.get_write_socket() if conn is not None else None
        if sock is None:
            return
        unsent = unsent_bytes(sock.get_fd())
        if unsent <= 0:
            st.lag_since = None
            return
        if st.lag_since is None:
            st.lag_since = now
        elif now - st.lag_since >= self.max_lag:
            self.dropped += 1
            # one line per dropped client: it is an event worth seeing, not peer-chosen text
            log.warning("client %s%s is not reading (%d bytes unsent for %.1f s); closing",
                        st.peer, st.where(), unsent, now - st.lag_since)
            self.close(st)
