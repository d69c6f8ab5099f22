"""What a relay does when its camera goes away (pure: no GStreamer).

- :class:`Backoff`: the delays between reconnection attempts (doubling up to a maximum).
- :class:`Outage`: says each outage once (one line when lost, one when back).
- :class:`TimeMapper`: every reconnection restarts the camera's timestamps; the relay's clients
  must see one continuous, monotonic timeline, so each upstream session is rebased onto the
  served running time (the hole a client sees is the outage itself, never a jump back).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from framecast import sei

# parameter set NAL types: H.264 SPS, PPS; H.265 VPS, SPS, PPS
PARAMETER_SETS = {"h264": frozenset({7, 8}), "h265": frozenset({32, 33, 34})}


def public_url(url: str) -> str:
    """``url`` without its user and password (what a log line may show)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass
class Backoff:
    """Delays ``initial``, ×``factor`` each failure, capped at ``maximum``; ``reset`` on success."""

    initial: float = 0.5
    maximum: float = 10.0
    factor: float = 2.0
    _next: float = field(default=-1.0, repr=False)

    def next_delay(self) -> float:
        if self._next < 0:
            self._next = self.initial
        delay = min(self._next, self.maximum)
        self._next = min(self._next * self.factor, self.maximum)
        return max(0.0, delay)

    def reset(self) -> None:
        self._next = -1.0


@dataclass
class Outage:
    """The camera's up/down state; returns a log line only when it changes."""

    name: str
    source: str = ""
    down_since: float | None = None
    ever_up: bool = False
    reason: str = ""

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def lost(self, reason: str, now: float) -> str | None:
        """The camera failed (an attempt or a running stream); a line if that is news."""
        if self.down_since is not None:
            return None
        self.down_since = now
        self.reason = reason
        what = "camera lost" if self.ever_up else "camera unreachable"
        where = f" at {public_url(self.source)}" if self.source else ""
        return f"/{self.name}: {what}{where} ({reason}); retrying"

    def restored(self, now: float) -> str | None:
        """Frames flow; a line if the camera had been down."""
        was, self.down_since = self.down_since, None
        first = not self.ever_up
        self.ever_up = True
        if was is None:
            return None
        if first:
            return f"/{self.name}: camera reachable after {now - was:.1f} s"
        return f"/{self.name}: camera back after {now - was:.1f} s"

    def down_for(self, now: float) -> float:
        return 0.0 if self.down_since is None else now - self.down_since


@dataclass
class TimeMapper:
    """Upstream (pts, dts) in ns → served (pts, dts): continuous across upstream sessions.

    ``rebase()`` marks a new upstream session; its first buffer is placed at the served
    running time ``now`` (never less than ``gap`` after the latest timestamp handed out, so a
    new session's reordered frames cannot land among the old session's), and the rest of the
    session keeps the camera's own spacing (B-frame reordering included). The decode
    timestamp orders buffers; without one the PTS does, and PTS go back a little with
    B-frames, so only a step back of more than ``reset`` counts as a camera clock reset.

    The camera's spacing is its RTP clock's (the relay's jitterbuffer does no skew correction:
    that moved PTS by up to ±15 ms at start and more under load, so the relay's ``seq``
    repeated and skipped), and that clock drifts from ours: the lag of each timestamp behind
    ``now`` (its smallest over ``window`` buffers: arrival delays only add to it) is held
    within ``tolerance`` of the session's first by moving the offset at most ``slew`` per
    buffer — far below a frame, so no two frames' order or ``seq`` change. A drift beyond
    ``reset`` (the camera's clock jumped ahead) re-anchors the session.
    """

    gap: int = 100_000_000       # ns between two sessions, at least
    reset: int = 1_000_000_000   # ns back within a session = the camera's clock restarted
    # RTP carries no DTS, and with B-frames the PTS go back in decode order: gst-rtsp-server's
    # TCP backlog aborts on a timestamp that goes back, so a missing DTS is made up, monotonic,
    # ``reorder`` before the PTS (enough for 3 B-frames at 30 fps)
    reorder: int = 100_000_000
    tolerance: int = 20_000_000  # ns of clock drift let go before slewing
    slew: int = 500_000          # ns the offset may move per buffer
    window: int = 60             # buffers over which the smallest lag is taken
    offset: int | None = None
    last: int | None = None      # the latest ordering timestamp handed out
    last_dts: int = 0            # the latest DTS handed out
    lag0: int | None = None      # the session's first smallest lag behind ``now``
    lags: deque[int] = field(default_factory=deque, repr=False)

    def rebase(self) -> None:
        self.offset = None

    def map(self, pts: int | None, dts: int | None, now: int,
            clocked: bool = True) -> tuple[int | None, int | None]:
        """``clocked`` False: ``now`` is no clock reading (the consumer is not playing yet)."""
        ref = dts if dts is not None else pts
        if ref is None:
            return pts, dts
        if self.offset is not None and self.last is not None \
                and ref + self.offset < self.last - self.reset:
            self.offset = None
        if self.offset is not None and clocked:
            self._follow_clock(now - (ref + self.offset))
        if self.offset is None:
            start = now if self.last is None else max(now, self.last + self.gap)
            self.offset = start - ref
            if pts is not None and pts + self.offset < 0:
                self.offset = -pts
            self.lag0 = None
            self.lags.clear()
            if clocked:
                self._follow_clock(now - (ref + self.offset))
        mapped = ref + self.offset
        self.last = mapped if self.last is None else max(self.last, mapped)
        out_pts = None if pts is None else max(0, pts + self.offset)
        out_dts = None if dts is None else max(0, dts + self.offset)
        if out_dts is None and out_pts is not None:
            out_dts = max(0, out_pts - self.reorder)
        if out_dts is not None:
            out_dts = self.last_dts = max(self.last_dts, out_dts)
        return out_pts, out_dts

    def _follow_clock(self, lag: int) -> None:
        assert self.offset is not None
        self.lags.append(lag)
        if len(self.lags) > self.window:
            self.lags.popleft()
        if len(self.lags) < self.window:
            return
        if self.lag0 is None:  # over a window: B-frames' PTS lag more than the P-frames'
            self.lag0 = min(self.lags)
        drift = min(self.lags) - self.lag0
        if abs(drift) > self.reset:  # the camera's clock jumped, or it paused: a new anchor
            self.offset = None
        elif abs(drift) > self.tolerance:
            step = max(-self.slew, min(self.slew, drift))
            self.offset += step
            self.lags = deque(x - step for x in self.lags)


def single_parameter_sets(au: bytes, codec: sei.Codec) -> bytes:
    """``au`` with each parameter set once: the last copy before the first slice stays.

    The depayloader puts the SDP's parameter sets in front of the first keyframe it outputs,
    before the AUD, and the parser adds its own after it: served as is, a client got them
    twice in its first keyframe. AUs without a repeat come back unchanged (same object).
    """
    try:
        nals = sei.split_annexb(au)
        types = [sei.nal_type(n, codec) for n in nals]
    except sei.SEIError:
        return au
    sets = PARAMETER_SETS[codec]
    first_vcl = next((i for i, n in enumerate(nals) if sei.is_vcl(n, codec)), len(nals))
    head = [t for t in types[:first_vcl] if t in sets]
    if len(head) == len(set(head)):
        return au
    keep = [i for i, t in enumerate(types)
            if i >= first_vcl or t not in sets or t not in types[i + 1:first_vcl]]
    return sei.join_annexb(nals[i] for i in keep)
