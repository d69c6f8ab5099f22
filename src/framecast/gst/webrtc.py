"""WebRTC delivery: one producer pipeline per mount, one ``webrtcbin`` per viewer.

The mount's encoded, SEI-carrying stream (parsed H.264 access units) is made once and shared::

    source ─ [transcode once: SEI remembered by PTS ─ decode ─ x264enc ─ SEI put back]
           ─ clocksync ─ tee
    tee ─ queue ─ rtph264pay pt=<negotiated> ─ webrtcbin      (one branch per viewer, no encode)

The payloader sits after the tee, one per viewer, because a WHEP offer chooses the payload type
(and webrtcbin 1.22 sends whatever payload type arrives); payloading is a cheap copy.

Chromium here cannot decode High profile (``64xxxx``): such mounts (and H.265 ones) are
transcoded once per mount to constrained-baseline, and our SEI is carried across the decoder by
PTS. Everything in this module runs on the GLib thread except the signal handlers, which do
pure work and hand results to asyncio through the callbacks they were given.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

from framecast.gst import stamps as stamps_native  # noqa: E402
from framecast.gst.element import AccessUnitElement, make_element  # noqa: E402
from framecast.gst.nice import no_upnp  # noqa: E402
from framecast.gst.runtime import init_gst  # noqa: E402

init_gst()  # the element classes below need an initialised GStreamer

log = logging.getLogger("framecast.webrtc")

# Profiles Chromium's H.264 receiver accepts (WEBRTC-NOTES: 42001f, 42e01f, 4d001f, f4001f).
BROWSER_SAFE_PROFILES = {"constrained-baseline", "baseline", "main"}
_PROFILE_IDC = {"constrained-baseline": "42e0", "baseline": "4200", "main": "4d00",
                "high": "6400"}


class WebRTCError(Exception):
    """A viewer could not be set up (bad offer, no common codec): one line for the client."""


class TooManyViewers(WebRTCError):
    """The mount already has ``max_viewers`` viewers."""


class SourceUnavailable(WebRTCError):
    """The mount's source pipeline failed (e.g. a relay's camera is unreachable)."""


SOURCE_FAILED = "source failed"  # how a viewer's end reason starts when its source failed
SOURCE_RETRY = 5.0  # s after a source failure before a new viewer makes it try again


# -- a tiny Python element that rewrites whole access units ---------------------------------------

class AUFilter(AccessUnitElement, Gst.Element):
    """Calls ``fn(au_bytes, pts) -> bytes | None`` per buffer; None passes the buffer unchanged.

    A pad probe cannot replace a buffer (GSTREAMER-NOTES), an element with a chain function can.
    """

    __gtype_name__ = "FramecastAUFilter"
    __gstmetadata__ = ("framecast AU filter", "Filter", "Rewrites access units", "framecast")
    __gsttemplates__ = (
        Gst.PadTemplate.new("sink", Gst.PadDirection.SINK, Gst.PadPresence.ALWAYS,
                            Gst.Caps.new_any()),
        Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS,
                            Gst.Caps.new_any()),
    )

    def __init__(self, fn: Callable[[bytes, int], bytes | None] | None = None) -> None:
        super().__init__()
        self.fn = fn
        self.failures = 0
        self.init_pads()

    def chain(self, pad: Gst.Pad, parent: Any, buf: Gst.Buffer) -> Gst.FlowReturn:
        fn = self.fn
        if fn is None:
            return self.srcpad.push(buf)
        ok, info = buf.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.FlowReturn.ERROR
        try:
            data = bytes(info.data)
        finally:
            buf.unmap(info)
        try:
            new = fn(data, buf.pts)
        except Exception as exc:  # a bad AU must not stop the stream
            self.failures += 1
            if self.failures <= 3 or self.failures % 1000 == 0:
                log.warning("%s: AU filter failed (%d so far), AU passed unchanged: %s",
                            self.get_name(), self.failures, exc)
            new = None
        if new is None:
            return self.srcpad.push(buf)
        out = Gst.Buffer.new_wrapped(new)
        Gst.Buffer.copy_into(out, buf, Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.TIMESTAMPS
                             | Gst.BufferCopyFlags.META, 0, 0)
        return self.srcpad.push(out)


# -- stream description and sources --------------------------------------------------------------

@dataclass
class StreamInfo:
    """What a mount's source produces (parsed access units, byte-stream)."""

    codec: str = "h264"  # "h264" | "h265"
    profile: str | None = None  # as h264parse/h265parse name it, e.g. "high"
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    reordered: bool = False  # B-frames (decode order ≠ presentation order)
    audio: str | None = None  # the mount's audio codec (served over RTSP; not over WebRTC yet)


SourceFactory = Callable[[], "Gst.Element | tuple[Gst.Element, Callable[[Gst.Pipeline], None]]"]
"""Returns a fresh element/bin with one ``src`` pad of parsed AUs carrying our SEI, or
``(element, on_pipeline)`` where ``on_pipeline(pipeline)`` runs once the element is in its
pipeline (before PLAYING; e.g. to wire a :class:`~framecast.gst.looping.Looper` to the bus)."""




def _bin_of(elements: list[Gst.Element], name: str | None = None) -> Gst.Bin:
    """Link ``elements`` in a row inside a bin with ghost ``sink`` (if any) and ``src`` pads."""
    b = Gst.Bin.new(name)
    for el in elements:
        b.add(el)
    for a, z in zip(elements, elements[1:], strict=False):
        if not a.link(z):
            raise WebRTCError(f"cannot link {a.get_name()} to {z.get_name()}")
    first_sink = elements[0].get_static_pad("sink")
    if first_sink is not None:
        b.add_pad(Gst.GhostPad.new("sink", first_sink))
    b.add_pad(Gst.GhostPad.new("src", elements[-1].get_static_pad("src")))
    return b


