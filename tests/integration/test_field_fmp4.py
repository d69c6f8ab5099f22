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
    run_concurrently,
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
    got = run_concurrently({"audio": lambda: rtsp_audio(url, 5.5, transport),
                            "video": lambda: ffprobe_packets(url, 5.0, transport)})
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
    results = run_concurrently({"framecast": lambda: read_framecast(url, "udp", count),
                                "pyav": lambda: read_pyav(url, "tcp", count)},
                               stagger=1.0, timeout=90)
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
