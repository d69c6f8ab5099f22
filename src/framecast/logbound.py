"""Bounded, rate-limited log lines for text a peer controls (pure: no GStreamer).

A malformed request must cost at most one short line: ``bounded()`` cuts and escapes the
text (no newlines or control characters from the peer reach the log), ``RateLimiter`` lets
through at most ``burst`` events per key and ``interval_s``, counting the rest, so the next
line can say how many were suppressed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_LINE = 200


def bounded(text: object, limit: int = MAX_LINE) -> str:
    """``text`` on one line, at most ``limit`` characters, control characters escaped."""
    s = str(text)
    if len(s) > limit * 4:  # do not escape megabytes we are about to cut anyway
        s = s[: limit * 4]
    out = s.encode("unicode_escape", "backslashreplace").decode("ascii", "replace")
    if len(out) > limit:
        out = out[: max(0, limit - 1)] + "…"
    return out


class RateLimiter:
    """``allow(key)`` → (allowed, suppressed since the last allowed one)."""

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
