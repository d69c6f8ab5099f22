"""The GStreamer side of :class:`framecast.reader.Reader`: one pipeline per reader.

One pipeline per reader, no GLib main loop (the caller's thread pulls from an appsink and
polls the bus, so nothing can hang past ``timeout``)::

    file:    filesrc ! parsebin ─┐
    rtsp:    rtspsrc ! depay  ───┼─ h26xparse ! byte-stream,au ! appsink         (decode=False)
    webrtc:  WHEP source bin  ───┘                     └─ avdec ! RGB ! appsink  (decode=True)

The SEI is read from the encoded access unit. Without decoding, access units arrive in decode
order and are put back in presentation order (by DTS when the stream has it, else a small
reorder window). With ``decode=True`` the decoder yields presentation order and each picture
is paired with the SEI of the encoded access unit with the same PTS — never by arrival order.

``audio=True`` adds a second appsink (framecast.gst.audioread) pulled by the same thread; its
chunks are handed out interleaved with the frames by pts (see :meth:`ReadPipeline.__next__`).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from gi.repository import GObject, Gst, GstApp, GstVideo  # noqa: F401 - GstApp: appsink

from framecast import sei
from framecast.codecs import CODECS, codec_of_caps
from framecast.errors import InputError, MediaNotFound, MediaUnreadable, ReaderError, ReaderTimeout
from framecast.gst.element import AccessUnitElement, make_element
from framecast.gst.inject import add_sei_meta, sei_metas, user_data_tolerant
from framecast.gst.plumbing import LinkError, add_chain, drain, error_text, link_pad
from framecast.gst.runtime import init_gst
from framecast.metadata import (
    framecast_messages,
    split_messages,
)
from framecast.reader import AudioChunk, Frame, SourceKind
from framecast.reorder import Reorder
from framecast.sei import Codec

init_gst()  # the marker element's pad templates need it

log = logging.getLogger("framecast.reader")
_STEP_NS = Gst.SECOND // 20  # how often the puller looks at the bus
_MAX_PENDING_SEI = 512
# rtspsrc 1.22 over TCP sometimes never outputs anything when it joins a shared, playing
# media: gst-rtsp-server adds the TCP transport before it answers PLAY, so interleaved RTP
# arrives while rtspsrc is still changing state; rtpjitterbuffer then holds every packet
# (measured: ~1 in 20 starts with 4 clients joining at once). A reconnect fixes it.
_START_STALL_S = 3.0
# audio=True: how long a frame waits for the audio up to its pts (RTP audio and video come
# through separate jitterbuffers); past it the frame goes out and audio stops being waited
# for until it flows again, so a stream whose audio died still plays its video
_AUDIO_WAIT_S = 0.5
_AUDIO_FIRST_WAIT_S = 2.0  # before the first chunk: the audio decoder is still being set up
# RTP timestamps smoothed by the jitterbuffer: a chunk may start ~1 ms before the previous
# one's computed end; a frame within this of the audio's end waits for the next chunk
_AUDIO_SLACK_NS = 5 * Gst.MSECOND


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
        self.on_au: Callable[[Gst.Buffer], int] | None = None  # -> the AU's serial number
        self.init_pads()

    def chain(self, _pad: Gst.Pad, _parent: Gst.Object, buf: Gst.Buffer) -> Gst.FlowReturn:
        try:
            assert self.on_au is not None
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


def _codec_of(caps: Gst.Caps) -> Codec | None:
    s = caps.get_structure(0)
    name = s.get_name()
    if name == "application/x-rtp" and s.get_string("media") != "video":
        return None
    return codec_of_caps(name, s.get_string("encoding-name"))


class ReadPipeline:
    """Iterator of :class:`Frame` in presentation order (behind :class:`Reader`); with
    ``audio=True``, of frames and :class:`AudioChunk` objects ordered by pts."""

    def __init__(self, url: str, kind: SourceKind, decode: bool = False, timeout: float = 10.0,
                 transport: str = "tcp", codec: Codec = "h264", latency_ms: int = 200,
                 audio: bool = False) -> None:
        init_gst()
        self.url = url
        self.audio = audio
        self.asink: Gst.Element | None = None
        self._chunks: deque[AudioChunk] = deque()  # decoded, not handed out yet
        self._audio_linked = False
        self._audio_expected = False  # RTSP: the SDP announced audio (select-stream)
        self._audio_end = -1  # end (ns, stream time) of the newest chunk pulled
        self._audio_stalled = False  # a frame waited _AUDIO_WAIT_S for audio in vain
        self._held: Frame | None = None  # the next frame, waiting for audio before it
        self._held_since = 0.0
        self._video_done = False
        self.decode = decode
        self.timeout = float(timeout)
        self._kind = kind
        self._codec: Codec | None = codec if self._kind == "webrtc" else None
        self._lock = threading.Lock()
        # encoded AU serial number -> (keyframe, ours, third-party), until its picture is out
        self._sei: dict[int, tuple[bool, list[dict[str, Any]], list[tuple[bytes, bytes]]]] = {}
        self._serial = itertools.count()
        self._reorder: Reorder[Frame] = Reorder()  # encoded frames: presentation order out
        self._ready = self._reorder.ready
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
        self._audio_linked = False
        if self.audio:
            from framecast.gst.audioread import make_audio_sink

            self.asink = make_audio_sink()
            self.pipeline.add(self.asink)
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
        self._audio_end = -1  # the new connection's audio starts afresh, on its own timeline:
        self._chunks.clear()  # audio of the stalled one (its video never came) is dropped
        self.restarts += 1
        self._started_at = time.monotonic()
        log.info("%s: no RTP out of rtspsrc %.1f s after connecting, reconnecting", self.url,
                 _START_STALL_S)
        self._start()

    def _build_source(self, transport: str, latency_ms: int) -> None:
        if self._kind == "file":
            path = self.url[len("file://"):] if self.url.startswith("file://") else self.url
            if not os.path.exists(path):
                raise MediaNotFound(f"{path}: no such file")
            if os.path.isdir(path):
                raise MediaUnreadable(f"{path}: is a directory, not a file")
            src = Gst.ElementFactory.make("filesrc")
            src.set_property("location", path)
            parsebin = Gst.ElementFactory.make("parsebin")
            self.pipeline.add(src)
            self.pipeline.add(parsebin)
            src.link(parsebin)
            parsebin.connect("pad-added", self._on_pad)
        elif self._kind == "rtsp":
            if transport not in ("tcp", "udp"):
                raise InputError(f"transport must be tcp or udp, not {transport!r}")
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
            if self.audio:
                src.connect("select-stream", self._on_select_stream)
        elif self.url.startswith("janus://"):  # through a Janus edge (framecast.edge)
            from framecast.gst.janus_client import make_janus_source

            src = make_janus_source(self.url, timeout=self.timeout, codec=self._codec or "h264")
            self.pipeline.add(src)
            # Janus offers the mountpoint's audio whatever we want: its ``audio`` pad is read
            # (audio=True) or drained (an unlinked pad would stop the stream)
            src.connect("pad-added", self._on_pad)
            self._link_video(src.get_static_pad("src"), self._codec or "h264", rtp=False)
        else:
            from framecast.gst.whep_client import make_webrtc_source

            src = make_webrtc_source(self.url, timeout=self.timeout, codec=self._codec or "h264",
                                     audio=self.audio)
            self.pipeline.add(src)
            if self.audio:
                src.connect("pad-added", self._on_pad)  # its ``audio`` pad, if the server sends
            self._link_video(src.get_static_pad("src"), self._codec or "h264", rtp=False)

    def _on_pad(self, _el: Gst.Element, pad: Gst.Pad) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        if self.asink is not None and self._take_audio(pad, caps):
            return
        codec = _codec_of(caps)
        with self._lock:
            take = codec is not None and not self._linked
            if take:
                self._linked = True
        if not take or codec is None:
            drain(self.pipeline, pad)  # audio, other streams, a second video
            return
        self._link_video(pad, codec, rtp=caps.get_structure(0).get_name() == "application/x-rtp")

    def _on_select_stream(self, _src: Gst.Element, _num: int, caps: Gst.Caps) -> bool:
        # the SDP has audio: frames wait for it from the start (its pad comes after video's)
        if caps.get_structure(0).get_string("media") == "audio":
            self._audio_expected = True
        return True

    def _take_audio(self, pad: Gst.Pad, caps: Gst.Caps) -> bool:
        """audio=True: link the first audio pad to the audio branch (True if taken)."""
        from framecast.gst.audioread import is_audio, link_audio

        with self._lock:
            take = is_audio(caps) and not self._audio_linked
            if take:
                self._audio_linked = True
        if not take:
            return False
        try:
            assert self.asink is not None
            link_audio(self.pipeline, pad, caps, self.asink)
        except RuntimeError as exc:  # no decoder for it: say so, keep the video
            log.warning("%s: audio not read: %s", self.url, exc)
            self._audio_linked = False
            drain(self.pipeline, pad)
        return True

    def _link_video(self, pad: Gst.Pad, codec: Codec, rtp: bool) -> None:
        self._codec = codec
        vc = CODECS[codec]
        try:
            chain: list[Gst.Element] = [make_element(vc.depayloader)] if rtp else []
            au = Gst.Caps.from_string(f"{vc.caps},stream-format=byte-stream,alignment=au")
            chain += [make_element(vc.parser), make_element("capsfilter", caps=au)]
            if self.decode:
                # SEI is read from the encoded AU (keyed by PTS) before the decoder sees it
                mark = _PtsMark()
                mark.on_au = self._on_encoded
                # one thread: frame threading loses track of frames when a client joins
                # mid-stream with B-frames ("Couldn't get codec frame") and can stall
                chain += [mark, make_element(vc.decoder, max_threads=1),
                          make_element("videoconvert"), make_element(
                              "capsfilter", caps=Gst.Caps.from_string("video/x-raw,format=RGB"))]
            add_chain(self.pipeline, chain)
            if not chain[-1].link(self.sink):
                raise LinkError(f"cannot link the {codec} chain to the appsink")
            for el in reversed(chain):
                el.sync_state_with_parent()
            if rtp:
                chain[0].get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER,
                                                          self._on_flowing)
            link_pad(pad, chain[0])
        except RuntimeError as exc:  # an element not installed, a link refused
            raise ReaderError(f"{self.url}: {exc}") from None

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
        """Decode order in, presentation order out (encoded frames only; raw buffer times)."""
        none = Gst.CLOCK_TIME_NONE
        self._reorder.push(frame, None if pts == none else pts, None if dts == none else dts,
                           frame.keyframe, step)

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
        return f"{self.url}: {error_text(msg)}"

    def _pull_audio(self, wait_ns: int = 0) -> bool:
        """Move decoded audio from its appsink to ``_chunks``; True if any came."""
        from framecast.gst.audioread import chunk_from

        got = False
        while self.asink is not None:
            sample = self.asink.emit("try-pull-sample", 0 if got else wait_ns)
            if sample is None:
                return got
            buf = sample.get_buffer()
            if buf.pts == Gst.CLOCK_TIME_NONE:
                continue
            chunk = chunk_from(sample, self._timeline(sample, buf.pts))
            self._chunks.append(chunk)
            self._audio_end = chunk.pts_ns + int(chunk.duration * 1e9)
            self._audio_stalled = False
            got = True
        return got

    def _next_sample(self) -> Gst.Sample | None:
        """The next sample, None at end of stream; raises on error or timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            if self.asink is not None:  # never let a full audio appsink block the demuxer
                self._pull_audio()
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

    def __iter__(self) -> Iterator[Frame | AudioChunk]:
        return self

    def __next__(self) -> Frame | AudioChunk:
        if self._closed:
            raise StopIteration
        if self.asink is None:
            return self._next_frame()
        return self._next_item()

    def _next_item(self) -> Frame | AudioChunk:
        """audio=True: the frame or chunk with the smaller pts. A frame waits (at most
        _AUDIO_WAIT_S) until audio has come up to its pts, so audio before it goes first."""
        while True:
            if self._held is None and not self._video_done:
                try:
                    self._held = self._next_frame()
                    self._held_since = time.monotonic()
                except StopIteration:
                    self._video_done = True
            self._pull_audio()
            frame = self._held
            if self._chunks and (frame is None or self._chunks[0].pts_ns <= frame.pts_ns):
                return self._chunks.popleft()
            if frame is not None:
                waiting = ((self._audio_linked or self._audio_expected)
                           and not self._audio_stalled
                           and self._audio_end <= frame.pts_ns + _AUDIO_SLACK_NS
                           and not self.asink.get_property("eos"))  # type: ignore[union-attr]
                wait_s = _AUDIO_WAIT_S if self._audio_end >= 0 else _AUDIO_FIRST_WAIT_S
                if waiting and time.monotonic() - self._held_since < wait_s:
                    self._pull_audio(_STEP_NS // 5)
                    continue
                if waiting:
                    self._audio_stalled = True
                self._held = None
                return frame
            # video ended: the audio left, until its own end
            if not self._audio_linked or self.asink.get_property("eos"):  # type: ignore[union-attr]
                self._pull_audio()
                if self._chunks:
                    continue
                raise StopIteration
            if not self._pull_audio(_STEP_NS):
                if time.monotonic() - self._held_since > self.timeout:
                    raise StopIteration

    def _next_frame(self) -> Frame:
        while not self._ready:
            if self._eos:
                if self._reorder.flush_one():
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
        return self._ready.popleft()

    def read(self) -> Frame | AudioChunk | None:
        """The next frame (or audio chunk), or None at the end of the stream."""
        return next(self, None)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.pipeline.set_state(Gst.State.NULL)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


