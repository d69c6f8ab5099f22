"""``framecast.Publisher``: push numpy frames with a metadata dict each; served at a mount.

    appsrc ! videoconvert ! I420 ! x264enc (zerolatency, constrained-baseline) ! h264parse
           ! framecastinject ! rtph264pay name=pay0            (x265enc/h265parse for codec="h265")

Each frame's PTS is the media pipeline's running time when it is pushed; the dict is handed
to the injector under that PTS, so it lands on exactly that frame (stamps added beside it).

    with framecast.Publisher("cam", 640, 480, 30) as pub:     # own server: RTSP :8554,
        pub.push(frame, {"boxes": [[10, 20, 50, 60]]})          # viewer/WebRTC :8080

Audio (``audio="aac"`` or ``"opus"``): :meth:`Publisher.push_audio` takes numpy PCM, encoded
beside the video into ``pay1`` (AAC or Opus over RTSP; WebRTC takes Opus from the same bin)::

    appsrc (F32LE, audio_rate, audio_channels) ! audioconvert ! audioresample ! avenc_aac
           ! aacparse ! rtpmp4gpay name=pay1         (opusenc ! rtpopuspay for audio="opus")

Audio is on the video's clock (the media's running time): the first chunk starts when it is
pushed, and each next one where the previous ended, so a chunk pushed with frame N starts at
frame N's PTS as long as the application keeps pace (a late push that is caught up within
``AUDIO_BEHIND_NS`` changes nothing: the stream stays gapless and back in step). Past that it
resyncs with a gap of silence; audio more than ``AUDIO_AHEAD_NS`` ahead of the clock (pushed
faster than real time, e.g. catching up after such a gap) loses the chunk's head. Never a
timestamp going backwards.

The mount is served on every output of its server: RTSP, WebRTC (signalling, WHEP), the
viewer, ``/api/streams``. Its H.264 is constrained-baseline, which browsers play as it is (no
transcode). Each output that is being watched runs its own media from the same frames (one
encode per watched output: RTSP and WebRTC each).

Frames: ``pixel_format`` RGB/BGR (H×W×3), RGBA/BGRA/RGBx/BGRx (H×W×4), or I420/NV12 as
OpenCV lays them out (H·3/2 × W, e.g. ``cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)``): half
the bytes of RGB and no conversion before the encoder.

Copy contract of :meth:`Publisher.push`:
- ``copy=True`` (default): the frame is copied (in C, without the GIL) before ``push``
  returns; the caller may reuse or overwrite the array at once, as with any writer.
- ``copy=False``: zero-copy. GStreamer reads the array's own memory; the publisher holds a
  reference until GStreamer frees the buffer (after conversion / encoding), so dropping the
  array is safe, but *writing* to it before then changes the picture that is sent, and its
  metadata would no longer match. Use it for arrays made fresh per frame (camera reads,
  ``cvtColor`` results); ``in_flight`` counts the frames still held. An array that is not
  C-contiguous, or whose memory numpy does not own (a view on an mmap, a ctypes or camera
  buffer that may be recycled), is copied anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("framecast.publisher")

# browsers play it as it is: WebRTC passes it through (framecast.streaminfo)
H264_PROFILE = "constrained-baseline"
AUDIO_CODECS = {"aac": ("avenc_aac ! aacparse", "rtpmp4gpay"),  # (encoder, payloader)
                "opus": ("opusenc ! opusparse", "rtpopuspay")}
AUDIO_BEHIND_NS = 250_000_000  # audio this far behind the video's clock: a gap (see above)
AUDIO_AHEAD_NS = 50_000_000  # this far ahead: the chunk's head is dropped
PIXEL_FORMATS = ("RGB", "BGR", "RGBA", "BGRA", "RGBx", "BGRx", "I420", "NV12")


def frame_layout(pixel_format: str, width: int, height: int
                 ) -> tuple[tuple[int, ...], list[int], list[int]]:
    """(numpy shape, plane offsets, plane strides) of a tightly packed frame."""
    if pixel_format in ("I420", "NV12"):
        if width % 2 or height % 2:
            raise ValueError(f"{pixel_format} needs an even width and height, "
                             f"not {width}x{height}")
        y = width * height
        if pixel_format == "I420":
            return (height * 3 // 2, width), [0, y, y + y // 4], [width, width // 2, width // 2]
        return (height * 3 // 2, width), [0, y], [width, width]
    bpp = 3 if pixel_format in ("RGB", "BGR") else 4
    return (height, width, bpp), [0], [width * bpp]


# -- GstBuffer through ctypes: wrap or copy numpy memory, push it, no GI on the hot path -------

class _MiniObject(ctypes.Structure):
    _fields_ = [("type", ctypes.c_size_t), ("refcount", ctypes.c_int),
                ("lockstate", ctypes.c_int), ("flags", ctypes.c_uint),
                ("copy", ctypes.c_void_p), ("dispose", ctypes.c_void_p),
                ("free", ctypes.c_void_p), ("priv_uint", ctypes.c_uint),
                ("priv_pointer", ctypes.c_void_p)]


class _Buffer(ctypes.Structure):  # public, ABI-stable struct GstBuffer
    _fields_ = [("mini_object", _MiniObject), ("pool", ctypes.c_void_p),
                ("pts", ctypes.c_uint64), ("dts", ctypes.c_uint64),
                ("duration", ctypes.c_uint64), ("offset", ctypes.c_uint64),
                ("offset_end", ctypes.c_uint64)]


_NOTIFY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_MEMORY_READONLY = 2  # GST_MEMORY_FLAG_READONLY: nobody downstream writes into the array
_FLOW_OK = 0
# token → (the array, the owning publisher's held dict); the destroy notify drops both
_held: dict[int, tuple[np.ndarray, dict[int, np.ndarray]]] = {}
_tokens = itertools.count(1)


@_NOTIFY
def _release(token: int | None) -> None:
    # called (with the GIL taken by ctypes) by whichever GStreamer thread frees the buffer
    entry = _held.pop(token or 0, None)
    if entry is not None:
        entry[1].pop(token or 0, None)


class _GstC:
    def __init__(self) -> None:
        def lib(name: str) -> ctypes.CDLL:  # CDLL: every call releases the GIL
            return ctypes.CDLL(ctypes.util.find_library(name) or f"lib{name}.so.0")

        gst, app, video = lib("gstreamer-1.0"), lib("gstapp-1.0"), lib("gstvideo-1.0")
        vp, sz = ctypes.c_void_p, ctypes.c_size_t
        self.wrapped = gst.gst_buffer_new_wrapped_full
        self.wrapped.restype = vp
        self.wrapped.argtypes = [ctypes.c_int, vp, sz, sz, sz, vp, _NOTIFY]
        self.memdup = gst.gst_buffer_new_memdup
        self.memdup.restype = vp
        self.memdup.argtypes = [vp, sz]
        self.allocate = gst.gst_buffer_new_allocate
        self.allocate.restype = vp
        self.allocate.argtypes = [vp, sz, vp]
        self.fill = gst.gst_buffer_fill
        self.fill.restype = sz
        self.fill.argtypes = [vp, sz, vp, sz]
        self.unref = gst.gst_mini_object_unref
        self.unref.argtypes = [vp]
        self.push = app.gst_app_src_push_buffer  # takes the buffer (transfer full)
        self.push.restype = ctypes.c_int
        self.push.argtypes = [vp, vp]
        self.add_video_meta = video.gst_buffer_add_video_meta_full
        self.add_video_meta.restype = vp
        self.add_video_meta.argtypes = [vp, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
                                        ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(sz),
                                        ctypes.POINTER(ctypes.c_int)]


_gstc: _GstC | None = None


def _c() -> _GstC:
    global _gstc
    if _gstc is None:
        _gstc = _GstC()
    return _gstc


def _gobject_ptr(obj: Any) -> int:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return get(obj.__gpointer__, None)


def _owns_memory(a: np.ndarray) -> bool:
    """True if the memory is numpy's own (or immutable bytes): holding a reference keeps
    it valid and nobody else recycles it."""
    while True:
        base = a.base
        if base is None:
            return bool(a.flags.owndata)
        if isinstance(base, np.ndarray):
            a = base
            continue
        return isinstance(base, bytes)


@dataclass(eq=False)
class _Output:
    """One built media of the mount (RTSP's shared one, the WebRTC producer's)."""

    appsrc: Any
    injector: Any
    ptr: int  # the appsrc's C pointer
    played: bool = False  # has taken a frame: a stopped media can then be told apart
    asrc: Any = None  # audio=...: the audio appsrc
    audio_next: int = -1  # running time where the next audio chunk starts (-1: none yet)


class Publisher:
    """An application video source at ``mount`` (numpy frames in, H.264/H.265 out)."""

    def __init__(self, mount: str, width: int, height: int, fps: int = 30, server: Any = None,
                 codec: str = "h264", bitrate_kbps: int = 2048, stamps: bool = True,
                 fmt: str = "msgpack", gop: int | None = None,
                 pixel_format: str = "RGB", http: bool = True,
                 http_port: int | None = None, settings: Any = None,
                 audio: str | None = None, audio_rate: int = 48000,
                 audio_channels: int = 2) -> None:
        """``server``: join a running :class:`framecast.server.Server` (the mount appears on
        its outputs at once and leaves them on :meth:`close`); without one, a server of its own
        with ``settings`` (default ``Settings()``), HTTP on ``http_port`` unless ``http=False``.
        ``audio``: "aac" or "opus" to take :meth:`push_audio` PCM at ``audio_rate`` Hz,
        ``audio_channels`` channels (None: video only).
        """
        from framecast.gst.runtime import init_gst

        if codec not in ("h264", "h265"):
            raise ValueError(f"codec must be h264 or h265, not {codec!r}")
        if width <= 0 or height <= 0 or fps <= 0:
            raise ValueError("width, height and fps must be positive")
        if pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"pixel_format must be one of {', '.join(PIXEL_FORMATS)}, "
                             f"not {pixel_format!r}")
        if audio is not None and audio not in AUDIO_CODECS:
            raise ValueError(f"audio must be None, aac or opus, not {audio!r}")
        if audio_rate <= 0 or not 1 <= audio_channels <= 8:
            raise ValueError("audio_rate must be positive and audio_channels 1..8")
        self.audio, self.audio_rate, self.audio_channels = audio, audio_rate, audio_channels
        self.audio_pushed = 0  # samples (per channel) sent
        self.shape, offsets, strides = frame_layout(pixel_format, width, height)
        init_gst()
        self.mount, self.width, self.height, self.fps = mount, width, height, fps
        self.pixel_format = pixel_format
        self.nbytes = int(np.prod(self.shape))
        self._meta = self._video_meta(offsets, strides)
        self._held: dict[int, np.ndarray] = {}  # zero-copy frames GStreamer still reads
        self.codec, self.bitrate, self.stamps, self.fmt = codec, bitrate_kbps, stamps, fmt
        self.gop = gop or fps  # a keyframe every second: clients joining start fast
        self._lock = threading.Lock()
        self._live: list[_Output] = []  # one per media built (RTSP, WebRTC)
        self._ready = threading.Event()
        self.pushed = 0
        self.dropped = 0
        self._own_server = server is None
        if server is None:
            from dataclasses import replace

            from framecast.config import Settings
            from framecast.server import Server

            s = settings or Settings()
            s = replace(s, http=s.http and http,
                        http_port=s.http_port if http_port is None else http_port)
            server = Server(s).start()
        self.server = server
        server.add_mount(mount, self._make_bin, True, self.stream_info())

    @property
    def url(self) -> str:
        return self.server.rtsp_url(self.mount)

    @property
    def http_url(self) -> str | None:
        """The viewer's URL for this mount (None if its server has no HTTP side)."""
        base = getattr(self.server, "http_url", None)
        return f"{base}/?stream={self.mount}" if base else None

    def stream_info(self) -> Any:
        """What the mount's ``pay0`` carries (how WebRTC decides on passthrough)."""
        from framecast.streaminfo import StreamInfo

        profile = H264_PROFILE if self.codec == "h264" else None
        return StreamInfo(self.codec, profile, self.width, self.height, float(self.fps),
                          audio=self.audio)

    @property
    def in_flight(self) -> int:
        """Zero-copy frames (``copy=False``) GStreamer has not released yet."""
        return len(self._held)

    def _video_meta(self, offsets: list[int], strides: list[int]) -> Any:
        """ctypes arguments for a GstVideoMeta if numpy's packed layout is not GStreamer's
        default for these caps (rows not a multiple of 4 bytes), else None."""
        from gi.repository import GstVideo  # version pinned by framecast.gst (init_gst ran)

        fmt = GstVideo.VideoFormat.from_string(self.pixel_format)
        info = GstVideo.VideoInfo.new()
        info.set_format(fmt, self.width, self.height)
        n = len(strides)
        if (list(info.offset[:n]) == offsets and list(info.stride[:n]) == strides
                and info.size == self.nbytes):
            return None
        c_off = (ctypes.c_size_t * 4)(*offsets)
        c_str = (ctypes.c_int * 4)(*strides)
        return (0, int(fmt), self.width, self.height, n, c_off, c_str)

    # -- the media bin (GLib thread, once per shared media) -------------------------------
    def _make_bin(self) -> Any:
        from framecast.gst.inject import make_injector
        from framecast.gst.runtime import Gst

        b = Gst.Bin.new(f"publisher-{self.mount}")
        src = Gst.ElementFactory.make("appsrc", "src")
        src.set_property("caps", Gst.Caps.from_string(
            f"video/x-raw,format={self.pixel_format},width={self.width},height={self.height},"
            f"framerate={self.fps}/1"))
        src.set_property("format", Gst.Format.TIME)
        src.set_property("is-live", True)
        src.set_property("max-bytes", self.nbytes * 4)  # ~4 frames queued
        src.set_property("leaky-type", 2)  # downstream: a stalled encoder drops old frames
        from framecast.codecs import encoder_recipe

        enc = encoder_recipe(self.codec, gop=self.gop, bitrate_kbps=self.bitrate,
                             profile=H264_PROFILE if self.codec == "h264" else None)
        # 4:2:0 for the encoder (else x264 may pick 4:4:4, which browsers cannot play);
        # I420/NV12 input passes videoconvert untouched
        yuv = "NV12" if self.pixel_format == "NV12" else "I420"
        tail = Gst.parse_bin_from_description(
            f"videoconvert ! video/x-raw,format={yuv} ! {enc}", True)
        # seq counts frames as pushed: no B-frames (zerolatency), so arrival = presentation
        inj = make_injector(f"inject-{self.mount}", counter=True, stamps=self.stamps,
                            fmt=self.fmt)
        pay = Gst.ElementFactory.make(f"rtp{self.codec}pay", "pay0")
        # 0: the parser already puts SPS/PPS before every IDR; the payloader would put them
        # before every IDR *slice*, and zerolatency frames have several: receivers then split
        # the keyframe in two access units
        pay.set_property("config-interval", 0)
        pay.set_property("pt", 96)
        # the frame's SEI shares a STAP-A/AP with what precedes its first slice (as file
        # mounts do): stamps cost no packet of their own
        Gst.util_set_object_arg(pay, "aggregate-mode", "zero-latency")
        for el in (src, tail, inj, pay):
            b.add(el)
        src.link(tail)
        tail.link(inj)
        inj.link(pay)
        asrc = self._audio_branch(b, self.audio) if self.audio else None
        with self._lock:
            self._live.append(_Output(src, inj, _gobject_ptr(src), asrc=asrc))
        src.connect("need-data", lambda *_: self._ready.set())
        return b

    def _audio_branch(self, b: Any, codec: str) -> Any:
        """appsrc ! convert ! encode ! pay1 in ``b``; returns the appsrc."""
        from framecast.codecs import AUDIO_PT
        from framecast.gst.runtime import Gst

        encoder, payloader = AUDIO_CODECS[codec]
        asrc = Gst.ElementFactory.make("appsrc", "asrc")
        asrc.set_property("caps", Gst.Caps.from_string(
            f"audio/x-raw,format=F32LE,layout=interleaved,rate={self.audio_rate},"
            f"channels={self.audio_channels}"))
        asrc.set_property("format", Gst.Format.TIME)
        asrc.set_property("is-live", True)
        asrc.set_property("max-bytes", self.audio_rate * self.audio_channels * 4)  # ~1 s
        asrc.set_property("leaky-type", 2)
        enc = Gst.parse_bin_from_description(f"audioconvert ! audioresample ! {encoder}", True)
        pay = Gst.ElementFactory.make(payloader, "pay1")
        pay.set_property("pt", AUDIO_PT)
        for el in (asrc, enc, pay):
            b.add(el)
        asrc.link(enc)
        enc.link(pay)
        return asrc

    # -- the application side -------------------------------------------------------------
    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until a client made the media run (frames pushed before that are dropped)."""
        return self._ready.wait(timeout)

    def push(self, frame: np.ndarray, metadata: Mapping[str, Any] | None = None,
             copy: bool = True) -> bool:
        """Send one frame (uint8, shaped as ``pixel_format`` says: H×W×3 for RGB) with its
        metadata; False if nobody is watching. ``copy=False``: zero-copy, see the module
        docstring — do not write to ``frame`` while GStreamer still holds it."""
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise ValueError(f"{self.pixel_format} frame must be "
                             f"{'x'.join(map(str, self.shape))} uint8, "
                             f"got {frame.shape} {frame.dtype}")
        with self._lock:
            outputs = list(self._live)
        if not outputs:
            self.dropped += 1
            return False
        c = _c()
        if not frame.flags.c_contiguous:
            frame = np.ascontiguousarray(frame)  # the one copy; now ours alone to wrap
            copy = False
        elif not copy and not _owns_memory(frame):
            copy = True
        sent = False
        for live in outputs:
            sent = self._push_to(live, frame, metadata, copy, c) or sent
        if not sent:
            self.dropped += 1
            return False
        self.pushed += 1
        return True

    def _push_to(self, live: _Output, frame: np.ndarray,
                 metadata: Mapping[str, Any] | None, copy: bool, c: _GstC) -> bool:
        """One frame into one running media (its own PTS: that media's running time)."""
        from framecast.gst.runtime import Gst

        src, inj, src_ptr = live.appsrc, live.injector, live.ptr
        pts = src.get_current_running_time()
        if pts == Gst.CLOCK_TIME_NONE:  # media not playing: not yet, or no more
            if live.played:  # stopped (e.g. a WebRTC producer's idle stop): forget it
                self._forget(live)
            return False
        if copy:  # one copy, in C with the GIL released
            ptr = c.memdup(frame.ctypes.data, self.nbytes)
        else:
            token = next(_tokens)
            _held[token] = (frame, self._held)
            self._held[token] = frame
            ptr = c.wrapped(_MEMORY_READONLY, frame.ctypes.data, self.nbytes, 0, self.nbytes,
                            token, _release)
        b = _Buffer.from_address(ptr)
        b.pts = pts
        b.duration = Gst.SECOND // self.fps
        if self._meta is not None:
            c.add_video_meta(ptr, *self._meta)
        if metadata:
            inj.put(pts, metadata)
        if c.push(src_ptr, ptr) != _FLOW_OK:
            self._forget(live)  # that media ended; a new client makes a new one
            return False
        live.played = True
        return True

    def push_audio(self, samples: np.ndarray) -> bool:
        """Send PCM: shape (n, audio_channels) (or (n,) for mono), float32 in -1..1 or int16;
        always copied. Stamped on the video's clock (see the module docstring); False if
        nobody is watching."""
        if self.audio is None:
            raise ValueError("this Publisher has no audio: create it with audio='aac' or 'opus'")
        if samples.ndim == 1 and self.audio_channels == 1:
            samples = samples[:, None]
        if samples.ndim != 2 or samples.shape[1] != self.audio_channels:
            raise ValueError(f"audio must be (n, {self.audio_channels}) samples, "
                             f"got {samples.shape}")
        if samples.dtype == np.int16:
            pcm = samples.astype(np.float32) / 32768.0
        elif samples.dtype == np.float32:
            pcm = np.ascontiguousarray(samples)
        else:
            raise ValueError(f"audio must be float32 or int16, not {samples.dtype}")
        if not len(pcm):
            return True
        with self._lock:
            outputs = list(self._live)
        sent = False
        for live in outputs:
            sent = self._push_audio_to(live, pcm) or sent
        if sent:
            self.audio_pushed += len(pcm)
        return sent

    def _push_audio_to(self, live: _Output, pcm: np.ndarray) -> bool:
        from framecast.gst.runtime import Gst

        now = live.appsrc.get_current_running_time()  # the video's clock
        if now == Gst.CLOCK_TIME_NONE or live.asrc is None:
            return False
        pts, discont = live.audio_next, False  # contiguous: what an encoder wants
        if live.audio_next < 0 or now - live.audio_next > AUDIO_BEHIND_NS:
            pts, discont = now, True  # the start, or fell behind: a gap
        elif live.audio_next - now > AUDIO_AHEAD_NS:  # ran ahead: drop what is too early
            skip = Gst.util_uint64_scale(live.audio_next - now, self.audio_rate, Gst.SECOND)
            pcm = pcm[skip:]
            if not len(pcm):
                return True
        buf = Gst.Buffer.new_wrapped(pcm.tobytes())
        buf.pts = pts
        if discont:
            buf.set_flags(Gst.BufferFlags.DISCONT)
        buf.duration = Gst.util_uint64_scale(len(pcm), Gst.SECOND, self.audio_rate)
        live.audio_next = buf.pts + buf.duration
        return bool(live.asrc.emit("push-buffer", buf) == Gst.FlowReturn.OK)

    def _forget(self, live: _Output) -> None:
        with self._lock:
            if live in self._live:
                self._live.remove(live)
            if not self._live:
                self._ready.clear()

    def run_at_fps(self, frames: Any) -> None:
        """Push ``(frame, metadata)`` pairs at the configured rate (a simple pacing helper)."""
        period = 1.0 / self.fps
        next_t = time.monotonic()
        for frame, md in frames:
            self.push(frame, md)
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))

    def close(self) -> None:
        with self._lock:
            live, self._live = self._live, []
        for out in live:
            out.appsrc.emit("end-of-stream")
            if out.asrc is not None:
                out.asrc.emit("end-of-stream")
        try:
            self.server.remove_mount(self.mount)
        except Exception as exc:  # closing must not raise over a server already gone
            log.debug("remove mount %s: %s", self.mount, exc)
        if self._own_server:
            self.server.stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
