"""A relay serves its camera's audio (AAC) beside the video, in sync: a beep written at the
frame showing index 15 is heard with that frame through a relay, as from the camera itself
(PyAV over TCP, both streams decoded). Before, the relay mount was video-only."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import av
import numpy as np
import pytest

from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.pixelindex import read_index
from framecast.server import Server

FPS, N, BEEP = 30, 30, 15  # 1 s loops; the beep starts with frame 15 (0.5 s)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    d = tmp_path_factory.mktemp("relay-audio")
    video = make_clip(d / "v.mp4", frames=N, fps=FPS, gop=N)
    clip = d / "av.mp4"
    beep = rf"if(between(t\,{BEEP / FPS}\,{BEEP / FPS + 0.05})\,0.8*sin(2*PI*1000*t)\,0)"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video), "-f", "lavfi", "-i",
                    f"aevalsrc={beep}:s=48000:d=1", "-map", "0:v", "-map", "1:a", "-c:v", "copy",
                    "-c:a", "aac", "-b:a", "96k", str(clip)], check=True, timeout=60)
    settings = Settings(bind="127.0.0.1", rtsp_port=0, http=False)
    cam = Server(settings, (Mount(name="cam", file=str(clip)),)).start()
    relay = Server(settings, (Mount(name="relay", source=cam.rtsp_url("cam")),)).start()
    try:
        yield {"camera": cam.rtsp_url("cam"), "relay": relay.rtsp_url("relay")}
    finally:
        relay.stop()
        cam.stop()


def beep_offsets(url: str, seconds: float = 5.0) -> tuple[list[str], list[float]]:
    """(stream codecs, beep onset − frame-15 PTS in seconds, per loop after the first 1.5 s)."""
    frames15: list[float] = []
    onsets: list[float] = []
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=15) as c:
        codecs = [s.codec_context.name for s in c.streams]
        start = None
        for packet in c.demux():
            for frame in packet.decode():
                t = float(frame.pts * frame.time_base) if frame.pts is not None else None
                if t is None:
                    continue
                start = t if start is None else start
                if isinstance(frame, av.VideoFrame):
                    if read_index(frame.to_ndarray(format="rgb24")) == BEEP:
                        frames15.append(t)
                else:
                    loud = np.flatnonzero(np.abs(frame.to_ndarray()[0]) > 0.3)
                    if loud.size and (not onsets or t - onsets[-1] > 0.5):
                        onsets.append(t + loud[0] / frame.sample_rate)
            if start is not None and packet.pts is not None and \
                    float(packet.pts * packet.time_base) - start > seconds:
                break
    offsets = []
    for f in frames15:
        if f - start < 1.5:
            continue  # FFmpeg aligns the streams once RTCP sender reports came
        near = min(onsets, key=lambda o: abs(o - f), default=None)
        if near is not None:
            offsets.append(near - f)
    return codecs, offsets


@pytest.mark.parametrize("which", ["camera", "relay"])
def test_relay_audio_in_sync(chain: dict[str, str], which: str) -> None:
    codecs, offsets = beep_offsets(chain[which])
    assert codecs == ["h264", "aac"]
    assert len(offsets) >= 2, offsets
    # one frame is 33 ms: the beep comes with its frame (AAC frames are 21 ms)
    assert all(abs(o) < 0.03 for o in offsets), offsets
