"""A looped file's audio as the WebRTC producer shares it (after the Opus encode, at the audio
tee): continuous across loop boundaries and locked to the video, Opus passed through or AAC
encoded once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from framecast.gst.runtime import init_gst

init_gst()
from gi.repository import GLib, Gst  # noqa: E402

from framecast.gst.clips import make_clip  # noqa: E402
from framecast.gst.webrtc import MountProducer  # noqa: E402
from framecast.gst.webrtcsource import file_source  # noqa: E402

pytestmark = pytest.mark.timeout(120)

OPUS_FRAME_S = 0.020
AAC_FRAME_S = 1024 / 48000


@pytest.mark.parametrize(("audio", "encoders"), [("aac", 1), ("opus", 0)])
def test_audio_is_continuous_across_loops_and_stays_with_the_video(
        tmp_path: Path, audio: str, encoders: int) -> None:
    clip = make_clip(tmp_path / f"{audio}.mp4", frames=15, fps=30, profile="main", audio=audio)
    source, info, status = file_source(str(clip), "m")
    prod = MountProducer("m", source, info, idle_stop=None)
    spans: list[tuple[float, float]] = []  # running time (s) of each Opus packet: start, end
    video: list[float] = []

    def running(pad: Gst.Pad, buf: Gst.Buffer) -> float:
        seg = pad.get_sticky_event(Gst.EventType.SEGMENT, 0).parse_segment()
        return seg.to_running_time(Gst.Format.TIME, buf.pts) / 1e9

    def on_audio(pad: Gst.Pad, probe: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buf = probe.get_buffer()
        start = running(pad, buf)
        spans.append((start, start + buf.duration / 1e9))
        return Gst.PadProbeReturn.OK

    def on_video(pad: Gst.Pad, probe: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        video.append(running(pad, probe.get_buffer()))
        return Gst.PadProbeReturn.OK

    ctx = GLib.MainContext.default()
    try:
        prod.start()
        assert prod.atee is not None, "the mount's audio did not reach the producer"
        prod.atee.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_audio)
        prod.tee.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_video)
        deadline = time.monotonic() + 3.5  # 7 loops of 0.5 s
        while time.monotonic() < deadline:
            ctx.iteration(False)
            time.sleep(0.005)
        assert prod.element_count("opusenc", recurse=True) == encoders
        loops = status()["loops"]
    finally:
        prod.stop()
    assert loops >= 4, loops
    # the stream proper starts with the Looper's first flushing seek (after preroll): what
    # went through before it (prerolled frames, running time restarting at 0) is cut off
    spans, video = _after_restart(spans), _after_restart(video)
    assert len(spans) > 100, len(spans)
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False)]
    # no gap or overlap beyond one audio frame anywhere, loop seams included (each loop's
    # audio is clipped to the period: ~9 ms short here)
    worst = max(gaps, key=abs)
    assert abs(worst) <= AAC_FRAME_S + 0.001, f"worst gap {worst * 1000:.1f} ms"
    # no drift: each loop's first audio packet starts where that loop's video does
    period = 0.5
    starts = [min((s for s, _e in spans if n * period - 0.015 <= s < n * period + 0.45),
                  default=None) for n in range(1, 6)]
    assert None not in starts, starts
    offsets = [s - n * period for n, s in zip(range(1, 6), starts, strict=True)]
    assert max(offsets) - min(offsets) <= 0.001, offsets
    assert all(abs(o) <= OPUS_FRAME_S for o in offsets), offsets


def _after_restart(xs: list) -> list:
    key = [x[0] if isinstance(x, tuple) else x for x in xs]
    cut = next((i + 1 for i in range(len(key) - 1) if key[i + 1] < key[i] - 0.1), 0)
    return xs[cut:]
