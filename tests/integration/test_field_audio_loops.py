"""Audio across loop points, as ffprobe receives it over RTSP (TCP and UDP): every audio frame
that fits the loop arrives once per loop, in order, never overlapping the next loop's first
frames — MPEG-TS with AAC (FFmpeg-muxed), audio longer and shorter than the video, H.265 in
Matroska, and fragmented MP4 (test_field_fmp4).

Before the fix: audio longer than the video and the MKV overlapped the next loop by 5-16 ms
(the last frame started before the loop's end and ran past it), the FFmpeg TS stepped back
8 ms per loop.
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
    rtsp_audio,
    run_concurrently,
)
from rtsp_helpers import check_pts, ffprobe_packets

from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.gst.probe import probe_file
from framecast.server import Server

FPS, N = 30, 30  # 1 s loops: 4 loops in 4.5 s of capture


def _with_audio(video: Path, out: Path, seconds: float, *extra: str) -> Path:
    """``video`` (copied) plus ``seconds`` of FFmpeg AAC: its own timing, like real files."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video), "-f", "lavfi", "-i",
                    f"sine=f=440:sample_rate=48000:d={seconds}", "-map", "0:v", "-map", "1:a",
                    "-c:v", "copy", "-c:a", "aac", "-b:a", "64k", *extra, str(out)],
                   check=True, timeout=60)
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audioloops")
    v = make_clip(d / "v.mp4", frames=N, fps=FPS, bframes=2, gop=15)
    return {
        "ts": _with_audio(v, d / "ts.ts", 1.0, "-f", "mpegts"),
        "alonger": _with_audio(v, d / "alonger.mp4", 1.25),
        "vlonger": _with_audio(v, d / "vlonger.mp4", 0.75),
        "hevcmkv": make_clip(d / "hevcmkv.mkv", codec="h265", container="mkv", frames=N,
                             fps=FPS, bframes=2, gop=15, audio="aac"),
    }


@pytest.fixture(scope="module")
def server(clips: dict[str, Path]) -> Iterator[Server]:
    mounts = tuple(Mount(name=name, file=str(path)) for name, path in clips.items())
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http=False), mounts).start()
    yield srv
    srv.stop()


def expected_per_loop(path: Path) -> tuple[int, float]:
    info = probe_file(path)
    video = [p for p, _ in ffprobe_audio(str(path), stream="v:0")]
    assert info.frames == N
    period = N / FPS  # nominal: a loop that runs long (Matroska's ms-rounded PTS) drifts
    return audio_frames_per_loop(ffprobe_audio(str(path)), video, period), period


@pytest.mark.parametrize("mount", ["ts", "alonger", "vlonger", "hevcmkv"])
def test_audio_frames_once_per_loop(server: Server, clips: dict[str, Path], mount: str) -> None:
    per_loop, period = expected_per_loop(clips[mount])
    url = server.rtsp_url(mount)
    for transport in ("tcp", "udp"):  # audio (rtspsrc) and video (ffprobe) at once
        got = run_concurrently({"audio": lambda t=transport: rtsp_audio(url, 4.8, t),
                                "video": lambda t=transport: ffprobe_packets(url, 4.0, t)},
                               what=f"{transport} ")
        # UDP on a loaded 2-core box may lose a packet; none may repeat or overlap
        errors = audio_loop_errors(got["audio"], period, per_loop,  # type: ignore[arg-type]
                                   lost=per_loop // 10 if transport == "udp" else 0)
        assert errors == [], f"{transport}: {errors}"
        report = check_pts(got["video"], 1 / FPS)  # type: ignore[arg-type]
        assert report.clean, (transport, report)