def test_source(fps: int = 30, width: int = 320, height: int = 240,
                stamp: bool = True, pattern: str = "ball") -> tuple[SourceFactory, StreamInfo]:
    """A live test pattern encoded once (constrained-baseline) with framecast SEI stamps."""

    def build() -> Gst.Element:
        enc = make_element("x264enc", tune="zerolatency", speed_preset="ultrafast", key_int_max=fps,
                    bitrate=800, sliced_threads=False)
        src = make_element("videotestsrc", is_live=True)
        src.set_property("pattern", pattern)
        els = [
            src,
            _caps(f"video/x-raw,format=I420,width={width},height={height},framerate={fps}/1"),
            enc,
            _caps("video/x-h264,profile=constrained-baseline"),
            make_element("h264parse", config_interval=-1),
            _caps("video/x-h264,stream-format=byte-stream,alignment=au"),
        ]
        if stamp:
            els.append(AUFilter(_Stamper("h264").stamp))
        return _bin_of(els)

    return build, StreamInfo("h264", "constrained-baseline", width, height, fps)


class _Stamper:
    """Adds framecast stamps (seq, loop, pts_ns, wallclock_ns) as SEI to each AU.

    With ``frame_ns`` the seq is the presented index taken from the PTS (right with B-frames;
    x264enc shifts PTS by 1000 h, so it counts from the first AU's PTS, which in a closed-GOP
    stream is the lowest); without it, AUs are counted in arrival order.
    """

    def __init__(self, codec: str, frame_ns: int | None = None) -> None:
        self.codec = codec
        self.frame_ns = frame_ns
        self.seq = 0
        self.base: int | None = None

    def stamp(self, au: bytes, pts: int) -> bytes:
        import time

        from framecast import metadata, sei

        pts = pts if pts != Gst.CLOCK_TIME_NONE else 0
        if self.base is None:
            self.base = pts
        seq = round((pts - self.base) / self.frame_ns) if self.frame_ns else self.seq
        self.seq += 1
        payload = metadata.encode_metadata(metadata.stamps(seq, 0, pts, time.time_ns()))
        return sei.insert_sei(au, self.codec, [(metadata.FRAMECAST_UUID, payload)])


def index_source(fps: int = 30, width: int = 320, height: int = 240, profile: str = "high",
                 bframes: int = 0) -> tuple[SourceFactory, StreamInfo]:
    """Live frames showing their index in pixels (``framecast.pixelindex``), encoded once with
    ``profile``/``bframes``, stamped with SEI whose ``seq`` is that same presented index."""
    from framecast.pixelindex import render_frame

    frame_ns = Gst.SECOND // fps

    def build() -> Gst.Element:
        src = make_element("appsrc", is_live=True, format=Gst.Format.TIME, do_timestamp=False,
                    max_bytes=width * height * 3 * 4, block=True)
        src.set_property("caps", Gst.Caps.from_string(
            f"video/x-raw,format=RGB,width={width},height={height},framerate={fps}/1"))
        state = {"i": 0}

        def need_data(appsrc: Gst.Element, _length: int) -> None:
            i = state["i"]
            state["i"] += 1
            buf = Gst.Buffer.new_wrapped(render_frame(i % 65536, width, height).tobytes())
            buf.pts, buf.duration = i * frame_ns, frame_ns
            appsrc.emit("push-buffer", buf)

        src.connect("need-data", need_data)
        enc = make_element("x264enc", speed_preset="ultrafast", key_int_max=fps, bframes=bframes,
                    b_adapt=False, bitrate=800, sliced_threads=False)
        if not bframes:
            enc.set_property("tune", "zerolatency")
        els = [src, make_element("videoconvert"), _caps("video/x-raw,format=I420"), enc,
               _caps(f"video/x-h264,profile={profile}"),
               make_element("h264parse", config_interval=-1),
               _caps("video/x-h264,stream-format=byte-stream,alignment=au"),
               AUFilter(_Stamper("h264", frame_ns).stamp)]
        return _bin_of(els)

    return build, StreamInfo("h264", profile, width, height, fps)


def _caps(text: str) -> Gst.Element:
    return make_element("capsfilter", caps=Gst.Caps.from_string(text))


def source_for_mount(mount: Any) -> tuple[SourceFactory, StreamInfo,
                                          Callable[[], dict[str, Any]]]:
    """The one coupling point to the RTSP side: its mount bin, minus its payloaders.

    ``media.build_media_bin(mount, info)`` gives demux/rtspsrc → parse → SEI injector → ``pay0``
    (+ audio ``pay1``) with a ``Looper`` for file mounts. The WebRTC producer payloads per
    viewer, so ``pay0`` is cut off (its upstream becomes our ghost ``src``) and audio ends in a
    fakesink (video only over WebRTC for now). Returns (factory, info, status) with
    ``status()`` giving ``{"loops": n}``. Raises ``probe.MediaError`` for a bad file.
    """
    from framecast.gst.media import build_media_bin
    from framecast.gst.probe import probe_file

    file = getattr(mount, "file", None)
    media = probe_file(file) if file else None
    if media is not None:
        info = StreamInfo(media.video_codec, media.profile, media.width, media.height, media.fps,
                          reordered=has_reordering(media), audio=media.audio_codec)
    else:  # a relay: the camera's profile is unknown up front, so play safe and transcode
        info = StreamInfo(getattr(mount, "codec", "h264"), None)
    current: list[Any] = []  # the latest run's looper (the producer rebuilds on restart)

    def build() -> tuple[Gst.Element, Callable[[Gst.Pipeline], None]]:
        b = strip_payloaders(build_media_bin(mount, media))
        looper = getattr(b, "looper", None)
        current[:] = [looper]
        demux = b.get_by_name("demux")

        def on_pipeline(pipeline: Gst.Pipeline) -> None:
            if looper is None or demux is None:
                return
            ctx = GLib.MainContext.ref_thread_default()
            # the producer's own signal watch delivers it (Looper.watch_bus would add a second
            # watch that nobody removes when the producer frees the pipeline)
            pipeline.get_bus().connect("message::segment-done",
                                       lambda _b, _m: looper.on_segment_done())

            def start() -> bool:
                looper.start()  # the first FLUSH|SEGMENT seek, once the demuxer has its pads
                return GLib.SOURCE_REMOVE

            def no_more_pads(_demux: Gst.Element) -> None:
                source = GLib.idle_source_new()
                source.set_callback(lambda *_: start())
                source.attach(ctx)

            demux.connect("no-more-pads", no_more_pads)

        return b, on_pipeline

    def status() -> dict[str, Any]:
        looper = current[0] if current else None
        return {"loops": looper.loop_count if looper is not None else 0}

    return build, info, status


