"""framecast.open over RTSP: without decoding as early as with it, presentation order with
B-frames, and a decoding reader that joins mid-GOP starts at a keyframe.

Before the fix: decode=False held every AU for a 4-frame reorder window (p50 167 ms vs 35 ms
from the SEI wallclock on a file without B-frames); rtspsrc's arrival-smoothed PTS put
B-frame streams out of order; decode=True handed out grey pictures before the first keyframe.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator

import pytest
from sei_helpers import write_index_sidecar

import framecast
from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.pixelindex import read_index
from framecast.server import Server

N, FPS = 60, 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    d = tmp_path_factory.mktemp("reader")
    mounts = []
    for name, bframes, gop in (("nob", 0, 30), ("bframes", 2, 30), ("longgop", 2, N)):
        clip = make_clip(d / f"{name}.mp4", frames=N, fps=FPS, bframes=bframes, gop=gop)
        side = d / f"{name}.jsonl"
        write_index_sidecar(side, N)
        mounts.append(Mount(name=name, file=str(clip), sidecar=str(side)))
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http=False), tuple(mounts)).start()
    yield srv
    srv.stop()


def latency_p50(url: str, decode: bool, frames: int = 45) -> float:
    lat = []
    with framecast.open(url, decode=decode, timeout=10) as reader:
        for n, f in enumerate(reader):
            if n >= 10 and f.metadata:  # past the start-up burst
                lat.append((time.time_ns() - f.metadata[0]["wallclock_ns"]) / 1e6)
            if n >= frames:
                break
    return statistics.median(lat)


def test_without_decoding_is_not_later(server: Server) -> None:
    url = server.rtsp_url("nob")
    raw, decoded = latency_p50(url, False), latency_p50(url, True)
    assert raw <= decoded + 15, f"decode=False p50 {raw:.0f} ms vs decode=True {decoded:.0f} ms"


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_without_decoding_in_presentation_order(server: Server, transport: str) -> None:
    seqs, pts = [], []
    with framecast.open(server.rtsp_url("bframes"), timeout=10, transport=transport) as r:
        for f in r:
            pts.append(f.pts_ns)
            if f.metadata:
                seqs.append(f.metadata[0]["seq"])
            if len(pts) >= 2 * N:
                break
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False)), "PTS out of order"
    assert all(b > a for a, b in zip(seqs, seqs[1:], strict=False)), "metadata out of order"
    if transport == "tcp":
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_decoding_reader_joining_mid_gop_starts_at_a_keyframe(server: Server) -> None:
    """One reader keeps the 2 s-GOP mount playing; a second joins 0.7 s in."""
    url = server.rtsp_url("longgop")
    stop = threading.Event()

    def hold() -> None:
        with framecast.open(url, timeout=10) as r:
            for _ in r:
                if stop.is_set():
                    return

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        time.sleep(0.7)
        with framecast.open(url, decode=True, timeout=10) as reader:
            frames = [next(reader) for _ in range(10)]
            skipped = reader.skipped
    finally:
        stop.set()
        holder.join(10)
    assert skipped > 0, "joined at a keyframe: the test proves nothing"
    assert frames[0].keyframe
    for f in frames:
        assert len(f.metadata) == 1
        assert read_index(f.image) == f.metadata[0]["index"]
