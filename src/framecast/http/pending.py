"""WebRTC viewers that have not connected yet: admission limits and expiry (pure, no gi).

A viewer is *pending* from its WHEP POST or signalling ``startSession`` until its ICE connection
is up. A client that never completes ICE (an offer without candidates, a peer that vanished)
would otherwise hold a webrtcbin — two threads, a few dozen fds — forever and, 100 of them, lock
the mount. So pending viewers are limited per mount and per peer address, and freed after
``timeout`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Pending:
    key: str  # WHEP resource id or signalling session id
    mount: str
    peer: str  # the client's address
    since: float


class PendingViewers:
    def __init__(self, timeout: float = 15.0, max_per_mount: int = 64, max_per_peer: int = 32,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.max_per_mount = max_per_mount
        self.max_per_peer = max_per_peer
        self._clock = clock
        self._pending: dict[str, Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, key: str) -> bool:
        return key in self._pending

    def refusal(self, mount: str, peer: str) -> str | None:
        """Why a new viewer of ``mount`` from ``peer`` must wait, or None to admit it."""
        on_mount = sum(1 for p in self._pending.values() if p.mount == mount)
        if on_mount >= self.max_per_mount:
            return f"{mount}: {on_mount} viewers already waiting for ICE; try again later"
        from_peer = sum(1 for p in self._pending.values() if p.peer == peer)
        if from_peer >= self.max_per_peer:
            return f"{from_peer} viewers from {peer} already waiting for ICE; try again later"
        return None

    def add(self, key: str, mount: str, peer: str) -> None:
        self._pending[key] = Pending(key, mount, peer, self._clock())

    def done(self, key: str) -> None:
        """Connected, or gone for any reason: no longer pending (idempotent)."""
        self._pending.pop(key, None)

    def expired(self) -> list[Pending]:
        """Pop and return every viewer pending for ``timeout`` seconds or more."""
        limit = self._clock() - self.timeout
        out = [p for p in self._pending.values() if p.since <= limit]
        for p in out:
            del self._pending[p.key]
        return out
