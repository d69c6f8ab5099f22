"""Proof that metadata stays with its frame: over RTSP (TCP and UDP), 3 loops, with and
without B-frames, H.264 and H.265, read by framecast.open(decode=True) AND by PyAV.

Every frame of the clip shows its index in pixels; the sidecar's line i is {"index": i}. Each
decoded frame's pixel index must equal its metadata index, and seq = loop × n + index — for
every frame, not most.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import av
import pytest
from sei_helpers import sei_of, write_index_sidecar

import framecast
from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.pixelindex import read_index
from framecast.server import Server

N = 20  # frames per loop (2/3 s at 30 fps): 3 loops in 2 s of real time
LOOPS = 3
GOP = 10
# A client joining a shared mount mid-stream starts at the first *complete* keyframe: the
# AU it joined in the middle of lacks the packets (SEI included) sent before it was playing.


def read_framecast(url: str, transport: str, count: int) -> list[tuple[int, dict[str, Any]]]:
    out = []
    with framecast.open(url, decode=True, transport=transport, timeout=15) as reader:
        started, skipped = False, 0
        for frame in reader:
            started = started or (frame.keyframe and bool(frame.metadata))
            if not started:
                skipped += 1
                assert skipped <= 2 * GOP, "no complete keyframe"
                continue
            assert frame.image is not None
            assert len(frame.metadata) == 1, frame.metadata
            out.append((read_index(frame.image), frame.metadata[0]))
            if len(out) >= count:
                break
    return out


def read_pyav(url: str, transport: str, count: int) -> list[tuple[int, dict[str, Any]]]:
    out = []
    with av.open(url, options={"rtsp_transport": transport}, timeout=15) as container:
        started, skipped = False, 0
        for frame in container.decode(video=0):
            ours, _others = sei_of(frame)
            # FFmpeg hangs the SEI of AUs it could not decode (before the first keyframe of
            # a joining client) on the next picture: start at a keyframe with just its own
            started = started or (frame.key_frame and len(ours) == 1)
            if not started:
                skipped += 1
                assert skipped <= 2 * GOP, "no complete keyframe"
                continue
            assert len(ours) == 1, ours
            out.append((read_index(frame.to_ndarray(format="rgb24")), ours[0]))
            if len(out) >= count:
                break
    return out


def check(frames: list[tuple[int, dict[str, Any]]], lossless: bool) -> None:
    assert len(frames) >= LOOPS * N
    for pixel, md in frames:
        assert md["index"] == pixel, f"pixel {pixel} carries {md}"
        assert md["seq"] == md["loop"] * N + pixel, md
    seqs = [md["seq"] for _, md in frames]
    assert seqs == sorted(seqs)
    loops = {md["loop"] for _, md in frames}
    assert len(loops) >= LOOPS - 1 and max(loops) - min(loops) >= LOOPS - 1 - (not lossless)
    if lossless:  # TCP: every presented frame, in order, across the loop seams
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


@pytest.fixture(scope="module", params=[("h264", 0), ("h264", 2), ("h265", 0), ("h265", 2)],
                ids=["h264", "h264-bframes", "h265", "h265-bframes"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    codec, bframes = request.param
    base = tmp_path_factory.mktemp(f"sync-{codec}-{bframes}")
    clip = make_clip(base / "clip.mp4", codec=codec, frames=N, bframes=bframes, gop=GOP)
    side = base / "clip.jsonl"
    write_index_sidecar(side, N)
    mount = Mount(name="clip", file=str(clip), sidecar=str(side))
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http=False), (mount,)).start()
    try:
        yield srv, srv.rtsp_url("clip")
    finally:
        srv.stop()


def test_framecast_open_and_pyav_over_tcp_and_udp(server: tuple[Server, str]) -> None:
    """Four clients at once on one shared mount: framecast.open and PyAV, TCP and UDP."""
    _srv, url = server
    count = LOOPS * N + N // 2
    results: dict[str, Any] = {}

    def run(name: str, fn: Any, transport: str) -> None:
        try:
            results[name] = fn(url, transport, count)
        except BaseException as exc:  # reported below with the client's name
            results[name] = exc

    threads = [threading.Thread(target=run, args=(f"{fn.__name__}-{t}", fn, t))
               for fn in (read_framecast, read_pyav) for t in ("tcp", "udp")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4, f"clients still running: {sorted(results)}"
    for name, frames in sorted(results.items()):
        if isinstance(frames, BaseException):
            raise AssertionError(f"{name}: {frames!r}") from frames
        check(frames, lossless=name.endswith("tcp"))
