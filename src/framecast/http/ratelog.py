"""One log line per event kind per interval, with a count of what was held back (pure).

Events that a client can trigger at will (bad requests, auth failures, refused peers, running
out of fds) must not let it write the log at full speed: the first one is logged, the next ones
within ``interval`` seconds are only counted, and the next line says how many were held back.
Text from the client is cut to ``max_text`` characters and made printable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

MAX_KEYS = 1024  # keys are often peer addresses: forget the oldest beyond this many


def bounded(text: object, max_text: int = 120) -> str:
    """``text`` as one printable line of at most ``max_text`` characters."""
    s = str(text)
    s = "".join(c if c.isprintable() else "?" for c in s[:max_text + 1])
    return s if len(s) <= max_text else s[:max_text - 1] + "…"


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._next: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``interval`` s ago; True if
        logged."""
        now = self._clock()
        if now < self._next.get(key, float("-inf")):
            self._held[key] = self._held.get(key, 0) + 1
            return False
        if len(self._next) >= MAX_KEYS and key not in self._next:
            oldest = min(self._next, key=self._next.__getitem__)
            self._next.pop(oldest)
            self._held.pop(oldest, None)
        self._next[key] = now + self.interval
        held = self._held.pop(key, 0)
        if held:
            msg += " (%d more like it in the last %.0f s)"
            args = (*args, held, self.interval)
        self.logger.log(level, msg, *args)
        return True
