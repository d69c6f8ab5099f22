"""framecast.Publisher end to end: numpy frames + dicts in, read back over RTSP by PTS."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import av
import numpy as np
import pytest
from sei_helpers import sei_of

import framecast
from framecast.config import Settings
from framecast.gst.runtime import Gst
from framecast.pixelindex import read_index, render_frame
from framecast.server import Server

W, H, FPS, N = 320, 240, 30, 60


def reader_until(url: str, last: int, got: list[Any],
                 errors: list[BaseException]) -> Callable[[], None]:
    """A thread body: framecast.open(url, decode=True) into ``got`` until metadata i == last."""
    def read() -> None:
        try:
            with framecast.open(url, decode=True, timeout=10) as reader:
                for frame in reader:
                    got.append(frame)
                    if frame.metadata and frame.metadata[0].get("i") == last:
                        return
        except BaseException as exc:
            errors.append(exc)
    return read


@pytest.fixture
def server() -> Any:
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http=False)).start()
    yield srv
    srv.stop()


def test_push_60_frames_read_back_with_framecast_open(server: Server) -> None:
    frames = [render_frame(i, W, H) for i in range(N)]
    with framecast.Publisher("app", W, H, FPS, server=server, gop=10) as pub:
        got: list[Any] = []
        errors: list[BaseException] = []
        read = reader_until(pub.url, N - 1, got, errors)

        t = threading.Thread(target=read)
        t.start()
        assert pub.wait_ready(10), "no client made the media run"
        pub.run_at_fps((frames[i], {"i": i, "boxes": [[i, 0, 10, 10]]}) for i in range(N))
        t.join(20)
        assert not errors, errors
        assert not t.is_alive()
    # the client plays from the first complete keyframe (earlier frames went out before it
    # was playing, or reference a keyframe it never got)
    start = next(i for i, f in enumerate(got) if f.keyframe and f.metadata)
    with_md = got[start:]
    assert len(with_md) >= N - 20
    for f in with_md:
        (md,) = f.metadata
        assert read_index(f.image) == md["i"], md
        assert md["boxes"] == [[md["i"], 0, 10, 10]]
        assert {"seq", "loop", "pts_ns", "wallclock_ns"} <= set(md)
    indices = [f.metadata[0]["i"] for f in with_md]
    assert indices == sorted(indices) and indices[-1] == N - 1
    seqs = [f.metadata[0]["seq"] for f in with_md]
    assert seqs == sorted(seqs)


def test_constrained_baseline_and_pyav(server: Server) -> None:
    """Browsers need constrained baseline; PyAV reads the pushed dicts independently."""
    with framecast.Publisher("app2", W, H, FPS, server=server, gop=10) as pub:
        got: list[tuple[int, dict[str, Any], str]] = []

        def read() -> None:
            with av.open(pub.url, options={"rtsp_transport": "tcp"}, timeout=10) as c:
                profile = c.streams.video[0].codec_context.profile
                started = False
                for frame in c.decode(video=0):
                    ours, _ = sei_of(frame)
                    started = started or (frame.key_frame and len(ours) == 1)
                    if started:
                        got.append((read_index(frame.to_ndarray(format="rgb24")), ours[-1],
                                    profile))
                    if ours and ours[-1].get("i") == 40 - 1:
                        return

        t = threading.Thread(target=read)
        t.start()
        assert pub.wait_ready(10)
        # 10 frames past the last one read: FFmpeg's frame threads hold the newest few
        # pictures back until more data comes (else the reader waits for the RTSP timeout)
        pub.run_at_fps((render_frame(i, W, H), {"i": i}) for i in range(50))
        t.join(20)
        assert not t.is_alive()
    assert len(got) >= 25
    assert all(pixel == md["i"] for pixel, md, _ in got)
    assert "Baseline" in got[0][2]


def test_bad_frame_shape_is_rejected(server: Server) -> None:
    with framecast.Publisher("app3", W, H, FPS, server=server) as pub, \
            pytest.raises(ValueError, match="must be 240x320x3 uint8"):
        pub.push(render_frame(0, 160, 120), {})
    assert pub.push.__doc__


# -- pixel formats and the copy contract ------------------------------------------------------

def to_yuv420(rgb: np.ndarray, layout: str) -> np.ndarray:
    """BT.601 I420 or NV12 laid out as OpenCV's cvtColor gives them: (H*3/2) x W."""
    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    h, w = y.shape

    def sub(p: np.ndarray) -> np.ndarray:
        return p.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    u = sub(128 - 0.148 * r - 0.291 * g + 0.439 * b)
    v = sub(128 + 0.439 * r - 0.368 * g - 0.071 * b)
    chroma = [u.ravel(), v.ravel()] if layout == "I420" else [np.stack([u, v], -1).ravel()]
    out = np.concatenate([y.ravel(), *chroma])
    return np.clip(out, 0, 255).round().astype(np.uint8).reshape(h * 3 // 2, w)


CONVERT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "RGB": lambda rgb: rgb,
    "BGR": lambda rgb: np.ascontiguousarray(rgb[..., ::-1]),
    "I420": lambda rgb: to_yuv420(rgb, "I420"),
    "NV12": lambda rgb: to_yuv420(rgb, "NV12"),
}


