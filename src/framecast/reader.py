"""Read frames and their metadata back: ``framecast.open(url)`` and ``framecast watch``.

One pipeline per reader, no GLib main loop (the caller's thread pulls from an appsink and
polls the bus, so nothing can hang past ``timeout``)::

    file:    filesrc ! parsebin ─┐
    rtsp:    rtspsrc ! depay  ───┼─ h26xparse ! byte-stream,au ! appsink         (decode=False)
    webrtc:  WHEP source bin  ───┘                     └─ avdec ! RGB ! appsink  (decode=True)

The SEI is read from the encoded access unit. Without decoding, access units arrive in decode
order and are put back in presentation order (by DTS when the stream has it, else a small
reorder window). With ``decode=True`` the decoder yields presentation order and each picture
is paired with the SEI of the encoded access unit with the same PTS — never by arrival order.
"""

from __future__ import annotations

import argparse
import errno
import heapq
import itertools
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import gi
import numpy as np

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GObject, Gst, GstApp, GstVideo  # noqa: F401 - GstApp: appsink

from framecast import sei
from framecast.gst.element import AccessUnitElement
from framecast.gst.inject import add_sei_meta, sei_metas, user_data_tolerant
from framecast.gst.runtime import init_gst
from framecast.metadata import (
    framecast_messages,
    split_messages,
)

init_gst()  # the marker element's pad templates need it

log = logging.getLogger("framecast.reader")
REORDER_WINDOW = 4  # frames held back when the stream has no DTS (covers up to 3 B-frames)
_STEP_NS = Gst.SECOND // 20  # how often the puller looks at the bus
_MAX_PENDING_SEI = 512
# rtspsrc 1.22 over TCP sometimes never outputs anything when it joins a shared, playing
# media: gst-rtsp-server adds the TCP transport before it answers PLAY, so interleaved RTP
# arrives while rtspsrc is still changing state; rtpjitterbuffer then holds every packet
# (measured: ~1 in 20 starts with 4 clients joining at once). A reconnect fixes it.
_START_STALL_S = 3.0


# Pairs decoded pictures with their encoded AU. Decoders may re-stamp PTS (GstVideoDecoder
# hands out the smallest pending PTS when input has no DTS, as over RTP), but they carry
# video-tagged metas from input to output: our marker meta holds the encoded AU's serial
# number and PTS. Not the PTS alone: rtpjitterbuffer clamps a timestamp that would go
# backwards to the previous one, so after a burst two AUs can share a PTS.
_MARK_UUID = b"framecast-pts\x00\x00\x00"


class _PtsMark(AccessUnitElement, Gst.Element):
    """Reads each encoded AU (callback) and tags it with its PTS for after the decoder."""

    __gstmetadata__ = ("framecast PTS marker", "Filter", "Tags AUs with their PTS", "framecast")
    __gsttemplates__ = (
        Gst.PadTemplate.new("sink", Gst.PadDirection.SINK, Gst.PadPresence.ALWAYS,
                            Gst.Caps.new_any()),
        Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS,
                            Gst.Caps.new_any()),
    )

    def __init__(self) -> None:
        super().__init__()
        self.on_au: Any = None  # (buf) -> the AU's serial number
        self.init_pads()

    def chain(self, _pad: Gst.Pad, _parent: Gst.Object, buf: Gst.Buffer) -> Gst.FlowReturn:
        try:
            serial = self.on_au(buf)
            out = Gst.Buffer.new()  # a writable buffer sharing buf's memory (no byte copy)
            out.copy_into(buf, Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.TIMESTAMPS
                          | Gst.BufferCopyFlags.META | Gst.BufferCopyFlags.MEMORY,
                          0, buf.get_size())
            # an AU may have no PTS (tsdemux drops a repeated one): it still gets its SEI
            add_sei_meta(out, _MARK_UUID, serial.to_bytes(8, "big") + buf.pts.to_bytes(8, "big"))
        except Exception as exc:  # never break the stream over one AU
            log.warning("%s", exc)
            return self.srcpad.push(buf)
        return self.srcpad.push(out)


GObject.type_register(_PtsMark)


class ReaderError(RuntimeError):
    """The stream cannot be read (connection refused, not a video, decoder error …)."""


class ReaderTimeout(ReaderError, TimeoutError):
    """No frame arrived within the timeout."""


