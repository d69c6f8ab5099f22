"""The HTTP listening socket, made safe against running out of file descriptors.

asyncio's accept loop (3.11, ``_accept_connection``) logs a full traceback for every ``EMFILE``
and keeps calling ``accept()`` up to the backlog (100) times per wake-up, each failure scheduling
one more retry: with the fds exhausted one connection attempt produced ~180,000 tracebacks in
15 s at 94 % CPU. Here ``accept()`` never lets those errors reach asyncio: a spare fd held in
reserve is freed for a moment to accept the waiting connection and close it at once (the client
sees it closed, the backlog drains, nothing spins), and one rate-limited line is logged.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time

from framecast.logs import RateLimitedLog

log = logging.getLogger("framecast.http")
_ratelog = RateLimitedLog(log, interval=10.0)

OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
LISTEN_BACKLOG = 128


class GuardedSocket(socket.socket):
    """A listening socket whose ``accept`` turns "out of fds" into a refused connection."""

    _spare: int | None = None
    refused = 0

    def reserve(self) -> None:
        if self._spare is None:
            try:
                self._spare = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self._spare = None

    def accept(self) -> tuple[socket.socket, object]:
        try:
            return super().accept()
        except OSError as exc:
            if exc.errno not in OUT_OF_RESOURCES:
                raise
            self._refuse(exc)
            # asyncio stops its accept loop here and waits for the next readiness
            raise BlockingIOError(errno.EAGAIN, "out of resources; connection refused") from None

    def _refuse(self, exc: OSError) -> None:
        self.refused += 1
        _ratelog.log(logging.WARNING, "accept",
                     "HTTP: cannot accept connections: %s (fd limit reached?); refusing them",
                     os.strerror(exc.errno or 0))
        spare, self._spare = self._spare, None
        if spare is None:
            # nothing to free: do not let the still-readable socket spin the loop
            time.sleep(0.05)
            self.reserve()
            return
        os.close(spare)
        try:
            conn, _addr = super().accept()
            conn.close()
        except OSError:
            pass
        finally:
            self.reserve()

    def close(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            os.close(spare)
        super().close()


def listen_socket(host: str, port: int, backlog: int = LISTEN_BACKLOG) -> GuardedSocket:
    """A non-blocking listening TCP socket on ``host:port`` (port 0: any free port)."""
    family, type_, proto, _cn, addr = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = GuardedSocket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    sock.reserve()
    return sock