@pytest.mark.parametrize(("pixel_format", "width", "copy"), [
    ("RGB", 330, False),  # 990-byte rows: GStreamer's default stride is 992 → a GstVideoMeta
    ("I420", 330, True),  # Y stride 330, default 332
    ("NV12", 320, False),
    ("BGR", 320, True),
])
def test_pixel_formats_and_zero_copy_read_back(server: Server, pixel_format: str, width: int,
                                               copy: bool) -> None:
    n = 40
    with framecast.Publisher(f"fmt{pixel_format}", width, H, FPS, server=server, gop=10,
                             pixel_format=pixel_format) as pub:
        got: list[Any] = []
        errors: list[BaseException] = []
        read = reader_until(pub.url, n - 1, got, errors)

        def frames() -> Iterator[tuple[np.ndarray, dict[str, int]]]:
            # made per frame and not kept here: with copy=False only the publisher's
            # reference keeps each array (and its pixels) alive until GStreamer is done
            for i in range(n):
                yield CONVERT[pixel_format](render_frame(i, width, H)), {"i": i}

        t = threading.Thread(target=read)
        t.start()
        assert pub.wait_ready(10), "no client made the media run"
        period, next_t = 1 / FPS, time.monotonic()
        for frame, md in frames():
            pub.push(frame, md, copy=copy)
            del frame
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))
        t.join(20)
        assert not errors, errors
        assert not t.is_alive()
        deadline = time.monotonic() + 5
        while pub.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pub.in_flight == 0, "GStreamer never released zero-copy frames"
    start = next(i for i, f in enumerate(got) if f.keyframe and f.metadata)
    with_md = got[start:]
    assert len(with_md) >= n - 20
    assert all(f.image.shape == (H, width, 3) for f in with_md)
    assert [read_index(f.image) for f in with_md] == [f.metadata[0]["i"] for f in with_md]
    assert with_md[-1].metadata[0]["i"] == n - 1


class _Mounts:
    """Keeps the bin factory a Server would be given: the media pipeline is built by hand."""

    factory: Any = None

    def add_mount(self, name: str, factory: Any, shared: bool = True, stream: Any = None) -> None:
        self.factory = factory

    def remove_mount(self, name: str) -> None:
        pass

    def rtsp_url(self, mount: str) -> str:
        return f"rtsp://unused/{mount}"


