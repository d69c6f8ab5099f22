"""Log hygiene for what clients can trigger in aiohttp and asyncio (no gi).

Two libraries log client-triggered events with a full traceback each: aiohttp a malformed
request (``Error handling request from …``, the traceback quoting up to ~20 kB of the attacker's
bytes) and asyncio an ``accept()`` that failed for want of fds (a storm: see
:mod:`framecast.http.listener`). These filters turn them into one bounded line, rate-limited per
client address, and let every other record through untouched.
"""

from __future__ import annotations

import logging

from framecast.logs import RateLimitedLog, bounded

log = logging.getLogger("framecast.http")


class BadRequestFilter(logging.Filter):
    """On ``aiohttp.server``: "Error handling request from <addr>" → one short line."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self._ratelog = RateLimitedLog(log, interval)

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Error handling request"):
            return True
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        exc = record.exc_info[1] if record.exc_info else None
        what = getattr(exc, "message", None) or str(exc or "")
        # aiohttp's message is "reason:\n\n  <the offending bytes>": keep the reason
        what = what.strip().split("\n", 1)[0].rstrip(":")
        self._ratelog.log(logging.INFO, f"bad {remote}", "HTTP: bad request from %s: %s (%s)",
                          bounded(remote, 60), bounded(what, 100), type(exc).__name__)
        return False


class AcceptErrorFilter(logging.Filter):
    """On ``asyncio``: "socket.accept() out of system resource" → one short line."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        # logged under our name: a record on "asyncio" would come back through this filter
        self._ratelog = RateLimitedLog(log, interval)

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("socket.accept() out of system resource"):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        self._ratelog.log(logging.WARNING, "asyncio-accept",
                          "HTTP: cannot accept connections: %s", bounded(exc, 100))
        return False


def install_log_filters() -> None:
    """Idempotent: each filter once on its logger."""
    for name, cls in (("aiohttp.server", BadRequestFilter), ("asyncio", AcceptErrorFilter)):
        logger = logging.getLogger(name)
        if not any(isinstance(f, cls) for f in logger.filters):
            logger.addFilter(cls())
