"""Sidecar metadata for file mounts: JSON Lines keyed by presented-frame index or by PTS.

Line ``i`` (0-based) of the file is the metadata of the ``i``-th *presented* frame of the
video (presentation order, not decode order), repeating every loop. A line may instead be an
object with a ``pts`` key (seconds from the first presented frame); it is then matched to the
frame whose presentation time is nearest (within half a frame). Blank lines, ``null`` and
missing lines mean "no metadata for that frame". Bad lines are reported once each (as
``file:line: reason``) and skipped. Pure: no GStreamer.
"""

from __future__ import annotations

import bisect
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from framecast.errors import SidecarError as SidecarError  # re-exported

MAX_WARNINGS = 20  # per file: after that one summary line, so a broken file cannot flood logs


@dataclass
class Sidecar:
    """Parsed sidecar: entries by presented index plus entries keyed by PTS (seconds)."""

    name: str = "<sidecar>"
    by_index: dict[int, dict[str, Any]] = field(default_factory=dict)
    by_pts: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)  # (s, line, d)
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.by_index) + len(self.by_pts)

    def resolve(self, video_pts_ns: Sequence[int] | None = None,
                frame_ns: int | None = None) -> dict[int, dict[str, Any]]:
        """Map presented index → fields, placing ``pts``-keyed lines on the video's frames.

        ``video_pts_ns`` are the file's presented PTS (sorted, ns); PTS in the sidecar count
        from the first of them. Without them, ``frame_ns`` (frame duration) places the lines.
        Lines that match no frame add a warning to :attr:`warnings`.
        """
        table = dict(self.by_index)
        if not self.by_pts:
            return table
        pts = list(video_pts_ns or [])
        if pts:
            first = pts[0]
            rel = [p - first for p in pts]
            if frame_ns is None:
                gaps = [b - a for a, b in zip(rel, rel[1:], strict=False) if b > a]
                frame_ns = min(gaps) if gaps else 0
        for seconds, line, fields in self.by_pts:
            want = round(seconds * 1e9)
            if pts:
                i = _nearest(rel, want)
                tol = (frame_ns or 0) // 2
                if abs(rel[i] - want) > tol and frame_ns:
                    self._warn(line, f"pts {seconds:g} s matches no frame")
                    continue
            elif frame_ns:
                i = round(want / frame_ns)
            else:
                self._warn(line, "pts-keyed line but the frame times are unknown")
                continue
            table[i] = {**table[i], **fields} if i in table else fields  # both kinds: merged
        return table

    def _warn(self, line: int, reason: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(f"{self.name}:{line}: {reason}")
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append(f"{self.name}: more bad lines; further warnings suppressed")


def _nearest(values: Sequence[int], want: int) -> int:
    i = bisect.bisect_left(values, want)
    if i == len(values):
        return i - 1
    if i > 0 and want - values[i - 1] <= values[i] - want:
        return i - 1
    return i


def parse_lines(lines: Iterable[str], name: str = "<sidecar>") -> Sidecar:
    """Parse JSON Lines text (one object, ``null`` or nothing per line)."""
    sc = Sidecar(name=name)
    for lineno, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            sc._warn(lineno, f"not JSON ({msg})")
            continue
        if value is None:
            continue
        if not isinstance(value, dict):
            sc._warn(lineno, f"expected a JSON object, got {type(value).__name__}")
            continue
        if "pts" in value:
            pts = value["pts"]
            if (not isinstance(pts, int | float) or isinstance(pts, bool)
                    or not math.isfinite(pts) or pts < 0):
                sc._warn(lineno, f"'pts' must be a non-negative number of seconds, got {pts!r}")
                continue
            fields = {k: v for k, v in value.items() if k != "pts"}
            sc.by_pts.append((float(pts), lineno, fields))
        else:
            sc.by_index[lineno - 1] = value
    return sc


def load_sidecar(path: str | os.PathLike[str],
                 warn: Callable[[str], None] | None = None) -> Sidecar:
    """Read a sidecar file. Raises :class:`SidecarError` (one line) if it cannot be read.

    ``warn`` receives each bad-line warning as it is found (default: kept in ``warnings``).
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8", errors="replace") as f:
            sc = parse_lines(f, name=name)
    except FileNotFoundError:
        raise SidecarError(f"{name}: sidecar file not found") from None
    except OSError as exc:
        raise SidecarError(f"{name}: cannot read sidecar ({exc.strerror or exc})") from None
    if warn:
        for w in sc.warnings:
            warn(w)
    return sc
