"""``framecast.Publisher``: push numpy frames with a metadata dict each; served at a mount.

    appsrc ! videoconvert ! I420 ! x264enc (zerolatency, constrained-baseline) ! h264parse
           ! framecastinject ! rtph264pay name=pay0            (x265enc/h265parse for codec="h265")

Each frame's PTS is the media pipeline's running time when it is pushed; the dict is handed
to the injector under that PTS, so it lands on exactly that frame (stamps added beside it).

    with framecast.Publisher("cam", 640, 480, 30) as pub:     # own server on :8554
        pub.push(frame, {"boxes": [[10, 20, 50, 60]]})          # frame: H×W×3 uint8 RGB
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

log = logging.getLogger("framecast.publisher")


class Publisher:
    """An application video source at ``mount`` (RGB numpy frames in, H.264/H.265 out)."""

    def __init__(self, mount: str, width: int, height: int, fps: int = 30, server: Any = None,
                 codec: str = "h264", bitrate_kbps: int = 2048, stamps: bool = True,
                 fmt: str = "msgpack", gop: int | None = None) -> None:
        from framecast.gst.runtime import init_gst

        if codec not in ("h264", "h265"):
            raise ValueError(f"codec must be h264 or h265, not {codec!r}")
        if width <= 0 or height <= 0 or fps <= 0:
            raise ValueError("width, height and fps must be positive")
        init_gst()
        self.mount, self.width, self.height, self.fps = mount, width, height, fps
        self.codec, self.bitrate, self.stamps, self.fmt = codec, bitrate_kbps, stamps, fmt
        self.gop = gop or fps  # a keyframe every second: clients joining start fast
        self._lock = threading.Lock()
        self._live: tuple[Any, Any] | None = None  # (appsrc, injector) of the running media
        self._ready = threading.Event()
        self.pushed = 0
        self.dropped = 0
        self._own_server = server is None
        if server is None:
            from framecast.server import Server

            server = Server().start()
        self.server = server
        server.add_mount(mount, self._make_bin, True)

    @property
    def url(self) -> str:
        return self.server.rtsp_url(self.mount)

    # -- the media bin (GLib thread, once per shared media) -------------------------------
    def _make_bin(self) -> Any:
        from framecast.gst.inject import make_injector
        from framecast.gst.runtime import Gst

        b = Gst.Bin.new(f"publisher-{self.mount}")
        src = Gst.ElementFactory.make("appsrc", "src")
        src.set_property("caps", Gst.Caps.from_string(
            f"video/x-raw,format=RGB,width={self.width},height={self.height},"
            f"framerate={self.fps}/1"))
        src.set_property("format", Gst.Format.TIME)
        src.set_property("is-live", True)
        src.set_property("max-bytes", self.width * self.height * 3 * 4)  # ~4 frames queued
        src.set_property("leaky-type", 2)  # downstream: a stalled encoder drops old frames
        if self.codec == "h264":
            enc = (f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={self.gop} "
                   f"bitrate={self.bitrate} ! video/x-h264,profile=constrained-baseline "
                   "! h264parse config-interval=-1")
        else:
            enc = (f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={self.gop} "
                   f"bitrate={self.bitrate} ! h265parse config-interval=-1")
        tail = Gst.parse_bin_from_description(
            f"videoconvert ! video/x-raw,format=I420 ! {enc}", True)
        # seq counts frames as pushed: no B-frames (zerolatency), so arrival = presentation
        inj = make_injector(f"inject-{self.mount}", counter=True, stamps=self.stamps,
                            fmt=self.fmt)
        pay = Gst.ElementFactory.make(f"rtp{self.codec}pay", "pay0")
        # 0: the parser already puts SPS/PPS before every IDR; the payloader would put them
        # before every IDR *slice*, and zerolatency frames have several: receivers then split
        # the keyframe in two access units
        pay.set_property("config-interval", 0)
        pay.set_property("pt", 96)
        for el in (src, tail, inj, pay):
            b.add(el)
        src.link(tail)
        tail.link(inj)
        inj.link(pay)
        with self._lock:
            self._live = (src, inj)
        src.connect("need-data", lambda *_: self._ready.set())
        return b

    # -- the application side -------------------------------------------------------------
    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until a client made the media run (frames pushed before that are dropped)."""
        return self._ready.wait(timeout)

    def push(self, frame: np.ndarray, metadata: Mapping[str, Any] | None = None) -> bool:
        """Send one RGB frame (H×W×3 uint8) with its metadata; False if nobody is watching."""
        from framecast.gst.runtime import Gst

        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be {self.height}x{self.width}x3 uint8, "
                             f"got {frame.shape} {frame.dtype}")
        with self._lock:
            live = self._live
        if live is None:
            self.dropped += 1
            return False
        src, inj = live
        pts = src.get_current_running_time()
        if pts == Gst.CLOCK_TIME_NONE:  # media not playing (yet / any more)
            self.dropped += 1
            return False
        # one copy, numpy → GstMemory (new_wrapped(tobytes()) would copy twice)
        buf = Gst.Buffer.new_allocate(None, frame.nbytes, None)
        with buf.map(Gst.MapFlags.WRITE) as info:
            np.copyto(np.frombuffer(info.data, dtype=np.uint8).reshape(frame.shape), frame)
        buf.pts = pts
        buf.duration = Gst.SECOND // self.fps
        if metadata:
            inj.put(pts, metadata)
        if src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
            with self._lock:
                if self._live is live:
                    self._live = None  # that media ended; the next client makes a new one
            self._ready.clear()
            self.dropped += 1
            return False
        self.pushed += 1
        return True

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
            live, self._live = self._live, None
        if live is not None:
            live[0].emit("end-of-stream")
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
