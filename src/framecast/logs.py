"""The server log: time-stamped lines people read after the fact, JSON for machines (pure).

Every record passes one guard first: peers choose much of what a server logs (paths, headers,
names), so a message is cut to one bounded line with control characters escaped, and a burst
of records from the same call site is rate-limited (the first few pass, the rest are counted
and summarised in one line once the burst is over).

    2026/11/30 04:00:00 INF [rtsp] client 127.0.0.1 connected to /clip
    {"time": "2026-11-30T04:00:00.123Z", "level": "info", "logger": "rtsp", "msg": "..."}
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Literal, TextIO

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

MAX_LINE = 400          # characters of one message; longer ones are cut with a marker
# A safety net, not a policy: events a peer can trigger at will are rate-limited where they are
# logged (framecast.http.ratelog); this only stops a runaway site from flooding the log.
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

    converter = time.gmtime

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