@dataclass
class Frame:
    """One presented frame: timing, framecast metadata, other SEI, and (decode=True) pixels."""

    pts: float  # seconds on the stream's timeline
    pts_ns: int
    keyframe: bool
    metadata: list[dict[str, Any]] = field(default_factory=list)
    raw_sei: list[tuple[bytes, bytes]] = field(default_factory=list)  # third-party (uuid, data)
    image: np.ndarray | None = None  # H×W×3 RGB, only with decode=True

    def to_json(self) -> dict[str, Any]:
        return {"pts": round(self.pts, 6), "keyframe": self.keyframe, "metadata": self.metadata}


def _codec_of(caps: Gst.Caps) -> str | None:
    s = caps.get_structure(0)
    name = s.get_name()
    if name == "video/x-h264":
        return "h264"
    if name == "video/x-h265":
        return "h265"
    if name == "application/x-rtp" and s.get_string("media") == "video":
        enc = (s.get_string("encoding-name") or "").upper()
        return {"H264": "h264", "H265": "h265"}.get(enc)
    return None


def _kind(url: str) -> str:
    if url.startswith(("rtsp://", "rtsps://", "rtspt://")):
        return "rtsp"
    if url.startswith(("webrtc://", "whep://", "janus://")) or "/whep/" in url:
        return "webrtc"
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"{url}: unsupported URL (rtsp://, webrtc://, janus:// or a file path)")
    return "file"


