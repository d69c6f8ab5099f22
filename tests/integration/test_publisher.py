"""framecast.Publisher end to end: numpy frames + dicts in, read back over RTSP by PTS."""

from __future__ import annotations

import threading
from typing import Any

import av
import pytest
from sei_helpers import sei_of

import framecast
from framecast.config import Settings
from framecast.pixelindex import read_index, render_frame
from framecast.server import Server

W, H, FPS, N = 320, 240, 30, 60


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

        def read() -> None:
            try:
                with framecast.open(pub.url, decode=True, timeout=10) as reader:
                    for frame in reader:
                        got.append(frame)
                        if frame.metadata and frame.metadata[0].get("i") == N - 1:
                            return
            except BaseException as exc:
                errors.append(exc)

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
        pub.run_at_fps((render_frame(i, W, H), {"i": i}) for i in range(40))
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
