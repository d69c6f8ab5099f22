"""Decode order in, presentation order out, with as little waiting as the stream allows (pure).

Used by the reader for encoded frames (``decode=False``), whose access units arrive in decode
order. A frame leaves as soon as it is known to be next: its PTS is one frame step after the
last one out (no B-frame can still come before it), or it is the first keyframe (nothing
decoded later is shown before an IDR), or a DTS says so. Only a gap waits for the reorder
window: holding every frame for the window cost ~130 ms (4 frames at 30 fps) on streams that
have no B-frames at all.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

REORDER_WINDOW = 4  # frames held back when the stream has no DTS (covers up to 3 B-frames)
TIMELINE_RESET_NS = 1_000_000_000  # PTS this far back start a new timeline, not a late frame


class Reorder(Generic[T]):
    """Items pushed with (pts, dts, keyframe) in decode order come out of :attr:`ready` in
    presentation order. Times are integers (ns); None means unknown."""

    def __init__(self, window: int = REORDER_WINDOW) -> None:
        self.window = window
        self.ready: deque[T] = deque()
        self._heap: list[tuple[int, int, bool, T]] = []
        self._order = itertools.count()
        self._last_out: int | None = None  # PTS of the last item handed out
        self._recent: list[int] = []  # recent PTS, to learn the frame step
        self.late = 0  # items dropped because a later one had already been handed out

    def __len__(self) -> int:
        """Items still held back."""
        return len(self._heap)

    def push(self, item: T, pts: int | None, dts: int | None = None, keyframe: bool = False,
             step: int = 0) -> None:
        """Add ``item``; ``step`` is one frame's duration if known (0: learnt from the PTS)."""
        p = pts if pts is not None else -1
        if p >= 0:
            self._recent.append(p)
            del self._recent[:-2 * self.window]
        heapq.heappush(self._heap, (p, next(self._order), keyframe, item))
        if dts is not None:
            # every later AU has PTS >= its DTS >= this DTS: all PTS up to it are final
            while self._heap and self._heap[0][0] <= dts:
                self._release()
        step = step or self.learned_step()
        while self._heap:
            top, _, top_key, _item = self._heap[0]
            last = self._last_out
            if len(self._heap) > self.window or top < 0 or (
                    last is None and top_key) or (
                    last is not None and (top <= last or (step and top - last <= step * 3 // 2))):
                self._release()
            else:
                break

    def flush_one(self) -> bool:
        """At the end of the stream: release the next held item; False if none was left."""
        while self._heap:
            if self._release():
                return True
        return False

    def _release(self) -> bool:
        """Hand out the earliest held item; False if it came too late to be in order."""
        p, _, _key, item = heapq.heappop(self._heap)
        last = self._last_out
        if p >= 0 and last is not None and p <= last and last - p < TIMELINE_RESET_NS:
            # it arrived after a later frame was handed out (a frame lost on the way made
            # the window release early): presentation order wins, as in a player
            self.late += 1
            return False
        if p >= 0:
            self._last_out = p  # (a jump back by more than TIMELINE_RESET_NS: a new timeline)
        self.ready.append(item)
        return True

    def learned_step(self) -> int:
        """One frame's duration from the PTS seen (0 until enough arrived to trust it: the
        first steps of a B-frame GOP span several frames)."""
        if len(self._recent) <= self.window:
            return 0
        vals = sorted(set(self._recent))
        steps = [b - a for a, b in zip(vals, vals[1:], strict=False)]
        return min(steps) if steps else 0
