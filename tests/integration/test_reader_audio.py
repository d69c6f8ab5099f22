"""framecast.open(url, audio=True) and ``framecast watch --audio``: the decoded PCM is the
file's tone, on the frames' timeline, from files and RTSP."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import chunks_peak_hz

import framecast
from framecast import AudioChunk, Frame, Mount, Server, Settings
from framecast.gst.clips import make_clip

pytestmark = pytest.mark.timeout(120)
FRAMES, FPS = 60, 30


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("audio")
    # make_clip's tone: a 440 Hz sine, stereo, 48 kHz
    return {"aac": make_clip(base / "tone.mp4", frames=FRAMES, fps=FPS, audio="aac"),
            "opus": make_clip(base / "tone.mkv", container="mkv", frames=FRAMES, fps=FPS,
                              audio="opus")}


@pytest.mark.parametrize("codec", ["aac", "opus"])
def test_file_audio_is_the_tone_beside_the_frames(clips: dict[str, Path], codec: str) -> None:
    with framecast.open(str(clips[codec]), audio=True) as reader:
        items = list(reader)
    frames = [i for i in items if isinstance(i, Frame)]
    chunks = [i for i in items if isinstance(i, AudioChunk)]
    assert len(frames) == FRAMES
    assert [i.pts_ns for i in items] == sorted(i.pts_ns for i in items)  # one timeline
    c = chunks[0]
    assert c.rate == 48000 and c.channels == 2 and c.samples.dtype == np.float32
    assert abs(chunks_peak_hz(chunks) - 440) < 3
    seconds = sum(len(c.samples) for c in chunks) / c.rate
    assert abs(seconds - FRAMES / FPS) < 0.1  # all of it, as long as the video
    assert abs(chunks[0].pts - frames[0].pts) < 0.05
    assert 0.2 < float(np.abs(chunks[len(chunks) // 2].samples).max()) <= 1.0


def test_audio_false_yields_frames_only(clips: dict[str, Path]) -> None:
    with framecast.open(str(clips["aac"])) as reader:
        items = list(reader)
    assert len(items) == FRAMES and all(isinstance(i, Frame) for i in items)


def test_rtsp_audio_is_the_tone_on_the_frames_timeline(clips: dict[str, Path]) -> None:
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http=False),
                 (Mount(name="tone", file=str(clips["aac"])),)).start()
    try:
        items: list[Frame | AudioChunk] = []
        with framecast.open(srv.rtsp_url("tone"), audio=True, timeout=20) as reader:
            for item in reader:
                items.append(item)
                if sum(isinstance(i, Frame) for i in items) >= 45:
                    break
    finally:
        srv.stop()
    frames = [i for i in items if isinstance(i, Frame)]
    chunks = [i for i in items if isinstance(i, AudioChunk)]
    assert abs(chunks_peak_hz(chunks) - 440) < 3
    # both streams cover the same stretch of the timeline (jitterbuffer smoothing: ~ms)
    assert abs(chunks[0].pts - frames[0].pts) < 0.1
    assert abs(chunks[-1].pts - frames[-1].pts) < 0.1
    steps = [b.pts_ns - a.pts_ns for a, b in zip(items, items[1:], strict=False)]
    assert min(steps) > -10_000_000  # by pts (a few ms of RTP timestamp jitter at most)


def test_watch_audio_prints_chunk_lines_only_when_asked(clips: dict[str, Path],
                                                        framecast_bin: str) -> None:
    def lines(*extra: str) -> list[dict]:
        proc = subprocess.run([framecast_bin, "watch", str(clips["aac"]), "--count", "10",
                               *extra], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return [json.loads(line) for line in proc.stdout.splitlines()]

    plain = lines()
    assert len(plain) == 10 and not any("audio" in o for o in plain)
    mixed = lines("--audio")
    audio = [o for o in mixed if o.get("audio")]
    assert len(mixed) - len(audio) == 10  # --count counts frames
    assert len(audio) >= 14  # 10 frames = 1/3 s = 15.6 AAC frames of 1024 samples
    assert audio[0]["rate"] == 48000 and audio[0]["channels"] == 2
    assert audio[5]["samples"] == 1024 and audio[5]["level_dbfs"] > -12