class Reader:
    """Iterator of :class:`Frame` in presentation order; use as a context manager."""

    def __init__(self, url: str, decode: bool = False, timeout: float = 10.0,
                 transport: str = "tcp", codec: str = "h264", latency_ms: int = 200) -> None:
        init_gst()
        self.url = url
        self.decode = decode
        self.timeout = float(timeout)
        self._kind = _kind(url)
        self._codec: str | None = codec if self._kind == "webrtc" else None
        self._lock = threading.Lock()
        # encoded AU serial number -> (keyframe, ours, third-party), until its picture is out
        self._sei: dict[int, tuple[bool, list[dict[str, Any]], list[tuple[bytes, bytes]]]] = {}
        self._serial = itertools.count()
        self._heap: list[tuple[int, int, Frame]] = []
        self._last_out: int | None = None  # PTS of the last frame handed out (decode=False)
        self._recent: list[int] = []  # recent PTS, to learn the frame step
        self._order = itertools.count()
        self._ready: list[Frame] = []
        self._linked = False
        self._closed = False
        self._eos = False
        self._length_size: int | None = None
        self._transport, self._latency_ms = transport, latency_ms
        self.restarts = 0  # RTSP reconnections after a stalled start (see _next_sample)
        self._keyed = False  # decode=True: a keyframe's picture came out (none before it)
        self.skipped = 0  # decode=True: pictures before the first keyframe, not handed out
        self._started_at = time.monotonic()
        self._flowing = False  # RTP came out of rtspsrc (its jitterbuffer) into our chain
        self._start()

    # -- pipeline ---------------------------------------------------------------------------
    def _start(self) -> None:
        self._linked = False
        self.pipeline = Gst.Pipeline.new("framecast-reader")
        self.sink = Gst.ElementFactory.make("appsink", "sink")
        self.sink.set_property("sync", False)
        self.sink.set_property("max-buffers", 200)
        self.sink.set_property("enable-last-sample", False)
        self.sink.set_property("async", False)  # a live pipeline: never wait for preroll
        self.pipeline.add(self.sink)
        self._build_source(self._transport, self._latency_ms)
        self.bus = self.pipeline.get_bus()
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            err = self._bus_error()
            self.close()
            raise ReaderError(err or f"{self.url}: cannot start reading")

    def _on_flowing(self, _pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        self._flowing = True
        return Gst.PadProbeReturn.REMOVE

    def _restart(self) -> None:
        """Reconnect: a new pipeline (SEI pairing state of the old one is dropped)."""
        self.pipeline.set_state(Gst.State.NULL)
        with self._lock:
            self._sei.clear()
        self._keyed = False
        self.restarts += 1
        self._started_at = time.monotonic()
        log.info("%s: no RTP out of rtspsrc %.1f s after connecting, reconnecting", self.url,
                 _START_STALL_S)
        self._start()

    def _build_source(self, transport: str, latency_ms: int) -> None:
        if self._kind == "file":
            path = self.url[len("file://"):] if self.url.startswith("file://") else self.url
            if not os.path.exists(path):
                raise FileNotFoundError(errno.ENOENT, "no such file", path)
            if os.path.isdir(path):
                raise IsADirectoryError(errno.EISDIR, "is a directory", path)
            src = Gst.ElementFactory.make("filesrc")
            src.set_property("location", path)
            parsebin = Gst.ElementFactory.make("parsebin")
            self.pipeline.add(src)
            self.pipeline.add(parsebin)
            src.link(parsebin)
            parsebin.connect("pad-added", self._on_pad)
        elif self._kind == "rtsp":
            if transport not in ("tcp", "udp"):
                raise ValueError(f"transport must be tcp or udp, not {transport!r}")
            src = Gst.ElementFactory.make("rtspsrc")
            src.set_property("location", self.url)
            src.set_property("protocols", "tcp" if transport == "tcp" else "udp")
            src.set_property("latency", latency_ms)
            # Not buffer-mode=none (PTS straight from the RTP timestamps): joining a shared
            # mount, 1 start in 3 then delivered nothing within 15 s (tests/integration/
            # test_metadata_sync.py, 4 readers at once); the default's smoothed PTS are put
            # back in presentation order by _push_ordered
            src.set_property("tcp-timeout", int((self.timeout + 10) * 1e6))  # ours fires first
            self.pipeline.add(src)
            src.connect("pad-added", self._on_pad)
        elif self.url.startswith("janus://"):  # through a Janus edge (framecast.edge)
            from framecast.gst.janus_client import make_janus_source

            src = make_janus_source(self.url, timeout=self.timeout, codec=self._codec or "h264")
            self.pipeline.add(src)
            self._link_video(src.get_static_pad("src"), self._codec or "h264", rtp=False)
        else:
            from framecast.gst.whep_client import make_webrtc_source

            src = make_webrtc_source(self.url, timeout=self.timeout, codec=self._codec or "h264")
            self.pipeline.add(src)
            self._link_video(src.get_static_pad("src"), self._codec or "h264", rtp=False)

    def _drain(self, pad: Gst.Pad) -> None:
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("async", False)
        self.pipeline.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def _on_pad(self, _el: Gst.Element, pad: Gst.Pad) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        codec = _codec_of(caps)
        with self._lock:
            take = codec is not None and not self._linked
            if take:
                self._linked = True
        if not take:
            self._drain(pad)  # audio, other streams, a second video
            return
        self._link_video(pad, codec, rtp=caps.get_structure(0).get_name() == "application/x-rtp")

    def _link_video(self, pad: Gst.Pad, codec: str, rtp: bool) -> None:
        self._codec = codec
        chain: list[Gst.Element] = []
        if rtp:
            chain.append(Gst.ElementFactory.make(f"rtp{codec}depay"))
        chain.append(Gst.ElementFactory.make(f"{codec}parse"))
        caps = Gst.ElementFactory.make("capsfilter")
        caps.set_property("caps", Gst.Caps.from_string(
            f"video/x-{codec},stream-format=byte-stream,alignment=au"))
        chain.append(caps)
        if self.decode:
            # SEI is read from the encoded AU (keyed by PTS) before the decoder sees it
            mark = _PtsMark()
            mark.on_au = self._on_encoded
            chain.append(mark)
            dec = Gst.ElementFactory.make(f"avdec_{codec}")
            # one thread: frame threading loses track of frames when a client joins
            # mid-stream with B-frames ("Couldn't get codec frame") and can stall
            dec.set_property("max-threads", 1)
            chain.append(dec)
            chain.append(Gst.ElementFactory.make("videoconvert"))
            rgb = Gst.ElementFactory.make("capsfilter")
            rgb.set_property("caps", Gst.Caps.from_string("video/x-raw,format=RGB"))
            chain.append(rgb)
        for el in chain:
            if el is None:
                raise ReaderError(f"{self.url}: a GStreamer element for {codec} is missing")
            self.pipeline.add(el)
        for a, b in zip(chain, chain[1:], strict=False):
            a.link(b)
        chain[-1].link(self.sink)
        for el in reversed(chain):
            el.sync_state_with_parent()
        if rtp:
            chain[0].get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self._on_flowing)
        res = pad.link(chain[0].get_static_pad("sink"))
        if res != Gst.PadLinkReturn.OK:
            raise ReaderError(f"{self.url}: cannot link the video stream ({res.value_nick})")

    # -- SEI --------------------------------------------------------------------------------
    def _parse_au(self, buf: Gst.Buffer) -> tuple[list[dict[str, Any]],
                                                   list[tuple[bytes, bytes]]]:
        with buf.map(Gst.MapFlags.READ) as info:
            au = bytes(info.data)
        codec = self._codec or "h264"
        try:
            return framecast_messages(au, codec, None)
        except sei.SEIError:  # a broken SEI NAL (e.g. a relayed camera's): read the others
            return split_messages(user_data_tolerant(au, codec))

    def _on_encoded(self, buf: Gst.Buffer) -> int:
        ours, raw = self._parse_au(buf)
        key = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        serial = next(self._serial)
        with self._lock:
            self._sei[serial] = (key, ours, raw)
            if len(self._sei) > _MAX_PENDING_SEI:  # frames the decoder dropped (oldest first)
                for k in list(itertools.islice(self._sei, len(self._sei) - _MAX_PENDING_SEI)):
                    del self._sei[k]
        return serial

    # -- frames -----------------------------------------------------------------------------
    @staticmethod
    def _timeline(sample: Gst.Sample, pts: int) -> int:
        seg = sample.get_segment()
        if seg is not None and seg.format == Gst.Format.TIME:
            st = seg.to_stream_time(Gst.Format.TIME, pts)
            if st != Gst.CLOCK_TIME_NONE:
                return st
        return pts

    def _frame_from(self, sample: Gst.Sample) -> Frame | None:
        buf = sample.get_buffer()
        pts = buf.pts
        t = self._timeline(sample, pts) if pts != Gst.CLOCK_TIME_NONE else 0
        if not self.decode:
            ours, raw = self._parse_au(buf)
            key = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
            return Frame(t / 1e9, t, key, ours, raw)
        serial = None
        for uid, data in sei_metas(buf):
            if uid == _MARK_UUID and len(data) == 16:
                serial = int.from_bytes(data[:8], "big")
                own = int.from_bytes(data[8:], "big")  # the encoded AU's own PTS
                if own != Gst.CLOCK_TIME_NONE:  # else the decoder's interpolated PTS
                    pts = own
                    t = self._timeline(sample, pts)
                break
        with self._lock:
            entry = self._sei.pop(serial, None) if serial is not None else None
        key, ours, raw = entry if entry is not None else (False, [], [])
        return Frame(t / 1e9, t, key, ours, raw, self._image(sample))

    @staticmethod
    def _image(sample: Gst.Sample) -> np.ndarray:
        vinfo = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
        w, h, stride = vinfo.width, vinfo.height, vinfo.stride[0]
        buf = sample.get_buffer()
        with buf.map(Gst.MapFlags.READ) as info:
            rows = np.frombuffer(info.data, dtype=np.uint8, count=stride * h).reshape(h, stride)
            return rows[:, : w * 3].reshape(h, w, 3).copy()

    def _push_ordered(self, frame: Frame, pts: int, dts: int, step: int = 0) -> None:
        """Decode order in, presentation order out (encoded frames only; raw buffer times).

        A frame leaves as soon as it is known to be next: its PTS is one frame step after the
        last one out (no B-frame can still come before it), or the first keyframe (nothing
        decoded later is shown before an IDR), or DTS says so. Only a gap waits for the
        reorder window: holding every frame for the window cost ~130 ms (4 frames at 30 fps)
        on streams that have no B-frames at all."""
        p = pts if pts != Gst.CLOCK_TIME_NONE else -1
        if p >= 0:
            self._recent.append(p)
            del self._recent[:-2 * REORDER_WINDOW]
        heapq.heappush(self._heap, (p, next(self._order), frame))
        if dts != Gst.CLOCK_TIME_NONE:
            # every later AU has PTS >= its DTS >= this DTS: all PTS up to it are final
            while self._heap and self._heap[0][0] <= dts:
                self._release()
        step = step or self._learned_step()
        while self._heap:
            top, _, top_frame = self._heap[0]
            last = self._last_out
            if len(self._heap) > REORDER_WINDOW or top < 0 or (
                    last is None and top_frame.keyframe) or (
                    last is not None and (top <= last or (step and top - last <= step * 3 // 2))):
                self._release()
            else:
                break

    def _release(self) -> None:
        p, _, frame = heapq.heappop(self._heap)
        if p >= 0:
            self._last_out = p
        self._ready.append(frame)

    def _learned_step(self) -> int:
        """One frame's duration from the PTS seen (0 until enough arrived to trust it: the
        first steps of a B-frame GOP span several frames)."""
        if len(self._recent) <= REORDER_WINDOW:
            return 0
        vals = sorted(set(self._recent))
        steps = [b - a for a, b in zip(vals, vals[1:], strict=False)]
        return min(steps) if steps else 0

    @staticmethod
    def _caps_step(sample: Gst.Sample) -> int:
        caps = sample.get_caps()
        if caps is None or caps.get_size() == 0:
            return 0
        ok, num, den = caps.get_structure(0).get_fraction("framerate")
        return Gst.util_uint64_scale_int(Gst.SECOND, den, num) if ok and num > 0 else 0

    def _bus_error(self) -> str | None:
        msg = self.bus.pop_filtered(Gst.MessageType.ERROR)
        if msg is None:
            return None
        err, dbg = msg.parse_error()
        return f"{self.url}: {err.message}"

    def _next_sample(self) -> Gst.Sample | None:
        """The next sample, None at end of stream; raises on error or timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            sample = self.sink.emit("try-pull-sample", _STEP_NS)  # works without GstApp typelib
            if sample is not None:
                return sample
            err = self._bus_error()
            if err:
                raise ReaderError(err)
            if self.sink.get_property("eos"):
                return None
            if (self._kind == "rtsp" and not self._flowing and not self._closed
                    and time.monotonic() - self._started_at > _START_STALL_S
                    and time.monotonic() + _START_STALL_S < deadline):
                self._restart()
                continue
            if time.monotonic() > deadline:
                raise ReaderTimeout(f"{self.url}: no frame within {self.timeout:g} s")

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        if self._closed:
            raise StopIteration
        while not self._ready:
            if self._eos:
                if self._heap:
                    self._ready.append(heapq.heappop(self._heap)[2])
                    break
                raise StopIteration
            sample = self._next_sample()
            if sample is None:
                self._eos = True
                continue
            frame = self._frame_from(sample)
            if frame is None:
                continue
            if self.decode:
                # joined mid-GOP: the decoder hands out grey guesses until the first keyframe
                self._keyed = self._keyed or frame.keyframe
                if not self._keyed:
                    self.skipped += 1
                    continue
                return frame
            buf = sample.get_buffer()
            self._push_ordered(frame, buf.pts, buf.dts, self._caps_step(sample))
        return self._ready.pop(0)

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the stream."""
        return next(self, None)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.pipeline.set_state(Gst.State.NULL)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def open_reader(url: str, decode: bool = False, timeout: float = 10.0,
                transport: str = "tcp", **kw: Any) -> Reader:
    """Open ``url`` (``rtsp://``, ``webrtc://``, ``janus://`` or a file); see :class:`Reader`."""
    return Reader(url, decode=decode, timeout=timeout, transport=transport, **kw)


def _json_default(o: Any) -> Any:
    if isinstance(o, bytes | bytearray | memoryview):
        return bytes(o).hex()
    return repr(o)


def watch_main(args: argparse.Namespace) -> int:
    """``framecast watch URL [--count N]``: one JSON object per frame on stdout."""
    from framecast.cli import CliError

    count = int(getattr(args, "count", 0) or 0)
    try:
        with open_reader(args.url, timeout=getattr(args, "timeout", 10.0),
                         transport=getattr(args, "transport", "tcp")) as reader:
            for n, frame in enumerate(reader, start=1):
                sys.stdout.write(json.dumps(frame.to_json(), default=_json_default) + "\n")
                sys.stdout.flush()
                if count and n >= count:
                    break
    except BrokenPipeError:
        return 0
    except OSError as exc:
        if exc.filename and exc.strerror:
            raise CliError(f"{exc.filename}: {exc.strerror}") from None
        raise CliError(str(exc) or type(exc).__name__) from None
    except (ReaderError, ValueError) as exc:
        raise CliError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    return 0