def strip_payloaders(b: Gst.Bin) -> Gst.Bin:
    """An RTSP-style bin (``pay0`` video, maybe ``pay1`` audio) made into a WebRTC source:
    ``pay0``'s upstream becomes the ghost ``src`` pad; other payloaders end in fakesinks."""
    pay0 = b.get_by_name("pay0")
    if pay0 is None:
        raise WebRTCError(f"{b.get_name()}: no pay0 payloader to feed WebRTC from")
    upstream = pay0.get_static_pad("sink").get_peer()
    upstream.unlink(pay0.get_static_pad("sink"))
    b.remove(pay0)
    b.add_pad(Gst.GhostPad.new("src", upstream))
    i = 1
    while (pay := b.get_by_name(f"pay{i}")) is not None:
        peer = pay.get_static_pad("sink").get_peer()
        b.remove(pay)
        sink = make_element("fakesink", sync=False)
        sink.set_property("async", False)
        b.add(sink)
        if peer is not None:
            peer.link(sink.get_static_pad("sink"))
        i += 1
    return b


def bin_source(bin_factory: Callable[[], Gst.Bin]) -> SourceFactory:
    """A WebRTC source from an RTSP ``add_mount``-style factory (e.g. app-frame mounts)."""
    return lambda: strip_payloaders(bin_factory())


def file_source(path: str, name: str = "file") -> tuple[SourceFactory, StreamInfo,
                                                        Callable[[], dict[str, Any]]]:
    """A file looped forever: the same bin as its RTSP mount (stamps on)."""
    from framecast.config import Mount

    return source_for_mount(Mount(name=name, file=str(path)))


def needs_transcode(info: StreamInfo) -> bool:
    """True when browsers here cannot play the mount's stream as it is: not H.264, a profile
    Chromium rejects (High), or B-frames (WebRTC receivers expect presentation order; with
    reordering Chromium showed ~2 of 30 frames per second)."""
    return (info.codec != "h264" or info.reordered
            or (info.profile or "high") not in BROWSER_SAFE_PROFILES)


def transcode_reason(info: StreamInfo) -> str:
    if info.codec != "h264":
        return f"{info.codec.upper()} is not received by browsers here"
    if (info.profile or "high") not in BROWSER_SAFE_PROFILES:
        return f"profile {info.profile or 'unknown'} is not received by browsers here"
    if info.reordered:
        return "B-frames (WebRTC receivers expect presentation order)"
    return "requested"


def has_reordering(media: Any, max_buffers: int = 90) -> bool:
    """Whether a file's video has B-frames: its first access units in decode order carry
    PTS ≠ DTS or decreasing PTS. Reads (never decodes) up to ``max_buffers`` buffers."""
    pipe = Gst.parse_launch(
        f"filesrc name=src ! {media.demuxer} name=demux "
        f"{media.parser} name=parse ! fakesink name=sink sync=false")
    pipe.get_by_name("src").set_property("location", str(media.path))
    parse = pipe.get_by_name("parse")
    found = {"n": 0, "reordered": False, "last": -1}
    done = threading.Event()

    def on_pad(_demux: Gst.Element, pad: Gst.Pad) -> None:
        if pad.get_name().startswith("video"):
            pad.link(parse.get_static_pad("sink"))

    def on_buffer(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        pts, dts = buf.pts, buf.dts
        if pts != Gst.CLOCK_TIME_NONE:
            if (dts != Gst.CLOCK_TIME_NONE and dts != pts) or pts < found["last"]:
                found["reordered"] = True
            found["last"] = pts
        found["n"] += 1
        if found["reordered"] or found["n"] >= max_buffers:
            done.set()
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    pipe.get_by_name("demux").connect("pad-added", on_pad)
    parse.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_buffer)
    pipe.set_state(Gst.State.PLAYING)
    bus = pipe.get_bus()
    deadline = 5 * Gst.SECOND
    while not done.is_set():
        msg = bus.timed_pop_filtered(50 * Gst.MSECOND,
                                     Gst.MessageType.EOS | Gst.MessageType.ERROR)
        deadline -= 50 * Gst.MSECOND
        if msg is not None or deadline <= 0:
            break
    pipe.set_state(Gst.State.NULL)
    return bool(found["reordered"])


