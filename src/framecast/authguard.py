"""Per-address failure counting with a time window (pure: no GStreamer, no I/O).

Used by the RTSP server (and reusable by HTTP) to refuse an address that failed to log in
``max_failures`` times within ``window_s`` seconds, until that window has passed, so a
password cannot be guessed at full speed. Memory is bounded: at most ``max_addresses``
addresses are tracked (the least recently failing are forgotten first).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureGuard:
    """``fail(addr)`` after each failed login, ``blocked(addr)`` before checking one."""

    def __init__(self, max_failures: int = 10, window_s: float = 60.0,
                 max_addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max(0, int(max_failures))  # 0: never block
        self.window_s = max(0.0, float(window_s))
        self.max_addresses = max(1, int(max_addresses))
        self._clock = clock
        self._lock = threading.Lock()
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_failures > 0 and self.window_s > 0

    def _recent(self, addr: str, now: float) -> deque[float] | None:
        times = self._fails.get(addr)
        if times is None:
            return None
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if not times:
            del self._fails[addr]
            return None
        return times

    def fail(self, addr: str) -> bool:
        """Count a failure from ``addr``; True if the address is now blocked."""
        if not self.enabled:
            return False
        now = self._clock()
        with self._lock:
            times = self._recent(addr, now)
            if times is None:
                times = self._fails[addr] = deque(maxlen=self.max_failures)
            times.append(now)
            self._fails.move_to_end(addr)
            while len(self._fails) > self.max_addresses:
                self._fails.popitem(last=False)
            return len(times) >= self.max_failures

    def blocked(self, addr: str) -> bool:
        """True while ``addr`` has ``max_failures`` failures within the last window."""
        if not self.enabled:
            return False
        with self._lock:
            times = self._recent(addr, self._clock())
            return times is not None and len(times) >= self.max_failures

    def retry_after(self, addr: str) -> float:
        """Seconds until ``addr`` is allowed again (0 if it is not blocked)."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        with self._lock:
            times = self._recent(addr, now)
            if times is None or len(times) < self.max_failures:
                return 0.0
            return max(0.0, times[0] + self.window_s - now)

    def succeed(self, addr: str) -> None:
        """A successful login forgets the address's failures."""
        with self._lock:
            self._fails.pop(addr, None)

    def __len__(self) -> int:
        return len(self._fails)
