"""Fragmented MP4 (``-movflags frag_keyframe+empty_moov``, what OBS, cameras and recorders
write), 29.97 fps H.264 High with B-frames + AAC, loops like a regular MP4: over RTSP TCP and
UDP one frame step everywhere (0 repeated, 0 missing), the audio once per loop, and sidecar
line i on picture i (framecast.open and PyAV, pixels decode cleanly).

Before the fix qtdemux, seeking back to 0, timed the first fragment from the ``mfra`` index
(the keyframe's presentation time taken as its decode time): that fragment came 2 frames
late every loop — repeated and missing PTS, metadata i+2 on picture i.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from field_helpers import (
    audio_frames_per_loop,
    audio_loop_errors,
    ffprobe_audio,
    read_framecast,
    read_pyav,
    rtsp_audio,
)
from rtsp_helpers import check_pts, ffprobe_packets
from sei_helpers import write_index_sidecar

from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.gst.probe import probe_file
from framecast.isobmff import mfra_offset
from framecast.server import Server

N, GOP = 45, 15  # 1.5 s at 29.97 fps, 3 fragments
FRAME_S = 1001 / 30000


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fmp4")
    v = make_clip(d / "v.mp4", frames=N, fps=30, bframes=2, gop=GOP, profile="high")
    out = d / "frag.mp4"
    # -itsscale 1.001: 30 -> 29.97 fps without re-encoding the index pictures
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-itsscale", "1.001", "-i", str(v), "-f",
                    "lavfi", "-i", "sine=f=440:sample_rate=48000:d=1.5", "-map", "0:v",
                    "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "64k", "-movflags",
                    "frag_keyframe+empty_moov", str(out)], check=True, timeout=60)
    assert mfra_offset(out) is not None, "FFmpeg wrote no mfra: the clip proves nothing"
    return out


@pytest.fixture(scope="module")
def server(clip: Path) -> Iterator[Server]:
    side = clip.with_suffix(".jsonl")
    write_index_sidecar(side, N)
    mount = Mount(name="frag", file=str(clip), sidecar=str(side))
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http=False), (mount,)).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_video_and_audio_loop_exactly(server: Server, clip: Path, transport: str) -> None:
    info = probe_file(clip)
    assert info.frames == N
    period = info.period_ns / 1e9
    video_pts = [p for p, _ in ffprobe_audio(str(clip), stream="v:0")]
    per_loop = audio_frames_per_loop(ffprobe_audio(str(clip)), video_pts, period)
    url = server.rtsp_url("frag")
    got: dict[str, object] = {}

    def run(kind: str, fn: object, seconds: float) -> None:
        try:
            got[kind] = fn(url, seconds, transport)  # type: ignore[operator]
        except BaseException as exc:
            got[kind] = exc

    threads = [threading.Thread(target=run, args=("audio", rtsp_audio, 5.5)),
               threading.Thread(target=run, args=("video", ffprobe_packets, 5.0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for kind, res in got.items():
        if isinstance(res, BaseException):
            raise AssertionError(f"{kind}: {res!r}") from res
    report = check_pts(got["video"], FRAME_S, tol=0.0005)  # type: ignore[arg-type]
    assert report.clean, report
    assert report.frames >= 2.5 * N  # 2+ loop points
    # UDP on a loaded 2-core box may lose a few packets (client side); none may repeat
    errors = audio_loop_errors(got["audio"], period, per_loop,  # type: ignore[arg-type]
                               lost=per_loop // 10 if transport == "udp" else 0)
    assert errors == []


def test_metadata_index_is_pixel_index(server: Server) -> None:
    """framecast.open (UDP) and PyAV (TCP, decode errors counted) at once, 3 loops: sidecar
    line i on picture i."""
    url, count = server.rtsp_url("frag"), 3 * N
    results: dict[str, object] = {}

    def run(name: str, fn: object) -> None:
        try:
            results[name] = fn()  # type: ignore[operator]
        except BaseException as exc:
            results[name] = exc

    threads = [threading.Thread(target=run, args=("framecast", lambda: read_framecast(
                   url, "udp", count))),
               threading.Thread(target=run, args=("pyav", lambda: read_pyav(url, "tcp", count)))]
    for t in threads:  # staggered: rtspsrc 1.22 joining with another client may stall
        t.start()
        time.sleep(1.0)
    for t in threads:
        t.join(90)
    for name, res in results.items():
        if isinstance(res, BaseException):
            raise AssertionError(f"{name}: {res!r}") from res
    pyav, errors = results["pyav"]  # type: ignore[misc]
    assert errors == []
    for frames in (results["framecast"], pyav):
        assert len(frames) >= count  # type: ignore[arg-type]
        for pixel, md in frames:  # type: ignore[union-attr]
            assert md["index"] == pixel, (pixel, md)
            assert md["seq"] == md["loop"] * N + pixel, md
    seqs = [md["seq"] for _, md in results["framecast"]]  # type: ignore[union-attr]
    assert seqs == sorted(set(seqs))  # UDP: in order, none twice
    seqs = [md["seq"] for _, md in pyav]  # TCP: none lost either
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
