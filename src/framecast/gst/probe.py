"""Probe a video file once: container, codecs, size, rate, and every presented video PTS.

The file is read with the same demuxer + parser the server uses, at full speed into a fakesink,
so ``video_pts`` and ``period_ns`` are exactly what the looping pipeline will see.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from gi.repository import Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.codecs import CARRIED_AUDIO, CODECS, audio_codec_of_caps
from framecast.errors import (
    CorruptMedia,
    MediaError,
    MediaNotFound,
    MediaUnreadable,
    NoVideo,
    UnsupportedMedia,
)
from framecast.gst.element import make_element
from framecast.gst.plumbing import add_chain, drain, wait_bus
from framecast.gst.runtime import init_gst
from framecast.isobmff import mfra_offset
from framecast.sei import Codec

log = logging.getLogger("framecast.probe")

# typefind caps name -> (container, demuxer)
CONTAINERS = {
    "video/quicktime": ("mp4", "qtdemux"),
    "audio/x-m4a": ("mp4", "qtdemux"),
    "application/x-3gp": ("mp4", "qtdemux"),
    "video/x-matroska": ("mkv", "matroskademux"),
    "video/webm": ("mkv", "matroskademux"),
    "audio/webm": ("mkv", "matroskademux"),
    "video/mpegts": ("ts", "tsdemux"),
}
DEMUXERS = {"mp4": "qtdemux", "mkv": "matroskademux", "ts": "tsdemux"}
PARSERS = {c.name: c.parser for c in CODECS.values()}
VIDEO_CODECS = {c.caps: c.name for c in CODECS.values()}
# names for the codecs we refuse, so the error says what the file holds
OTHER_VIDEO = {"video/x-vp9": "VP9", "video/x-vp8": "VP8", "image/jpeg": "MJPEG",
               "video/x-av1": "AV1", "video/mpeg": "MPEG video", "video/x-theora": "Theora"}

PROBE_TIMEOUT_S = 60.0


def _int_field(s: Gst.Structure, name: str) -> int | None:
    ok, value = s.get_int(name)
    return value if ok else None


def _audio_name(media_type: str, s: Gst.Structure) -> str:
    """A short name for audio we do not carry: vorbis, flac, mp2, eac3, raw..."""
    if media_type == "audio/mpeg":
        return f"mpeg{_int_field(s, 'mpegversion') or ''} audio"
    name = media_type.removeprefix("audio/").removeprefix("x-")
    return "pcm" if name == "raw" else name


@dataclass(frozen=True)
class MediaInfo:
    path: str
    container: str                 # mp4 | mkv | ts
    video_codec: Codec
    profile: str | None
    width: int
    height: int
    framerate: tuple[int, int]     # (num, den); (0, 1) when the container gives none
    audio_codec: str | None        # one of codecs.AUDIO_CODECS, or None (other audio dropped)
    video_pts: tuple[int, ...] = field(repr=False)  # sorted PTS of every frame served, ns
    frame_ns: int = 0              # one frame's duration
    period_ns: int = 0             # (last PTS - first PTS) + one frame: the loop period
    # Lead-in: an MP4 edit list that starts mid-GOP (``ffmpeg -ss X -i in -c copy``) makes
    # qtdemux push the GOP from its keyframe, the frames before the edit (decode-only in the
    # file) with PTS below the segment start. RTP cannot mark a frame "decode, do not show",
    # so framecast serves them as frames of the loop: they are in ``video_pts`` and the
    # period. ``lead_ns``: how far before the edit the keyframe lies (0: no lead-in);
    # ``lead_frames``: how many frames that is.
    lead_ns: int = 0
    lead_frames: int = 0
    # Fragmented MP4 with an ``mfra`` index: serve only the bytes before it, qtdemux 1.22
    # mis-times the first fragment after a seek when it has one (framecast.isobmff).
    served_bytes: int | None = None
    # buffers each demuxer source pad pushes in one pass (by pad name): lets a remuxer end a
    # stream that stops early (the demuxer sends EOS on every pad only at the very end)
    pad_buffers: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    # PTS go back in decode order (B-frames): the RTSP side then needs a DTS for its backlog
    reordered: bool = False
    has_dts: bool = False          # the demuxer gives DTS (MP4, TS; not Matroska)
    # how far the first DTS lie before their segment's start (B-frames in MP4/TS: the
    # reorder delay); the loop's timeline is moved by it so every DTS has a running time
    dts_lead_ns: int = 0
    dropped_audio: str | None = None  # the audio it has that is not served (e.g. "vorbis")

    @property
    def demuxer(self) -> str:
        return DEMUXERS[self.container]

    @property
    def parser(self) -> str:
        return PARSERS[self.video_codec]

    @property
    def frames(self) -> int:
        return len(self.video_pts)

    @property
    def first_pts(self) -> int:
        return self.video_pts[0]

    @property
    def fps(self) -> float:
        num, den = self.framerate
        return num / den if num and den else Gst.SECOND / self.frame_ns

    def index_of_pts(self, pts_ns: int) -> int:
        """Presented index (0-based, within one loop) of a frame with this original PTS."""
        import bisect

        i = bisect.bisect_left(self.video_pts, pts_ns)
        if i < len(self.video_pts) and self.video_pts[i] == pts_ns:
            return i
        # nearest (PTS rounded by a container)
        if i > 0 and (i == len(self.video_pts) or
                      pts_ns - self.video_pts[i - 1] < self.video_pts[i] - pts_ns):
            return i - 1
        return min(i, len(self.video_pts) - 1)


def _frame_duration(pts: list[int], last_duration: int, framerate: tuple[int, int]) -> int:
    """One frame's duration, used to place the next loop's first frame after the last one.

    Constant rate: from the caps' frame rate (exact, unlike ms-rounded Matroska steps).
    Variable rate (the caps then hold only an average): the last frame's own duration, else
    the median step.
    """
    steps = sorted(b - a for a, b in zip(pts, pts[1:], strict=False))
    variable = bool(steps) and steps[-1] - steps[0] > 2 * Gst.MSECOND
    num, den = framerate
    if num > 0 and den > 0 and not variable:
        return Gst.util_uint64_scale_int(Gst.SECOND, den, num)
    if last_duration > 0:
        return last_duration
    if steps:
        return steps[len(steps) // 2]
    return Gst.SECOND // 30


def _period(pts: list[int], frame_ns: int, framerate: tuple[int, int]) -> int:
    """(last PTS - first PTS) + one frame; for a constant rate, a whole number of frames:
    Matroska rounds PTS to the millisecond, and a period 0.33 ms too long made every loop
    drift 0.33 ms later (audio included) against the clock."""
    span = pts[-1] - pts[0]
    uniform = all(abs(b - a - frame_ns) <= 2 * Gst.MSECOND
                  for a, b in zip(pts, pts[1:], strict=False))
    if framerate[0] > 0 and frame_ns > 0 and uniform:
        n = (span + frame_ns // 2) // frame_ns
        if abs(span - n * frame_ns) <= Gst.MSECOND:
            num, den = framerate  # exact: n+1 frames of den/num s, not n+1 rounded frames
            return Gst.util_uint64_scale(n + 1, Gst.SECOND * den, num)
    return span + frame_ns


def check_path(path: Path) -> None:
    """Raise a one-line :class:`MediaError` if ``path`` is missing, a directory or unreadable."""
    name = path.name
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MediaNotFound(f"{name}: no such file") from None
    except OSError as exc:
        raise MediaUnreadable(f"{name}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise MediaUnreadable(f"{name}: is a directory, not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(1)
    except OSError as exc:
        raise MediaUnreadable(f"{name}: cannot read ({exc.strerror or exc})") from None
    if not head:
        raise CorruptMedia(f"{name}: empty file")


def probe_file(path: str | os.PathLike[str]) -> MediaInfo:
    """Inspect ``path``; raises a :class:`MediaError` subclass with a one-line message."""
    init_gst()
    p = Path(path)
    check_path(p)
    name = p.name
    return _Probe(p, name).run()


class _Probe:
    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self.lock = threading.Lock()
        self.error: MediaError | None = None
        self.container: str | None = None
        self.video_caps: Gst.Caps | None = None
        self.video_codec: Codec | None = None
        self.audio_codec: str | None = None
        self.dropped_audio: str | None = None
        self.pts: list[int] = []
        self.leads: dict[int, int] = {}  # PTS -> segment start - PTS, frames before the edit
        self.after_stop = 0  # decode-only frames past the segment stop
        self.reordered = False  # a PTS below the previous one in decode order (B-frames)
        self._last_pts: int | None = None
        self.has_dts = False
        self.dts_lead = 0
        self.durations: dict[int, int] = {}
        self.pad_buffers: dict[str, int] = {}
        self.pipeline = Gst.Pipeline.new(f"probe-{name}")
        # the demuxer is added and started from typefind's streaming thread: the NULL at the
        # end waits for that to finish, never races it (a demuxer that errors while it starts
        # — a truncated MP4 without its moov — hung DESCRIBE for good: the pipeline's NULL
        # against the streaming thread still inside sync_state_with_parent)
        self.plumbing = threading.Lock()
        self.closing = False

    def fail(self, exc: MediaError) -> None:
        with self.lock:
            if self.error is None:
                self.error = exc

    def run(self) -> MediaInfo:
        tf = make_element("typefind")
        add_chain(self.pipeline, [make_element("filesrc", location=str(self.path)), tf])
        tf.connect("have-type", self._on_type)
        bus = self.pipeline.get_bus()
        self.pipeline.set_state(Gst.State.PLAYING)
        try:
            deadline = Gst.util_get_timestamp() + int(PROBE_TIMEOUT_S * Gst.SECOND)
            while True:
                left = max(0, deadline - Gst.util_get_timestamp())
                msg = wait_bus(bus, min(left, Gst.SECOND // 10))
                if self.error is not None:
                    raise self.error
                if msg is None:
                    if left == 0:
                        raise CorruptMedia(f"{self.name}: timed out reading the file")
                    continue
                if msg.type == Gst.MessageType.ERROR:
                    raise self._error_from(msg)
                break
        finally:
            with self.plumbing:
                self.closing = True
            self.pipeline.set_state(Gst.State.NULL)
        if self.error is not None:
            raise self.error
        return self._result()

    def _error_from(self, msg: Gst.Message) -> MediaError:
        err, _dbg = msg.parse_error()
        text = (err.message or "read error").rstrip(".")
        if err.matches(Gst.StreamError.quark(), Gst.StreamError.TYPE_NOT_FOUND) or \
                self.container is None and "type" in text.lower():
            return CorruptMedia(f"{self.name}: not a video file (unknown format)")
        if err.matches(Gst.ResourceError.quark(), Gst.ResourceError.OPEN_READ):
            return MediaUnreadable(f"{self.name}: cannot read ({text})")
        return CorruptMedia(f"{self.name}: corrupt or truncated ({text})")

    def _on_type(self, tf: Gst.Element, _prob: int, caps: Gst.Caps) -> None:
        cname = caps.get_structure(0).get_name()
        entry = CONTAINERS.get(cname)
        if entry is None:
            if cname.startswith("audio/"):
                self.fail(NoVideo(f"{self.name}: no video stream ({cname})"))
            elif cname.startswith(("video/", "image/")):
                what = OTHER_VIDEO.get(cname, cname)
                self.fail(UnsupportedMedia(
                    f"{self.name}: unsupported format {what} (framecast serves H.264 and H.265 "
                    "in MP4/MOV, Matroska/WebM or MPEG-TS)"))
            else:
                self.fail(CorruptMedia(f"{self.name}: not a video file ({cname})"))
            return
        self.container, demux_name = entry
        with self.plumbing:
            if self.closing:
                return
            demux = Gst.ElementFactory.make(demux_name)
            self.pipeline.add(demux)
            demux.connect("pad-added", self._on_pad)
            demux.connect("no-more-pads", self._on_no_more_pads)
            tf.link(demux)
            demux.sync_state_with_parent()

    def _count(self, pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        name = pad.get_name()
        self.pad_buffers[name] = self.pad_buffers.get(name, 0) + 1
        return Gst.PadProbeReturn.OK

    def _on_pad(self, _demux: Gst.Element, pad: Gst.Pad) -> None:
        pad.add_probe(Gst.PadProbeType.BUFFER, self._count)
        caps = pad.get_current_caps() or pad.query_caps(None)
        s = caps.get_structure(0)
        cname = s.get_name()
        if cname.startswith("video/") or cname == "image/jpeg":
            codec = VIDEO_CODECS.get(cname)
            if codec is None:
                what = OTHER_VIDEO.get(cname, cname)
                self.fail(UnsupportedMedia(
                    f"{self.name}: unsupported video codec {what} "
                    "(framecast serves H.264 and H.265)"))
                return
            if self.video_codec is not None:
                return  # only the first video stream is served
            self.video_codec = codec
            parse = make_element(PARSERS[codec])
            sink = make_element("fakesink", sync=False)
            sink.set_property("async", False)
            parse.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self._on_buffer)
            add_chain(self.pipeline, [parse, sink], start=True)
            pad.link(parse.get_static_pad("sink"))
            # the container's own durations (the parser rewrites them from the average rate)
            pad.add_probe(Gst.PadProbeType.BUFFER, self._on_demuxed)
            return
        if cname.startswith("audio/") and self.audio_codec is None:
            acodec = audio_codec_of_caps(cname, _int_field(s, "mpegversion"))
            if acodec is None:
                self.dropped_audio = _audio_name(cname, s)
                return
            self.audio_codec = acodec
        # audio and anything else: drain it so the demuxer never sees not-linked
        drain(self.pipeline, pad)

    def _on_no_more_pads(self, _demux: Gst.Element) -> None:
        if self.video_codec is None and self.error is None:
            self.fail(NoVideo(f"{self.name}: no video stream"))

    def _on_demuxed(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        if buf.pts != Gst.CLOCK_TIME_NONE and buf.duration != Gst.CLOCK_TIME_NONE:
            self.durations[buf.pts] = buf.duration
        return Gst.PadProbeReturn.OK

    def _on_buffer(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        if buf.pts != Gst.CLOCK_TIME_NONE:
            if self._last_pts is not None and buf.pts < self._last_pts:
                self.reordered = True
            self._last_pts = buf.pts
            ev = pad.get_sticky_event(Gst.EventType.SEGMENT, 0)
            seg = ev.parse_segment() if ev is not None else None
            if buf.dts != Gst.CLOCK_TIME_NONE:
                self.has_dts = True
                if seg is not None and seg.format == Gst.Format.TIME and buf.dts < seg.start:
                    self.dts_lead = max(self.dts_lead, seg.start - buf.dts)
            # presented = a valid running time, exactly what the payloader and sinks use
            if seg is None or seg.format != Gst.Format.TIME or \
                    seg.to_running_time(Gst.Format.TIME, buf.pts) != Gst.CLOCK_TIME_NONE:
                self.pts.append(buf.pts)
            elif buf.pts < seg.start:
                self.leads[buf.pts] = seg.start - buf.pts
            else:
                self.after_stop += 1
        if self.video_caps is None:
            self.video_caps = pad.get_current_caps()
        return Gst.PadProbeReturn.OK

    def _result(self) -> MediaInfo:
        if self.video_codec is None:
            raise NoVideo(f"{self.name}: no video stream")
        if not self.pts or self.video_caps is None:
            raise CorruptMedia(f"{self.name}: corrupt or truncated (no video frames)")
        if self.after_stop:
            log.warning("%s: %d frames past the edit list's end are not served", self.name,
                        self.after_stop)
        if self.dropped_audio:
            log.warning("%s: its %s audio is not served (%s); video only", self.name,
                        self.dropped_audio, CARRIED_AUDIO)
        s = self.video_caps.get_structure(0)
        ok_w, width = s.get_int("width")
        ok_h, height = s.get_int("height")
        ok_r, num, den = s.get_fraction("framerate")
        framerate = (num, den) if ok_r and num > 0 else (0, 1)
        pts = sorted(set(self.pts) | set(self.leads))
        frame_ns = _frame_duration(pts, self.durations.get(pts[-1], 0), framerate)
        period = _period(pts, frame_ns, framerate)
        assert self.container is not None
        served = mfra_offset(self.path) if self.container == "mp4" else None
        return MediaInfo(
            path=str(self.path), container=self.container, video_codec=self.video_codec,
            profile=s.get_string("profile"), width=width if ok_w else 0,
            height=height if ok_h else 0, framerate=framerate, audio_codec=self.audio_codec,
            dropped_audio=self.dropped_audio,
            video_pts=tuple(pts), frame_ns=frame_ns, period_ns=period,
            lead_ns=max(self.leads.values(), default=0), lead_frames=len(self.leads),
            served_bytes=served, pad_buffers=dict(self.pad_buffers),
            reordered=self.reordered, has_dts=self.has_dts,
            dts_lead_ns=self.dts_lead if self.reordered else 0)