class _HeldAtSource:
    """Publisher media in a real pipeline whose appsrc output is held in a pad probe until
    the test says go: what GStreamer reads from a pushed frame can be compared with it."""

    def __init__(self) -> None:
        self.mounts = _Mounts()
        self.pub = framecast.Publisher("held", W, H, FPS, server=self.mounts)
        self.pipeline = Gst.Pipeline.new("held")
        b = self.mounts.factory()
        self.pipeline.add(b)
        b.add_pad(Gst.GhostPad.new("src", b.get_by_name("pay0").get_static_pad("src")))
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("async", False)  # live source: nothing to preroll
        self.pipeline.add(sink)
        b.link(sink)
        self.arrived, self.go, self.read = (threading.Event() for _ in range(3))
        self.seen: list[np.ndarray] = []
        self.times: list[tuple[int, int, int]] = []  # (pts, dts, duration) of each buffer
        b.get_by_name("src").get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER,
                                                            self._probe)
        self.pipeline.set_state(Gst.State.PLAYING)
        assert self.pipeline.get_state(10 * Gst.SECOND)[0] in (
            Gst.StateChangeReturn.SUCCESS, Gst.StateChangeReturn.NO_PREROLL)

    def _probe(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        self.times.append((buf.pts, buf.dts, buf.duration))
        self.arrived.set()
        self.go.wait(10)
        self.go.clear()
        with buf.map(Gst.MapFlags.READ) as m:
            self.seen.append(np.frombuffer(m.data, dtype=np.uint8).reshape(H, W, 3).copy())
        self.read.set()
        return Gst.PadProbeReturn.OK

    def push_held(self, frame: np.ndarray, copy: bool) -> None:
        """Push; return while GStreamer holds the buffer, before anything has read it."""
        self.arrived.clear()
        self.read.clear()
        assert self.pub.push(frame, {"i": 1}, copy=copy)
        assert self.arrived.wait(10)

    def release(self) -> np.ndarray:
        self.go.set()
        assert self.read.wait(10)
        return self.seen[-1]

    def wait_released(self) -> None:
        deadline = time.monotonic() + 5
        while self.pub.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.pub.in_flight == 0

    def close(self) -> None:
        self.go.set()
        self.pipeline.set_state(Gst.State.NULL)
        self.pub.close()


@pytest.fixture
def held() -> Iterator[_HeldAtSource]:
    h = _HeldAtSource()
    yield h
    h.close()


def test_copy_contract_default_copy_and_zero_copy(held: _HeldAtSource) -> None:
    picture = render_frame(7, W, H)
    # default: copied before push() returns, so the caller may overwrite its array at once
    frame = picture.copy()
    held.push_held(frame, copy=True)
    frame[:] = 0
    assert held.pub.in_flight == 0
    assert np.array_equal(held.release(), picture)
    # timestamps written through ctypes land in GstBuffer's fields
    pts, dts, duration = held.times[-1]
    assert pts != Gst.CLOCK_TIME_NONE and dts == Gst.CLOCK_TIME_NONE
    assert duration == Gst.SECOND // FPS

    # copy=False: GStreamer reads the array itself, so a write before the release shows
    # (the documented "do not write until released")
    frame = picture.copy()
    held.push_held(frame, copy=False)
    assert held.pub.in_flight == 1
    frame[:] = 0
    assert not held.release().any()
    held.wait_released()


def test_zero_copy_array_lives_until_gstreamer_releases_it(held: _HeldAtSource) -> None:
    frame = render_frame(9, W, H)
    ref = weakref.ref(frame)
    held.push_held(frame, copy=False)
    del frame
    gc.collect()
    assert ref() is not None, "array freed while GStreamer still holds its memory"
    assert read_index(held.release()) == 9
    held.wait_released()
    gc.collect()
    assert ref() is None, "array kept after GStreamer released it"


def test_zero_copy_falls_back_to_a_copy_when_unsafe(held: _HeldAtSource) -> None:
    picture = render_frame(3, W, H)
    # memory numpy does not own (a bytearray standing in for a recycled camera buffer)
    raw = bytearray(picture.tobytes())
    foreign = np.frombuffer(raw, dtype=np.uint8).reshape(H, W, 3)
    held.push_held(foreign, copy=False)
    assert held.pub.in_flight == 0
    raw[:] = bytes(len(raw))
    assert np.array_equal(held.release(), picture)
    # not C-contiguous: copied into a packed array (the one copy), which is then held
    mirrored = np.ascontiguousarray(picture[:, ::-1])
    held.push_held(mirrored[:, ::-1], copy=False)
    assert np.array_equal(held.release(), picture)
    held.wait_released()


def test_pixel_format_errors(server: Server) -> None:
    with pytest.raises(ValueError, match="pixel_format must be one of"):
        framecast.Publisher("bad", W, H, FPS, server=server, pixel_format="YUY2")
    with pytest.raises(ValueError, match="I420 needs an even width and height"):
        framecast.Publisher("bad", 321, H, FPS, server=server, pixel_format="I420")
    with framecast.Publisher("i420", W, H, FPS, server=server, pixel_format="I420") as pub, \
            pytest.raises(ValueError, match="I420 frame must be 360x320 uint8"):
        pub.push(render_frame(0, W, H), {})
