"""The once-per-mount transcode to constrained-baseline, carrying our SEI across the decoder."""

from __future__ import annotations

import collections
import threading

from gi.repository import Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.codecs import Codec
from framecast.gst.aufilter import AUFilter
from framecast.gst.chain import caps
from framecast.gst.element import make_element
from framecast.metadata import Format
from framecast.streaminfo import StreamInfo


class SEICarrier:
    """Carries our SEI across decode → encode.

    Before the decoder the messages are remembered by PTS (decode order); on the decoder's
    output (presentation order, same PTS) they are queued; the encoder (zerolatency: one
    output per input, in order, no reordering) takes them from the queue. Matching by order
    after the decoder, not by PTS, because x264enc shifts output PTS (min-pts, 1000 h) by an
    amount that depends on the first frame and on loops.
    """

    def __init__(self, in_codec: Codec, keep: int = 600) -> None:
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

    def flushed(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        """A flush (a seek: the Looper's first, a file replaced) empties the decoder and the
        encoder: what was remembered for their frames would go to the wrong ones after it."""
        event = info.get_event()
        if event is not None and event.type == Gst.EventType.FLUSH_STOP:
            with self.lock:
                self.by_pts.clear()
                self.queue.clear()
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
    fmt: Format = "json" if payload[:1] == b"{" else "msgpack"
    return metadata.encode_metadata(d, fmt, limit=None)


def transcoder(info: StreamInfo, carrier: SEICarrier) -> list[Gst.Element]:
    fps = int(round(info.fps or 30))
    decoder = make_element("avdec_h264" if info.codec == "h264" else "avdec_h265")
    decoder.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, carrier.decoded)
    decoder.get_static_pad("sink").add_probe(Gst.PadProbeType.EVENT_FLUSH, carrier.flushed)
    return [
        AUFilter(carrier.remember),
        decoder,
        make_element("videoconvert"),
        # without format=I420 x264enc may pick High 4:4:4 (GSTREAMER-NOTES)
        caps("video/x-raw,format=I420"),
        make_element("x264enc", tune="zerolatency", speed_preset="ultrafast", key_int_max=fps,
              bitrate=2000, sliced_threads=False),
        caps("video/x-h264,profile=constrained-baseline"),
        make_element("h264parse", config_interval=-1),
        caps("video/x-h264,stream-format=byte-stream,alignment=au"),
    ]
