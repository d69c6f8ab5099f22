"""Monotonic buffer timestamps into every RTSP payloader (C elements only, nothing per buffer
in Python).

gst-rtsp-server 1.22 keeps a per-client backlog of RTP buffers for TCP clients that are behind
and measures it as ``DTS_OR_PTS(newest) - DTS_OR_PTS(oldest)``; a negative value is a
``g_assert`` that aborts the whole process (rtsp-stream-transport.c:904). Our payloaders used
to see the file's own timestamps, which jump back at every loop point (the Looper re-bases
SEGMENTs, not buffers), and PTS-only streams with B-frames (Matroska, relays) go back inside
every GOP. So before each payloader we insert:

- ``identity single-segment=true``: buffer PTS become running time (one segment from 0, so a
  loop point is just the next frame); the RTP timestamps are computed from the same running
  time, so what clients see does not change;
- for H.264/H.265 of unknown order (relays, app mounts) and files with B-frames but no DTS
  (Matroska) also ``h26Xtimestamper``: PTS-only streams with B-frames go back inside every
  GOP; the timestamper derives a monotonic DTS from the PTS and the SPS's reorder depth.
  Files with DTS (MP4, TS) do not need it: their loop timeline is moved by how far DTS precede
  the segment start (``MediaInfo.dts_lead_ns``), so identity gives every DTS a running time.
  The timestamper is kept away from looped files where it can be: 1.22.0's keeps the PTS it
  has seen across a flush (the loop's first seek), so a first client saw odd PTS on the first
  frames, and with a reorder window of 0 it forwards the SEGMENT after a flush without its
  time offset (the sinks then wait 1000 hours).
"""

from __future__ import annotations

from gi.repository import Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.codecs import CODECS

# by media type or by payloader name
TIMESTAMPERS = {**{c.caps: c.timestamper for c in CODECS.values()},
                **{c.payloader: c.timestamper for c in CODECS.values()}}


def _payloaders(b: Gst.Bin) -> list[Gst.Element]:
    out = []
    for i in range(16):
        pay = b.get_by_name(f"pay{i}")
        if pay is None:
            break
        out.append(pay)
    return out


def _make(factory: str, name: str | None) -> Gst.Element:
    el = Gst.ElementFactory.make(factory, name)
    if el is None:
        raise RuntimeError(f"GStreamer element '{factory}' is not installed")
    return el


def single_segment(name: str | None = None) -> Gst.Element:
    """``identity single-segment=true``: from here on buffers carry their running time, in one
    segment from 0, so a loop point is just the next buffer to everything downstream.

    Before the RTSP payloaders (above), and on the WebRTC side after the tees' clocksyncs: there a
    looped file's new SEGMENT at a loop point now and then reached webrtcbin's RTP session after
    the loop's first packet was reckoned in the previous loop's segment, and the next sender
    report mapped the audio's RTP time one loop (1000 ms) off (about one run in three of 10-30
    s). Chromium fits a line through the last reports, so one such report threw its A/V sync
    estimate by up to 500 ms and misplaced the video by 30-150 ms for ~15 s."""
    el = _make("identity", name)
    el.set_property("single-segment", True)
    el.set_property("silent", True)
    return el


def monotonic_payloader_input(b: Gst.Bin, derive_dts: bool = True) -> int:
    """Insert the timestamp fixers before every ``payN`` of ``b`` whose sink is linked inside
    the bin (``derive_dts``: video may have B-frames); returns how many payloaders were
    fixed. Idempotent."""
    fixed = 0
    for pay in _payloaders(b):
        sink = pay.get_static_pad("sink")
        upstream = sink.get_peer()
        if upstream is None:
            continue  # linked later (e.g. a dynamic pad): the app owns that path
        prev = upstream.get_parent_element()
        if prev is not None and prev.get_name().startswith(f"{pay.get_name()}-ts"):
            continue
        name = pay.get_name()
        chain = [single_segment(f"{name}-ts-rt")]
        factory = pay.get_factory()
        ts = TIMESTAMPERS.get(factory.get_name() if factory is not None else "")
        if ts is not None and derive_dts:
            chain.append(_make(ts, f"{name}-ts-dts"))
        upstream.unlink(sink)
        for el in chain:
            b.add(el)
        upstream.link(chain[0].get_static_pad("sink"))
        for a, z in zip(chain, [*chain[1:], pay], strict=True):
            if not a.link(z):
                raise RuntimeError(f"cannot link {a.get_name()} to {z.get_name()}")
        if b.get_state(0)[1] != Gst.State.NULL:
            for el in chain:
                el.sync_state_with_parent()
        fixed += 1
    return fixed