class _SEICarrier:
    """Carries our SEI across decode → encode.

    Before the decoder the messages are remembered by PTS (decode order); on the decoder's
    output (presentation order, same PTS) they are queued; the encoder (zerolatency: one
    output per input, in order, no reordering) takes them from the queue. Matching by order
    after the decoder, not by PTS, because x264enc shifts output PTS (min-pts, 1000 h) by an
    amount that depends on the first frame and on loops.
    """

    def __init__(self, in_codec: str, keep: int = 600) -> None:
        self.in_codec = in_codec
        self.by_pts: collections.OrderedDict[int, list[tuple[bytes, bytes]]] = (
            collections.OrderedDict())
        self.queue: collections.deque[list[tuple[bytes, bytes]]] = collections.deque(
            maxlen=keep)
        self.keep = keep
        self.lock = threading.Lock()
        self.reinjected = 0

    def remember(self, au: bytes, pts: int) -> None:
        from framecast import metadata, sei

        msgs = [m for m in sei.extract_user_data(au, self.in_codec)
                if m[0] == metadata.FRAMECAST_UUID]
        with self.lock:
            self.by_pts[pts] = msgs
            while len(self.by_pts) > self.keep:
                self.by_pts.popitem(last=False)
        return None

    def decoded(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        if buf is not None:
            with self.lock:
                self.queue.append(self.by_pts.pop(buf.pts, []))
        return Gst.PadProbeReturn.OK

    def reinsert(self, au: bytes, pts: int) -> bytes | None:
        from framecast import sei

        with self.lock:
            msgs = self.queue.popleft() if self.queue else []
        if not msgs:
            return None
        self.reinjected += 1
        return sei.insert_sei(au, "h264", [(uuid, _restamp(data)) for uuid, data in msgs])


def _restamp(payload: bytes) -> bytes:
    """The same envelope with ``wallclock_ns`` = now (when the frame leaves the server)."""
    import time

    from framecast import metadata

    try:
        d = metadata.decode_metadata(payload)
    except metadata.MetadataError:
        return payload
    if "wallclock_ns" not in d:
        return payload
    d["wallclock_ns"] = time.time_ns()
    fmt = "json" if payload[:1] == b"{" else "msgpack"
    return metadata.encode_metadata(d, fmt, limit=None)


def _transcoder(info: StreamInfo, carrier: _SEICarrier) -> list[Gst.Element]:
    fps = int(round(info.fps or 30))
    decoder = make_element("avdec_h264" if info.codec == "h264" else "avdec_h265")
    decoder.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, carrier.decoded)
    return [
        AUFilter(carrier.remember),
        decoder,
        make_element("videoconvert"),
        # without format=I420 x264enc may pick High 4:4:4 (GSTREAMER-NOTES)
        _caps("video/x-raw,format=I420"),
        make_element("x264enc", tune="zerolatency", speed_preset="ultrafast", key_int_max=fps,
              bitrate=2000, sliced_threads=False),
        _caps("video/x-h264,profile=constrained-baseline"),
        make_element("h264parse", config_interval=-1),
        _caps("video/x-h264,stream-format=byte-stream,alignment=au"),
    ]


# -- SDP helpers ---------------------------------------------------------------------------------

def _profile_level_id(profile: str | None, level: str | None) -> str:
    idc = _PROFILE_IDC.get(profile or "", "42e0")
    try:
        lvl = int(round(float(level) * 10)) if level else 31
    except ValueError:
        lvl = 31
    return f"{idc}{lvl:02x}"


def choose_h264_payload(offer_sdp: str, profile_level_id: str) -> tuple[int, str]:
    """Pick the offer's H.264 payload (packetization-mode=1) that fits our stream.

    Our stream is what it is (no per-viewer encode): the offer must accept its profile
    (same profile_idc and constraint flags; browsers offer 42e01f, 4d001f, ...). An offer
    without profile-level-id accepts ours. Returns (payload type, profile-level-id to answer).
    """
    best: tuple[int, int, str] | None = None
    ours = profile_level_id.lower()
    for line in offer_sdp.splitlines():
        if not line.startswith("a=rtpmap:") or "H264/90000" not in line.upper():
            continue
        try:
            pt = int(line[9:].split()[0])
        except (ValueError, IndexError):
            continue
        fmtp = _fmtp(offer_sdp, pt)
        if fmtp.get("packetization-mode", "0") != "1":
            continue
        plid = fmtp.get("profile-level-id", "").lower()
        if not plid or plid[:4] == ours[:4]:
            score = 3
        elif plid[:2] == ours[:2]:
            score = 2
        else:
            continue
        if best is None or score > best[0]:
            best = (score, pt, plid or ours)
    if best is None:
        raise WebRTCError(f"offer has no H.264 (packetization-mode=1) matching the stream's "
                          f"profile-level-id {ours}")
    return best[1], best[2]


def _fmtp(sdp: str, pt: int) -> dict[str, str]:
    prefix = f"a=fmtp:{pt} "
    for line in sdp.splitlines():
        if line.startswith(prefix):
            items = (kv.split("=", 1) for kv in line[len(prefix):].split(";") if "=" in kv)
            return {k.strip().lower(): v.strip() for k, v in items}
    return {}


def _sdp_message(text: str) -> GstSdp.SDPMessage:
    res, msg = GstSdp.SDPMessage.new_from_text(text)
    if res != GstSdp.SDPResult.OK or msg.medias_len() == 0:
        raise WebRTCError("malformed SDP")
    return msg


# -- viewers and the per-mount producer -----------------------------------------------------------

@dataclass
class ViewerEvents:
    """Callbacks for one viewer, each invoked on the asyncio loop (via ``post``)."""

    post: Callable[..., None]  # bridge.to_asyncio
    on_sdp: Callable[[str, str], None] = lambda t, s: None  # (type, sdp) to send to the peer
    on_ice: Callable[[int, str], None] = lambda m, c: None  # (mline index, candidate)
    on_gathered: Callable[[str], None] = lambda sdp: None  # local SDP with all candidates
    on_closed: Callable[[str], None] = lambda reason: None  # ICE failed / pipeline error
    on_connected: Callable[[], None] = lambda: None  # ICE connected: no longer pending


@dataclass
class _Viewer:
    id: str
    events: ViewerEvents
    queue: Gst.Element
    pay: Gst.Element
    webrtc: Gst.Element
    candidates: list[tuple[int, str]] = field(default_factory=list)
    offered: bool = False
    closed: bool = False
    connected: bool = False
    # (object, handler id) of every signal connected with this viewer as user data: the
    # GClosures hold the viewer, the viewer holds the webrtcbin — a cycle through C that
    # Python's GC cannot see, so the element (and its 2 threads, ~30 fds) lived forever
    handlers: list[tuple[Gst.Object, int]] = field(default_factory=list)


