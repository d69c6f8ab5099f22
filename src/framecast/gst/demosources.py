"""Live demo/test sources for WebRTC mounts: a test pattern and frames showing their index."""

from __future__ import annotations

from gi.repository import Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.codecs import Codec
from framecast.gst.aufilter import AUFilter
from framecast.gst.chain import bin_of, caps
from framecast.gst.element import make_element
from framecast.gst.webrtcsource import SourceFactory
from framecast.streaminfo import StreamInfo


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
            caps(f"video/x-raw,format=I420,width={width},height={height},framerate={fps}/1"),
            enc,
            caps("video/x-h264,profile=constrained-baseline"),
            make_element("h264parse", config_interval=-1),
            caps("video/x-h264,stream-format=byte-stream,alignment=au"),
        ]
        if stamp:
            els.append(AUFilter(Stamper("h264").stamp))
        return bin_of(els)

    return build, StreamInfo("h264", "constrained-baseline", width, height, fps)


class Stamper:
    """Adds framecast stamps (seq, loop, pts_ns, wallclock_ns) as SEI to each AU.

    With ``frame_ns`` the seq is the presented index taken from the PTS (right with B-frames;
    x264enc shifts PTS by 1000 h, so it counts from the first AU's PTS, which in a closed-GOP
    stream is the lowest); without it, AUs are counted in arrival order.
    """

    def __init__(self, codec: Codec, frame_ns: int | None = None) -> None:
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
        els = [src, make_element("videoconvert"), caps("video/x-raw,format=I420"), enc,
               caps(f"video/x-h264,profile={profile}"),
               make_element("h264parse", config_interval=-1),
               caps("video/x-h264,stream-format=byte-stream,alignment=au"),
               AUFilter(Stamper("h264", frame_ns).stamp)]
        return bin_of(els)

    return build, StreamInfo("h264", profile, width, height, fps)

