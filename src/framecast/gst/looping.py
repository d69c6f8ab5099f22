"""Loop a demuxed file forever without decoding: segment seeks plus timestamp continuity.

How it works (see README "Serving files over RTSP"):

1. One FLUSH|SEGMENT seek to 0 once the pipeline has prerolled (PAUSED). With the SEGMENT
   flag the demuxer posts SEGMENT_DONE instead of EOS at the end of the file.
2. On every SEGMENT_DONE, a non-flushing SEGMENT seek to 0: the demuxer starts over and pushes
   a new SEGMENT event, with no flush, so downstream keeps playing.
3. The fix: on GStreamer 1.22 that new SEGMENT's ``base`` is the running time of the demuxer's
   position (the last frame's PTS, not its end), so the first frame of loop n+1 gets the
   running time of the last frame of loop n (a duplicated timestamp). A pad probe on each
   demuxer source pad (video *and* audio, so both stay together) drops that event and pushes
   a copy whose base = n × period_ns, where period_ns = (last PTS - first PTS) + one frame duration.

4. Lead-in frames (an MP4 edit list that starts mid-GOP, e.g. ``ffmpeg -ss 0.4 -i in.mp4
   -c copy``): qtdemux 1.22 starts the segment at the edit (start = first presented PTS) and
   pushes the GOP from its keyframe, the frames before the edit with PTS below the start and
   no flag. Their running time is invalid, so rtpbasepayload would stamp them with the RTP
   time of running time 0: a jump back of n periods every loop. RTP cannot mark a frame
   "decode, do not show", and sending them with any borrowed time shows a client repeated or
   squeezed timestamps; so they are served as frames of the loop: the probe counts them in
   the period, the video SEGMENT of that edit starts ``lead_ns`` earlier (at the keyframe)
   and every other SEGMENT (audio, other edits) gets ``lead_ns`` more base, keeping A/V sync.
   A client sees one frame step everywhere, the loop starting at the GOP's keyframe.

tsdemux refuses SEGMENT seeks on 1.22: for it the EOS is swallowed and a flushing seek
restarts the file, its flush kept from downstream, so the wrap looks the same (a new SEGMENT).

Contract for elements downstream (the SEI injector): in loop n they see a SEGMENT with
base = n × period_ns (+ lead_ns on pads or edits whose start is not moved) and buffers
carrying the file's original PTS, every one of them in the probe's list.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from gi.repository import Gst  # noqa: I001 - after runtime's gi.require_version

log = logging.getLogger("framecast.looping")

# demuxers that refuse SEGMENT seeks on 1.22 ("seek flags 0x9 are not supported")
EOS_LOOP_DEMUXERS = {"tsdemux"}


@dataclass
class _PadState:
    loop: int = -1        # -1: no segment since the last flush
    seqnum: int = -1      # seqnum of the last SEGMENT: a new one means a new pass (seek)
    edit: int = 0         # index of this SEGMENT within the pass (one per MP4 edit)
    # (start, base) of each SEGMENT of loop 0: an MP4 edit list gives one per edit
    edits0: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class _AudioClip:
    segment: Gst.Segment | None = None
    base0: int | None = None      # base of loop 0's SEGMENT on this pad
    first_rt: int | None = None   # running time of loop 0's first audio frame


# Matroska stores ms: a frame may seem to end up to 1 ms past the window
_AUDIO_TOLERANCE_NS = 1_000_000


class Looper:
    """Seamless looping for one demuxer, usable in any pipeline (RTSP media, WebRTC producer).

    Use: ``looper.attach_demuxer(demux)`` before it exposes pads; once the pipeline has
    prerolled (PAUSED) call :meth:`start`; hand every SEGMENT_DONE message to
    :meth:`on_segment_done` (or call :meth:`watch_bus` for a plain pipeline).
    """

    def __init__(self, period_ns: int, name: str = "", first_pts_ns: int | None = None,
                 lead_ns: int = 0, lead_in_ns: int | None = None) -> None:
        """``first_pts_ns``: the video PTS where the edit starts; when given, :meth:`clip_audio`
        keeps each loop's audio inside one period, so it never overlaps the next loop's first
        packets (the audio track is usually a little longer than the video).
        ``lead_ns`` (needs ``first_pts_ns``): how far the timeline moves, see (4): the probe's
        ``MediaInfo.lead_ns``, or its ``dts_lead_ns`` if more. ``lead_in_ns``: the part of it
        that is presented frames before the edit (``MediaInfo.lead_ns``; default ``lead_ns``):
        a loop's audio window starts there, not wherever the timeline shift alone puts it."""
        if period_ns <= 0:
            raise ValueError("period_ns must be positive")
        self.period_ns = period_ns
        self.lead_ns = max(0, int(lead_ns)) if first_pts_ns is not None else 0
        self.lead_in_ns = self.lead_ns if lead_in_ns is None else \
            min(self.lead_ns, max(0, int(lead_in_ns)))
        self.name = name
        self.first_pts_ns = first_pts_ns
        self._video_rt0: int | None = None  # running time of the first video frame, loop 0
        self.demuxer: Gst.Element | None = None
        self._pads: dict[str, _PadState] = {}
        self._lock = threading.Lock()
        self._pushing = threading.local()
        self._seeks = 0
        self._started = False
        # "segment": SEGMENT seeks (qtdemux, matroskademux). "eos": tsdemux 1.22 refuses
        # SEGMENT seeks, so its EOS is swallowed and a flushing seek restarts it, with the
        # flush kept from reaching downstream (it never sees the wrap but as a new SEGMENT).
        self.mode = "segment"
        self._loop_flush = False
        self._eos_pads: set[str] = set()

    # -- wiring -------------------------------------------------------------------------
    def attach_demuxer(self, demux: Gst.Element) -> None:
        """Watch every source pad ``demux`` adds (call before it reaches PAUSED)."""
        self.demuxer = demux
        factory = demux.get_factory()
        # a failed SEGMENT seek leaves tsdemux's task paused: pick the mode up front
        if factory is not None and factory.get_name() in EOS_LOOP_DEMUXERS:
            self.mode = "eos"
        demux.connect("pad-added", lambda _d, pad: self.watch_pad(pad))
        for pad in demux.srcpads:
            self.watch_pad(pad)

    def watch_pad(self, pad: Gst.Pad) -> None:
        """Rewrite the SEGMENT events leaving ``pad`` (a demuxer source pad)."""
        with self._lock:
            if pad.get_name() in self._pads:
                return
            self._pads[pad.get_name()] = _PadState()
        pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM | Gst.PadProbeType.EVENT_FLUSH,
                      self._on_event)

    def clip_audio(self, pad: Gst.Pad) -> None:
        """Keep each loop's audio inside one period (call with the audio *parser's* src pad:
        there every buffer is one frame with its duration, even from tsdemux's PES packets).

        The loop's window is [W0 + n × period, W0 + (n+1) × period) in running time, W0 = the
        earlier of the video's first frame and the audio's first frame of loop 0. A frame is
        sent only if it lies wholly inside its loop's window: every frame that fits arrives
        once per loop, in order, and never overlaps the next loop's first frames (audio
        longer than the video loses its tail beyond the window; there is no room for it)."""
        if self.first_pts_ns is None:
            return
        state = _AudioClip()
        pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM | Gst.PadProbeType.EVENT_FLUSH,
                      lambda p, i: self._audio_event(state, i))
        pad.add_probe(Gst.PadProbeType.BUFFER, lambda p, i: self._clip_audio(state, p, i))

    def watch_bus(self, pipeline: Gst.Pipeline) -> None:
        """For a plain pipeline: loop on its bus's SEGMENT_DONE (needs a GLib main loop)."""
        bus = pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::segment-done", lambda _b, _m: self.on_segment_done())

    # -- control ------------------------------------------------------------------------
    @property
    def loop_count(self) -> int:
        """How many times the file has wrapped (0 during the first pass)."""
        with self._lock:
            return max(0, max((s.loop for s in self._pads.values()), default=0))

    def start(self, settle_pad: Gst.Pad | None = None, timeout: float = 2.0) -> bool:
        """First seek: FLUSH|SEGMENT to 0. Call once the pipeline has prerolled (PAUSED).

        The flush clears every pad's sticky SEGMENT until the new one arrives. With
        ``settle_pad`` (e.g. the payloader's src pad) this returns only once the new SEGMENT
        has passed it: gst-rtsp-server asserts if a PLAY finds a stream without a segment.
        """
        self._started = True
        settled = threading.Event()
        probe_id = None
        if settle_pad is not None:
            def on_event(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
                if info.get_event().type == Gst.EventType.SEGMENT:
                    settled.set()
                    return Gst.PadProbeReturn.REMOVE
                return Gst.PadProbeReturn.OK

            probe_id = settle_pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, on_event)
        flags = Gst.SeekFlags.FLUSH
        if self.mode != "eos":
            flags |= Gst.SeekFlags.SEGMENT
        ok = self._seek(flags)
        if settle_pad is not None:
            if ok and not settled.wait(timeout):
                log.warning("%s: no segment after the first seek", self.name or "looper")
            if not settled.is_set() and probe_id is not None:
                settle_pad.remove_probe(probe_id)
        return ok

    def on_segment_done(self, *_args: object) -> bool:
        """The file ended: seek back to 0 without flushing, so playback goes on seamlessly."""
        if not self._started:
            return False
        return self._seek(Gst.SeekFlags.SEGMENT)

    def _seek(self, flags: Gst.SeekFlags) -> bool:
        if self.demuxer is None:
            raise RuntimeError("Looper: attach_demuxer() first")
        self._seeks += 1
        ok = self.demuxer.seek(1.0, Gst.Format.TIME, flags, Gst.SeekType.SET, 0,
                               Gst.SeekType.NONE, -1)
        if not ok:
            log.warning("%s: loop seek refused by %s", self.name or "looper",
                        self.demuxer.get_name())
        return ok

    def _on_eos(self, pad: Gst.Pad) -> Gst.PadProbeReturn:
        with self._lock:
            self._eos_pads.add(pad.get_name())
            if self._eos_pads < set(self._pads):
                return Gst.PadProbeReturn.DROP
            self._eos_pads.clear()
        # Not from this streaming thread: a flushing seek stops this very task.
        threading.Thread(target=self._eos_restart, daemon=True,
                         name="framecast-loop-seek").start()
        return Gst.PadProbeReturn.DROP

    def _eos_restart(self) -> None:
        # the demuxer pushes its FLUSH_START/STOP from inside the seek call: only those are
        # kept from downstream, any other flush (a real seek) goes through
        self._loop_flush = True
        try:
            self._seek(Gst.SeekFlags.FLUSH)
        finally:
            self._loop_flush = False

    def _audio_event(self, st: _AudioClip, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        event = info.get_event()
        if event.type == Gst.EventType.FLUSH_STOP:
            st.base0 = st.first_rt = None
        elif event.type == Gst.EventType.SEGMENT:
            seg = event.parse_segment()
            st.segment = seg
            if st.base0 is None:
                st.base0 = seg.base
        return Gst.PadProbeReturn.OK

    def _clip_audio(self, st: _AudioClip, _pad: Gst.Pad,
                    info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        seg = st.segment
        if seg is None or st.base0 is None or buf.pts == Gst.CLOCK_TIME_NONE:
            return Gst.PadProbeReturn.OK
        rt = seg.to_running_time(Gst.Format.TIME, buf.pts)
        if rt == Gst.CLOCK_TIME_NONE:
            # before the edit (qtdemux pushes the frame holding the edit's start): no sink
            # would play it, but the payloader would stamp it with running time 0's RTP time
            return Gst.PadProbeReturn.DROP
        # the loop this frame belongs to: its SEGMENT's base moved by n periods
        loop = max(0, (seg.base - st.base0 + self.period_ns // 2) // self.period_ns)
        if loop == 0 and st.first_rt is None:
            st.first_rt = rt
        rt0 = self._video_rt0
        if rt0 is None or st.first_rt is None:
            return Gst.PadProbeReturn.OK
        start = min(rt0 - self.lead_in_ns, st.first_rt)
        dur = buf.duration if buf.duration != Gst.CLOCK_TIME_NONE else 0
        end = start + (loop + 1) * self.period_ns
        if rt + dur > end + _AUDIO_TOLERANCE_NS or rt + _AUDIO_TOLERANCE_NS < end - self.period_ns:
            return Gst.PadProbeReturn.DROP  # would overlap the next loop (or the previous)
        return Gst.PadProbeReturn.OK

    # -- the timestamp fix --------------------------------------------------------------
    def _on_event(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        event = info.get_event()
        etype = event.type
        if self.mode == "eos" and self._started:
            if etype == Gst.EventType.EOS:
                return self._on_eos(pad)
            if etype in (Gst.EventType.FLUSH_START, Gst.EventType.FLUSH_STOP) and \
                    self._loop_flush:
                if etype == Gst.EventType.FLUSH_STOP:
                    with self._lock:
                        self._eos_pads.discard(pad.get_name())
                return Gst.PadProbeReturn.DROP
        if etype == Gst.EventType.FLUSH_STOP:
            with self._lock:
                self._pads[pad.get_name()] = _PadState()
                self._eos_pads.discard(pad.get_name())
            return Gst.PadProbeReturn.OK
        if etype != Gst.EventType.SEGMENT or getattr(self._pushing, "on", False):
            return Gst.PadProbeReturn.OK
        seg = event.parse_segment()
        if seg.format != Gst.Format.TIME:
            return Gst.PadProbeReturn.OK
        seqnum = event.get_seqnum()
        with self._lock:
            st = self._pads.setdefault(pad.get_name(), _PadState())
            # qtdemux pushes one SEGMENT per edit-list entry, all with the seek's seqnum:
            # count a loop per seek, not per SEGMENT
            if seqnum != st.seqnum:
                st.loop += 1
                st.seqnum, st.edit = seqnum, 0
            else:
                st.edit += 1
            presented = pad.get_name().startswith("video") and \
                self.first_pts_ns is not None and seg.start <= self.first_pts_ns and \
                (seg.stop == Gst.CLOCK_TIME_NONE or self.first_pts_ns < seg.stop)
            if st.loop == 0:
                st.edits0.append((seg.start, seg.base))
                base = seg.base
            else:
                # running time of PTS p in edit k of loop n = p - start_nk + base_nk; make it
                # p - start_0k + base_0k + n * period (exactly one period per loop).
                start0, base0 = st.edits0[min(st.edit, len(st.edits0) - 1)]
                base = base0 + st.loop * self.period_ns + (seg.start - start0)
            loop = st.loop
            # (4): move the whole timeline by lead_ns; the presented video edit by its start,
            # so its lead-in frames (PTS below the start) get valid running times
            back = min(self.lead_ns, seg.start) if presented else 0
            base += self.lead_ns - back
            new_seg = seg.copy()
            new_seg.base = base
            new_seg.start = seg.start - back
            if presented and loop == 0:
                self._video_rt0 = new_seg.to_running_time(Gst.Format.TIME, self.first_pts_ns)
        if base == seg.base and not back:
            return Gst.PadProbeReturn.OK
        new_event = Gst.Event.new_segment(new_seg)
        new_event.set_seqnum(event.get_seqnum())
        log.debug("%s %s: loop %d base %d -> %d", self.name, pad.get_name(), loop, seg.base,
                  base)
        # An event cannot be edited in place from Python: push the fixed copy, drop this one.
        self._pushing.on = True
        try:
            pad.push_event(new_event)
        finally:
            self._pushing.on = False
        return Gst.PadProbeReturn.DROP
