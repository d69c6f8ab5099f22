"""Logging, all of it (pure): the server log's format and guard, and the helpers for text a
peer controls.

Time-stamped lines people read after the fact, JSON for machines. Every record passes one
guard first (:class:`BoundedFilter`): peers choose much of what a server logs (paths, headers,
names), so a message is cut to one bounded line with control characters escaped, and a burst
of records from the same call site is rate-limited (the first few pass, the rest are counted
and summarised in one line once the burst is over).

Where a peer can trigger an event at will (bad requests, auth failures, refused peers, running
out of fds), the call site limits itself: :func:`bounded` cuts and escapes the peer's text,
:class:`RateLimiter` lets ``burst`` events per key and interval through and counts the rest,
:class:`RateLimitedLog` logs one line per key and interval saying how many were held back.

    2026/11/30 04:00:00 INF [rtsp] client 127.0.0.1 connected to /clip
    {"time": "2026-11-30T04:00:00.123Z", "level": "info", "logger": "rtsp", "msg": "..."}
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal, TextIO

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

MAX_LINE = 400          # characters of one message; longer ones are cut with a marker
# A safety net, not a policy: events a peer can trigger at will are rate-limited where they are
# logged (RateLimitedLog, RateLimiter below); this only stops a runaway site from flooding the log.
BURST = 100             # records one call site may log per window before it is throttled
WINDOW_S = 1.0          # the rate-limit window

_LEVELS = {logging.DEBUG: "DEB", logging.INFO: "INF", logging.WARNING: "WAR",
           logging.ERROR: "ERR", logging.CRITICAL: "ERR"}
_CONTROL = {c: f"\\x{c:02x}" for c in range(32) if c not in (9,)}
_CONTROL[127] = "\\x7f"


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` as one printable line of at most ``limit`` characters (plus a cut marker)."""
    flat = text.translate(_CONTROL)
    if len(flat) > limit:
        return f"{flat[:limit]}… ({len(flat) - limit} more characters)"
    return flat


def bounded(text: object, limit: int = 200) -> str:
    """Peer text on one line, at most ``limit`` characters: control and non-ASCII characters
    escaped (``\\r\\n``, ``\\x1b``), a cut marked with ``…``."""
    s = str(text)
    if len(s) > limit * 4:  # do not escape megabytes we are about to cut anyway
        s = s[: limit * 4]
    out = s.encode("unicode_escape", "backslashreplace").decode("ascii", "replace")
    if len(out) > limit:
        out = out[: max(0, limit - 1)] + "…"
    return out


class RateLimiter:
    """``allow(key)`` → (allowed, suppressed since the last allowed one): at most ``burst``
    events per key per ``interval_s``; the oldest keys beyond ``max_keys`` are forgotten
    (keys are often peer addresses)."""

    def __init__(self, burst: int = 5, interval_s: float = 10.0, max_keys: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = max(1, burst)
        self.interval_s = interval_s
        self.max_keys = max(1, max_keys)
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [window start, events allowed in it, suppressed since last allowed]
        self._state: OrderedDict[str, list[float]] = OrderedDict()

    def allow(self, key: str = "") -> tuple[bool, int]:
        now = self._clock()
        with self._lock:
            st = self._state.get(key)
            if st is None or now - st[0] >= self.interval_s:
                suppressed = int(st[2]) if st is not None else 0
                self._state[key] = [now, 1, 0]
                self._state.move_to_end(key)
                while len(self._state) > self.max_keys:
                    self._state.popitem(last=False)
                return True, suppressed
            if st[1] < self.burst:
                st[1] += 1
                suppressed, st[2] = int(st[2]), 0
                return True, suppressed
            st[2] += 1
            return False, 0

    def __len__(self) -> int:
        return len(self._state)

    def clear(self) -> None:
        with self._lock:
            self._state.clear()


class RateLimitedLog:
    """One line per ``key`` per ``interval`` s on ``logger``; the next one says how many
    were held back."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.limiter = RateLimiter(burst=1, interval_s=interval, clock=clock)

    def log(self, level: int, key: str, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``interval`` s ago; True if
        logged."""
        allowed, held = self.limiter.allow(key)
        if not allowed:
            return False
        if held:
            msg += " (%d more like it in the last %.0f s)"
            args = (*args, held, self.interval)
        self.logger.log(level, msg, *args)
        return True


def _short_name(name: str) -> str:
    return name.removeprefix("framecast.") or name


class BoundedFilter(logging.Filter):
    """One bounded line per record; at most ``burst`` records per call site per ``window``.

    A call site is (logger, message template), so a flood of the same event with different
    peer-chosen arguments is throttled while unrelated events pass. When a throttled site logs
    again after its window, one line says how many of its records were suppressed.
    """

    def __init__(self, burst: int = BURST, window: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.window, self.clock = burst, window, clock
        self._sites: dict[tuple[str, str], list[float]] = {}   # site -> [start, count, dropped]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        site = (record.name, str(record.msg))
        now = self.clock()
        with self._lock:
            state = self._sites.get(site)
            if state is None or now - state[0] >= self.window:
                dropped = int(state[2]) if state is not None else 0
                if len(self._sites) > 4096:   # many one-off sites: forget the old ones
                    self._sites.clear()
                self._sites[site] = [now, 1, 0]
            else:
                state[1] += 1
                if state[1] > self.burst:
                    state[2] += 1
                    return False
                dropped = 0
        message = one_line(record.getMessage())
        if dropped:
            message += f" ({dropped} similar lines suppressed)"
        record.msg, record.args = message, None
        if record.exc_info and record.levelno < logging.ERROR:
            record.exc_info = None   # a traceback per peer mistake is a log flood
        return True


class TextFormatter(logging.Formatter):
    """``2026/11/30 04:00:00 INF [rtsp] message`` (UTC)."""

    converter = staticmethod(time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(record.created))
        level = _LEVELS.get(record.levelno, record.levelname[:3])
        line = f"{stamp} {level} [{_short_name(record.name)}] {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, msg."""

    def format(self, record: logging.LogRecord) -> str:
        created = record.created
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        obj = {"time": f"{stamp}.{int(created * 1000) % 1000:03d}Z",
               "level": record.levelname.lower(), "logger": _short_name(record.name),
               "msg": record.getMessage()}
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False)


class ToolFormatter(logging.Formatter):
    """``framecast: warning: message``: for a command run by hand (no time, no logger)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"framecast: {record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(verbose: bool = False, fmt: LogFormat = "text",
                  stream: TextIO | None = None, tool: bool = False) -> logging.Handler:
    """Route every log record of the process to ``stream`` (stderr): once, idempotent.

    ``tool``: a command run by hand (``framecast inject``): warnings and errors only (all
    with ``verbose``), as ``framecast: warning: …`` lines when ``fmt`` is text."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_framecast", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._framecast = True  # type: ignore[attr-defined]
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(ToolFormatter() if tool else TextFormatter())
    handler.addFilter(BoundedFilter())
    root.addHandler(handler)
    quiet = logging.WARNING if tool else logging.INFO
    root.setLevel(logging.DEBUG if verbose else quiet)
    # asyncio's own accept-loop errors (fd exhaustion) are logged per attempt: bounded too
    logging.getLogger("asyncio").setLevel(logging.WARNING if not verbose else logging.DEBUG)
    return handler