class MountProducer:
    """The WebRTC side of one mount. Create and drive it on the GLib thread.

    Lazy: the pipeline runs only while someone watches. The first viewer starts it, and
    ``idle_stop`` seconds after the last viewer left it is set to NULL and freed (no CPU, no
    threads); the next viewer builds a fresh one. ``idle_stop=None`` keeps it running from
    :meth:`start` on (the old always-on behaviour).

    A restart is a new stream, as when an RTSP client starts a media nobody else watches: a file
    plays from its first frame again and ``seq``/``loop`` count from 0 (``seq`` stays the
    presented index since the stream started, so ``seq % frames`` is still the file's frame).
    A viewer that comes back within the grace period joins the running stream (``seq`` goes on).
    """

    def __init__(self, name: str, source: SourceFactory, info: StreamInfo,
                 transcode: bool | None = None, metrics: Any = None,
                 max_viewers: int = 100, idle_stop: float | None = 5.0) -> None:
        init_gst()
        self.max_viewers = max_viewers
        self.name = name
        self.info = info
        self.source = source
        self.idle_stop = idle_stop
        self.transcoded = needs_transcode(info) if transcode is None else transcode
        self.metrics = metrics
        self.viewers: dict[str, _Viewer] = {}
        self.carrier: _SEICarrier | None = None
        self.pipeline: Gst.Pipeline | None = None
        self.tee: Gst.Element | None = None
        self.injectors: list[Gst.Element] = []
        self.running = False
        self.starts = 0  # how many times the pipeline went to PLAYING
        self.frames = 0
        self.bytes_in = 0
        self.error: str | None = None
        self._failed_at: float | None = None  # monotonic time of the source's last failure
        self._sei_before = 0  # SEI counts of pipelines already freed (the metric only grows)
        self._reinjected_before = 0
        self._caps: tuple[str | None, str | None] | None = None  # (profile, level) last seen
        self._idle_timer: GLib.Source | None = None
        self._idle_deadline: float | None = None
        # the GLib thread's context (producers are created there): where teardown is scheduled
        self._context = GLib.MainContext.ref_thread_default()
        # build now so a bad source fails when the mount is added, not at its first viewer;
        # READY opens files (filesrc) without streaming anything
        self._build()
        if self.pipeline.set_state(Gst.State.READY) == Gst.StateChangeReturn.FAILURE:
            self._free()
            raise WebRTCError(f"{name}: the WebRTC source pipeline failed to start")
        self.pipeline.set_state(Gst.State.NULL)  # kept built, for the first viewer

    def _build(self) -> None:
        """A fresh pipeline (NULL state): source ─ [transcode] ─ clocksync ─ tee."""
        info = self.info
        self.carrier = _SEICarrier(info.codec) if self.transcoded else None
        pipeline = Gst.Pipeline.new(f"webrtc-{self.name}")
        built = self.source()
        on_pipeline = None
        if isinstance(built, tuple):
            built, on_pipeline = built
        # Annex B access units from here on, whatever the source's parser would pick
        chain: list[Gst.Element] = [
            built, _caps(f"video/x-{info.codec},stream-format=byte-stream,alignment=au")]
        if self.carrier is not None:
            chain += _transcoder(info, self.carrier)
        else:
            # SPS/PPS in-band before every IDR access unit, whatever the source did
            chain += [make_element("h264parse", config_interval=-1),
                      _caps("video/x-h264,stream-format=byte-stream,alignment=au")]
        # pace non-live sources (files) at real time; live ones pass through
        chain.append(make_element("clocksync"))
        if self.carrier is not None:
            # after clocksync: the frame's wallclock_ns becomes the time it really leaves (the
            # decoder's reordering delay would otherwise count as network latency)
            chain.append(AUFilter(self.carrier.reinsert))
        chain.append(make_element("tee", "tee", allow_not_linked=True))
        for el in chain:
            pipeline.add(el)
        for a, z in zip(chain, chain[1:], strict=False):
            if not a.link(z):
                raise WebRTCError(f"{self.name}: cannot link {a.get_name()} to {z.get_name()}")
        self.pipeline = pipeline
        self.tee = chain[-1]
        # the mount's SEI injector(s), for /metrics (their own ``frames`` counters)
        self.injectors = [el for el in _walk(pipeline)
                          if stamps_native.is_stamps_injector(el)
                          or (isinstance(getattr(el, "frames", None), int)
                              and type(el).__name__ == "FramecastInject")]
        if on_pipeline is not None:
            on_pipeline(pipeline)
        # one shared probe per access unit: frames and bytes (×viewers for bytes sent)
        sink = self.tee.get_static_pad("sink")
        sink.add_probe(Gst.PadProbeType.BUFFER, self._count)
        sink.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, self._on_caps)
        bus = pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._on_error)
        bus.connect("message::warning", self._on_warning)

    def _free(self) -> None:
        """NULL and drop the pipeline (its counters go into the running totals)."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        self._sei_before = self.sei_injected
        self._reinjected_before = self.sei_reinjected
        pipeline.set_state(Gst.State.NULL)
        bus = pipeline.get_bus()
        bus.remove_signal_watch()  # the watch's GSource would otherwise keep the bus alive
        self.pipeline = self.tee = self.carrier = None
        self.injectors = []
        self.running = False
        self._set_running_gauge()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the pipeline now (the first viewer calls this; so does an always-on mount)."""
        self._cancel_idle_stop()
        if self.running:
            return
        if self.pipeline is None:
            self._build()
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            self._free()
            raise SourceUnavailable(f"{self.name}: the WebRTC source pipeline failed to start")
        self.running = True
        self.starts += 1
        self.error = None
        log.info("%s: WebRTC producer started (%s)", self.name,
                 "always on" if self.idle_stop is None else "first viewer")
        if self.metrics is not None:
            self.metrics.inc("framecast_webrtc_producer_starts_total", mount=self.name)
        self._set_running_gauge()

    def stop(self) -> None:
        """End every viewer and free the pipeline (mount removed, server stopping)."""
        self._cancel_idle_stop()
        for vid in list(self.viewers):
            self.remove_viewer(vid)
        self._cancel_idle_stop()
        self._free()

    def _schedule_idle_stop(self) -> None:
        if self.idle_stop is None or not self.running or self.viewers:
            return
        self._cancel_idle_stop()
        self._idle_deadline = time.monotonic() + self.idle_stop
        source = GLib.timeout_source_new(max(0, int(self.idle_stop * 1000)))
        source.set_callback(lambda *_: (self._idle_stop_now(), GLib.SOURCE_REMOVE)[1])
        source.attach(self._context)
        self._idle_timer = source

    def _cancel_idle_stop(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.destroy()
            self._idle_timer = None
        self._idle_deadline = None

    def _idle_stop_now(self) -> None:
        self._idle_timer = None
        self._idle_deadline = None
        if self.viewers or not self.running:
            return
        self._free()
        log.info("%s: WebRTC producer stopped (no viewer for %.1f s)", self.name, self.idle_stop)

    def _set_running_gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.set_gauge("framecast_webrtc_producer_running", int(self.running),
                                   mount=self.name)

    @property
    def stopping_in(self) -> float | None:
        """Seconds until the idle stop, or None when none is pending."""
        if self._idle_deadline is None:
            return None
        return max(0.0, self._idle_deadline - time.monotonic())

    @property
    def sei_injected(self) -> int:
        """Access units given our SEI in this producer (injector + transcode re-injection),
        over all its runs."""
        n = sum(stamps_native.injected_frames(el) for el in self.injectors)
        return self._sei_before + n + (self.carrier.reinjected if self.carrier else 0)

    @property
    def sei_reinjected(self) -> int:
        return self._reinjected_before + (self.carrier.reinjected if self.carrier else 0)

    @property
    def webrtc_profile(self) -> str:
        return "constrained-baseline" if self.transcoded else (self.info.profile or "unknown")

    def webrtcbin_count(self) -> int:
        """Live webrtcbin elements in this mount's pipeline (tests check it returns to 0)."""
        n = 0
        if self.pipeline is None:
            return 0
        it = self.pipeline.iterate_elements()
        while True:
            res, el = it.next()
            if res == Gst.IteratorResult.RESYNC:
                it.resync()
                n = 0
                continue
            if res != Gst.IteratorResult.OK:
                return n
            factory = el.get_factory()
            n += bool(factory and factory.get_name() == "webrtcbin")

    def _count(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        if buf is not None:
            self.frames += 1
            self.bytes_in += buf.get_size()
            if self.metrics is not None:
                self.metrics.inc("framecast_webrtc_frames_total", mount=self.name)
                n = len(self.viewers)
                if n:
                    self.metrics.inc("framecast_webrtc_bytes_sent_total", buf.get_size() * n,
                                     mount=self.name)
        return Gst.PadProbeReturn.OK

    def _on_caps(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        event = info.get_event()
        if event is not None and event.type == Gst.EventType.CAPS:
            s = event.parse_caps().get_structure(0)
            # kept across restarts: a cold start's first viewer is offered the real level
            self._caps = (s.get_string("profile"), s.get_string("level"))
        return Gst.PadProbeReturn.OK

    def _on_error(self, _bus: Gst.Bus, msg: Gst.Message) -> None:
        err, dbg = msg.parse_error()
        src = msg.src.get_name() if msg.src else "?"
        log.error("%s: WebRTC pipeline error from %s: %s (%s)", self.name, src, err.message,
                  _one_line(dbg))
        if self.metrics is not None:
            self.metrics.inc("framecast_errors_total", mount=self.name, kind="webrtc")
        # an error inside one viewer's branch ends that viewer only
        for v in list(self.viewers.values()):
            if msg.src is not None and self._belongs(msg.src, v):
                self._fail(v, f"pipeline error: {err.message}")
                return
        # the source itself failed: nothing will flow, so its viewers end now and new ones are
        # refused (503) for SOURCE_RETRY s, then the next viewer tries a fresh pipeline
        self.error = err.message
        self._failed_at = time.monotonic()
        for v in list(self.viewers.values()):
            self._fail(v, f"{SOURCE_FAILED}: {err.message}")
        self._cancel_idle_stop()
        self._free()

    def _later(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the GLib thread that created this producer."""
        source = GLib.idle_source_new()
        source.set_callback(lambda *_: (fn(), GLib.SOURCE_REMOVE)[1])
        source.attach(self._context)

    def _on_warning(self, _bus: Gst.Bus, msg: Gst.Message) -> None:
        err, _dbg = msg.parse_warning()
        log.debug("%s: warning: %s", self.name, err.message)

    @staticmethod
    def _belongs(obj: Gst.Object, v: _Viewer) -> bool:
        while obj is not None:
            if obj in (v.queue, v.pay, v.webrtc):
                return True
            obj = obj.get_parent()
        return False

    # -- viewers ---------------------------------------------------------------------------------

    def _current_caps(self) -> tuple[str | None, str | None]:
        """(profile, level) of the stream: as last seen at the tee (this run or an earlier
        one), else what the probe said (level unknown: 3.1 is announced)."""
        if self._caps is None:
            return self.webrtc_profile, None
        profile, level = self._caps
        return profile or self.webrtc_profile, level

    def add_viewer(self, viewer_id: str, events: ViewerEvents,
                   offer_sdp: str | None = None) -> None:
        """Create a viewer branch. With ``offer_sdp`` we answer it, otherwise we offer."""
        if viewer_id in self.viewers:
            raise WebRTCError(f"viewer {viewer_id} exists")
        if len(self.viewers) >= self.max_viewers:
            raise TooManyViewers(f"{self.name}: {self.max_viewers} viewers already")
        if self._failed_at is not None and time.monotonic() - self._failed_at < SOURCE_RETRY:
            raise SourceUnavailable(f"{self.name}: {SOURCE_FAILED}: {self.error}")
        profile, level = self._current_caps()
        plid = _profile_level_id(profile, level)
        pt = 96
        offer = None
        if offer_sdp is not None:
            offer = _sdp_message(offer_sdp)  # raises on garbage before we build anything
            pt, plid = choose_h264_payload(offer_sdp, plid)
        queue = make_element("queue", leaky=2, max_size_buffers=60, max_size_time=0,
                             max_size_bytes=0)
        # config-interval=0: SPS/PPS are already in-band before every IDR (h264parse before the
        # tee); with -1, rtph264pay 1.22 repeats them before *each* IDR slice, and a
        # multi-slice keyframe then arrives split into several access units
        # a fixed SSRC announced in the SDP: an answer made before the payloader's caps exist
        # would otherwise announce an invented one, and Chromium drops unannounced SSRCs
        ssrc = random.randrange(1, 2**32)
        pay = make_element("rtph264pay", pt=pt, config_interval=0, aggregate_mode="zero-latency",
                    ssrc=ssrc)
        webrtc = make_element("webrtcbin", bundle_policy=GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        no_upnp(webrtc)
        # stun-server stays at its default (NULL): setting None from Python logs an error
        v = _Viewer(viewer_id, events, queue, pay, webrtc)
        self._cancel_idle_stop()
        if self.pipeline is None:  # stopped for want of viewers: a fresh stream
            self._build()
        for el in (queue, pay, webrtc):
            self.pipeline.add(el)
        queue.link(pay)
        rtp_caps = Gst.Caps.from_string(
            "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,"
            f"payload={pt},packetization-mode=(string)1,profile-level-id=(string){plid},"
            f"ssrc=(uint){ssrc}")
        sinkpad = webrtc.request_pad_simple("sink_%u")
        pay.get_static_pad("src").link(sinkpad)
        trans = sinkpad.get_property("transceiver")
        trans.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        trans.set_property("codec-preferences", rtp_caps)

        for sig, fn in (("on-ice-candidate", self._on_ice_candidate),
                        ("notify::ice-gathering-state", self._on_gathering),
                        ("notify::ice-connection-state", self._on_ice_state)):
            v.handlers.append((webrtc, webrtc.connect(sig, fn, v)))
        # a peer that leaves without a word (WHEP page closed, no DELETE): its RTCP BYE, or its
        # RTCP going silent, ends the viewer (libnice 0.1.21 has no consent freshness)
        rtpbin = webrtc.get_by_name("rtpbin")
        if rtpbin is not None:
            for sig, why in (("on-bye-ssrc", "RTCP BYE"), ("on-timeout", "RTCP timeout")):
                v.handlers.append((rtpbin, rtpbin.connect(sig, self._on_peer_gone, v, why)))
        self.viewers[viewer_id] = v
        for el in (queue, pay, webrtc):
            el.sync_state_with_parent()
        teepad = self.tee.request_pad_simple("src_%u")
        try:
            teepad.link(queue.get_static_pad("sink"))  # gi's override raises on failure
        except Exception as exc:
            self.tee.release_request_pad(teepad)
            self.remove_viewer(viewer_id)
            raise WebRTCError(f"{self.name}: the stream does not fit the negotiated H.264 "
                              f"payload {plid} ({exc})") from None
        if not self.running:
            # started once the branch is linked: a fresh stream's first keyframe reaches it
            try:
                self.start()
            except WebRTCError:
                self.remove_viewer(viewer_id)
                raise
        if self.metrics is not None:
            self.metrics.set_gauge("framecast_webrtc_viewers", len(self.viewers), mount=self.name)

        if offer is None:
            promise = Gst.Promise.new_with_change_func(self._on_offer_created, v)
            webrtc.emit("create-offer", None, promise)
        else:
            desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, offer)
            promise = Gst.Promise.new_with_change_func(self._on_remote_offer_set, v)
            webrtc.emit("set-remote-description", desc, promise)

    def set_remote(self, viewer_id: str, sdp_type: str, sdp: str) -> None:
        v = self._viewer(viewer_id)
        msg = _sdp_message(sdp)
        if sdp_type != "answer":
            raise WebRTCError("the producer made the offer: expected an answer")
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        # a rejected answer ends the viewer now (it would otherwise wait for the pending timeout)
        promise = Gst.Promise.new_with_change_func(self._on_remote_answer_set, v)
        v.webrtc.emit("set-remote-description", desc, promise)

    def add_ice(self, viewer_id: str, mline: int, candidate: str) -> None:
        v = self._viewer(viewer_id)
        if candidate:  # an empty candidate only marks the end of gathering
            v.webrtc.emit("add-ice-candidate", mline, candidate)

    def remove_viewer(self, viewer_id: str) -> bool:
        """Unlink and destroy a viewer's branch; False if it was already gone."""
        v = self.viewers.pop(viewer_id, None)
        if v is None:
            return False
        v.closed = True
        qsink = v.queue.get_static_pad("sink")
        teepad = qsink.get_peer()
        if teepad is not None:
            teepad.unlink(qsink)
            teepad.get_parent_element().release_request_pad(teepad)
        for obj, hid in v.handlers:
            obj.disconnect(hid)
        v.handlers.clear()
        for el in (v.webrtc, v.pay, v.queue):
            el.set_state(Gst.State.NULL)
            parent = el.get_parent()
            if parent is not None:
                parent.remove(el)
        if self.metrics is not None:
            self.metrics.set_gauge("framecast_webrtc_viewers", len(self.viewers), mount=self.name)
        if not self.viewers:
            self._schedule_idle_stop()
        return True

    def _viewer(self, viewer_id: str) -> _Viewer:
        v = self.viewers.get(viewer_id)
        if v is None:
            raise WebRTCError(f"unknown viewer '{viewer_id}'")
        return v

    def _fail(self, v: _Viewer, reason: str) -> None:
        if not v.closed:
            self.remove_viewer(v.id)
            v.events.post(v.events.on_closed, reason)

    # -- webrtcbin callbacks (webrtcbin's threads: pure work + hand-off) ------------------------

    def _on_offer_created(self, promise: Gst.Promise, v: _Viewer) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None or v.closed:
            if not v.closed:
                v.events.post(v.events.on_closed, "could not create an offer")
            return
        text = offer.sdp.as_text()  # read before webrtcbin owns it
        v.webrtc.emit("set-local-description", offer, None)
        v.offered = True
        v.events.post(v.events.on_sdp, "offer", text)

    def _on_remote_answer_set(self, promise: Gst.Promise, v: _Viewer) -> None:
        error = _promise_error(promise)
        if error is not None and not v.closed:
            self._later(lambda: self._fail(v, f"answer rejected: {error}"))

    def _on_remote_offer_set(self, promise: Gst.Promise, v: _Viewer) -> None:
        if v.closed:
            return
        error = _promise_error(promise)
        if error is not None:
            self._later(lambda: self._fail(v, f"offer rejected: {error}"))
            return
        promise = Gst.Promise.new_with_change_func(self._on_answer_created, v)
        v.webrtc.emit("create-answer", None, promise)

    def _on_answer_created(self, promise: Gst.Promise, v: _Viewer) -> None:
        reply = promise.get_reply()
        answer = reply.get_value("answer") if reply is not None else None
        if answer is None or v.closed:
            if not v.closed:
                v.events.post(v.events.on_closed, "could not create an answer")
            return
        text = answer.sdp.as_text()  # read before webrtcbin owns it
        v.webrtc.emit("set-local-description", answer, None)
        v.events.post(v.events.on_sdp, "answer", text)

    def _on_ice_candidate(self, _webrtc: Gst.Element, mline: int, candidate: str,
                          v: _Viewer) -> None:
        v.candidates.append((mline, candidate))
        if not v.closed:
            v.events.post(v.events.on_ice, mline, candidate)

    def _on_gathering(self, webrtc: Gst.Element, _pspec: Any, v: _Viewer) -> None:
        state = webrtc.get_property("ice-gathering-state")
        if state != GstWebRTC.WebRTCICEGatheringState.COMPLETE or v.closed:
            return
        desc = webrtc.get_property("local-description")
        if desc is None:
            return
        v.events.post(v.events.on_gathered, _with_candidates(desc.sdp.as_text(), v.candidates))

    def _on_ice_state(self, webrtc: Gst.Element, _pspec: Any, v: _Viewer) -> None:
        state = webrtc.get_property("ice-connection-state")
        log.debug("%s: viewer %s ICE %s", self.name, v.id, state.value_nick)
        if state in (GstWebRTC.WebRTCICEConnectionState.CONNECTED,
                     GstWebRTC.WebRTCICEConnectionState.COMPLETED) and not v.connected:
            v.connected = True
            if not v.closed:
                v.events.post(v.events.on_connected)
        if state in (GstWebRTC.WebRTCICEConnectionState.FAILED,
                     GstWebRTC.WebRTCICEConnectionState.CLOSED) and not v.closed:
            # tear down on the GLib thread, never inside webrtcbin's own thread
            self._later(lambda: self._fail(v, f"ICE {state.value_nick}"))

    def _on_peer_gone(self, _rtpbin: Gst.Element, _session: int, ssrc: int, v: _Viewer,
                      why: str) -> None:
        if ssrc != v.pay.get_property("ssrc") and not v.closed:
            self._later(lambda: self._fail(v, f"peer left ({why})"))

    # -- reporting -------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "codec": self.info.codec,
            "profile": self.info.profile,
            "b_frames": self.info.reordered,
            "audio": self.info.audio,
            "webrtc": {
                "codec": "h264",
                "profile": self.webrtc_profile,
                "transcoded": self.transcoded,
                "transcode_reason": transcode_reason(self.info) if self.transcoded else None,
                "viewers": len(self.viewers),
                "webrtcbins": self.webrtcbin_count(),
                "sei_reinjected": self.sei_reinjected,
                # lazy producer: runs only while watched (see MountProducer)
                "producer_running": self.running,
                "producer_starts": self.starts,
                "idle_stop_s": self.idle_stop,
                "stopping_in_s": (None if (left := self.stopping_in) is None
                                  else round(left, 2)),
            },
            "frames": self.frames,
            "error": self.error,
        }


def _one_line(text: str | None, limit: int = 300) -> str:
    from framecast.http.ratelog import bounded

    return bounded(" ".join((text or "").split()), limit)


def _promise_error(promise: Gst.Promise) -> str | None:
    """webrtcbin's error for a failed description, if its reply carries one (cut short)."""
    reply = promise.get_reply()
    if reply is None or not reply.has_field("error"):
        return None
    from framecast.http.ratelog import bounded

    err = reply.get_value("error")
    return bounded(getattr(err, "message", err), 160)  # it may quote the peer's SDP


def _walk(b: Gst.Bin) -> list[Gst.Element]:
    """Every element inside ``b``, recursively."""
    out: list[Gst.Element] = []
    it = b.iterate_recurse()
    while True:
        res, el = it.next()
        if res == Gst.IteratorResult.RESYNC:
            it.resync()
            out.clear()
            continue
        if res != Gst.IteratorResult.OK:
            return out
        out.append(el)


def _with_candidates(sdp: str, candidates: list[tuple[int, str]]) -> str:
    """Make sure every gathered candidate is in the SDP (non-trickle WHEP answers)."""
    if "a=candidate:" in sdp or not candidates:
        return sdp
    lines = sdp.rstrip("\r\n").split("\r\n")
    out: list[str] = []
    mline = -1
    for line in lines:
        if line.startswith("m="):
            if mline >= 0:
                out += [f"a={c}" for m, c in candidates if m == mline]
            mline += 1
        out.append(line)
    out += [f"a={c}" for m, c in candidates if m == mline]
    return "\r\n".join(out) + "\r\n"


__all__ = ["AUFilter", "MountProducer", "SourceUnavailable", "StreamInfo", "ViewerEvents",
           "WebRTCError", "choose_h264_payload", "file_source", "needs_transcode", "test_source"]
