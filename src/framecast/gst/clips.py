"""Test and demo clips made with real encoders and muxers.

Frame i of every clip shows :func:`framecast.pixelindex.render_frame` (i): a moving picture with
the number drawn and the index in machine-readable blocks, so tests can check that what a client
decodes is the frame the metadata says it is.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from gi.repository import Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.codecs import CODECS, encoder_recipe, video_codec
from framecast.errors import ClipError
from framecast.gst.plumbing import error_text, wait_bus
from framecast.gst.runtime import init_gst
from framecast.pixelindex import DEMO_PERIOD, demo_objects, render_demo_frame, render_frame

VIDEO_CODECS = ("h264", "h265", "vp9", "mjpeg")
CONTAINERS = {"mp4": "mp4mux", "mov": "qtmux", "mkv": "matroskamux", "webm": "webmmux",
              "ts": "mpegtsmux"}
AUDIO_RATE = 48000


def _video_encoder(codec: str, container: str, bframes: int, gop: int, profile: str | None,
                   slices: int = 0) -> str:
    if codec in CODECS:
        fmt = "byte-stream" if container == "ts" else video_codec(codec).mp4_format
        return encoder_recipe(codec, gop=gop, live=False, bframes=bframes, slices=slices,
                              profile=profile if codec == "h264" else None, stream_format=fmt)
    if codec == "vp9":
        return f"vp9enc deadline=1 keyframe-max-dist={gop}"
    if codec == "mjpeg":
        return "jpegenc"
    raise ValueError(f"unknown video codec {codec!r}")


# make_clip's audio encoders; all but vorbis are carried (codecs.AUDIO_CODECS)
AUDIO_ENCODERS = {
    "aac": "avenc_aac ! aacparse", "opus": "opusenc ! opusparse",
    "mp3": "lamemp3enc ! mpegaudioparse", "mp2": "avenc_mp2 ! mpegaudioparse",
    "ac3": "avenc_ac3 ! ac3parse",
    "pcmu": "audioresample ! audio/x-raw,rate=8000,channels=1 ! mulawenc",
    "vorbis": "vorbisenc",
}


def _audio_branch(audio: str, frames: int, fps: int) -> str:
    # One audio buffer per video frame so both streams last exactly as long.
    samples = AUDIO_RATE // fps
    enc = AUDIO_ENCODERS[audio]
    return (f"audiotestsrc wave=sine freq=440 num-buffers={frames} samplesperbuffer={samples} "
            f"! audio/x-raw,rate={AUDIO_RATE},channels=2 ! audioconvert ! {enc} ! queue ! mux. ")


BEEP_HZ = 1000


def _beep_branch(audio: str) -> str:
    # PCM pushed frame by frame next to the pictures (see make_clip's flash_every)
    enc = AUDIO_ENCODERS[audio]
    return (f"appsrc name=asrc format=time caps=audio/x-raw,format=S16LE,rate={AUDIO_RATE},"
            f"channels=2,layout=interleaved ! audioconvert ! {enc} ! queue ! mux. ")


# avenc_aac starts with 1024 samples of priming that mp4mux 1.22 records in no edit list:
# players hear everything that much late, so a lip-sync clip's AAC beeps are written earlier
_PRIMING = {"aac": 1024}


def _beep_pcm(i: int, fps: int, flash_every: int, audio: str) -> np.ndarray:
    """Frame ``i``'s audio: a 1 kHz beep during the flash frames (heard with them once the
    encoder's priming is counted), silence otherwise."""
    n = AUDIO_RATE // fps
    s = np.arange(n) + i * n + _PRIMING.get(audio, 0)  # the sample index heard at this time
    beep = (s // n) % flash_every == flash_every // 2
    tone = 0.6 * 32767 * np.sin(2 * np.pi * BEEP_HZ * s / AUDIO_RATE) * beep
    return np.repeat(tone.astype(np.int16)[:, None], 2, axis=1)


def flash_frame(render: Callable[[int, int, int], np.ndarray], flash_every: int
                ) -> Callable[[int, int, int], np.ndarray]:
    """``render``, except every ``flash_every``-th frame is all white, from frame
    ``flash_every // 2`` (mid-period: far from a loop's seam and the encoder's start)."""
    def out(i: int, width: int, height: int) -> np.ndarray:
        if i % flash_every == flash_every // 2:
            return np.full((height, width, 3), 255, np.uint8)
        return render(i, width, height)
    return out


def make_clip(path: str | os.PathLike[str], *, codec: str = "h264", container: str = "mp4",
              frames: int = 60, fps: int = 30, width: int = 320, height: int = 240,
              bframes: int = 0, audio: str | None = None, profile: str | None = None,
              gop: int = 30, slices: int = 0,
              render: Callable[[int, int, int], np.ndarray] = render_frame,
              flash_every: int = 0) -> Path:
    """Encode ``frames`` frames of ``render(i, width, height)`` (by default the index test
    picture) into ``path``; returns the path.

    ``slices`` > 1: that many slices per picture (what cameras and x264 zerolatency write).
    ``flash_every`` > 0 (with ``audio``): a lip-sync clip — every ``flash_every``-th frame
    (from frame ``flash_every // 2``) is white and its audio a beep of one frame's length,
    silence between.
    """
    init_gst()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mux = CONTAINERS[container]
    mux_opts = " faststart=false" if container in ("mp4", "mov") else ""
    desc = (
        f"appsrc name=src format=time caps=video/x-raw,format=RGB,width={width},height={height},"
        f"framerate={fps}/1 ! videoconvert ! video/x-raw,format=I420 ! "
        f"{_video_encoder(codec, container, bframes, gop, profile, slices)} ! queue ! "
        f"{mux} name=mux{mux_opts} ! filesink location=\"{path}\" "
    )
    if audio and flash_every > 0:
        desc += _beep_branch(audio)
        render = flash_frame(render, flash_every)
    elif audio:
        desc += _audio_branch(audio, frames, fps)
    pipeline = Gst.parse_launch(desc)
    src = pipeline.get_by_name("src")
    asrc = pipeline.get_by_name("asrc")
    pipeline.set_state(Gst.State.PLAYING)
    frame_ns = Gst.SECOND // fps
    try:
        for i in range(frames):
            data = render(i, width, height).tobytes()
            buf = Gst.Buffer.new_wrapped(data)
            buf.pts = Gst.util_uint64_scale(i, Gst.SECOND, fps)
            buf.duration = frame_ns
            if src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
                break
            if asrc is not None:
                abuf = Gst.Buffer.new_wrapped(_beep_pcm(i, fps, flash_every, audio or "").tobytes())
                abuf.pts, abuf.duration = buf.pts, frame_ns
                if asrc.emit("push-buffer", abuf) != Gst.FlowReturn.OK:
                    break
        src.emit("end-of-stream")
        if asrc is not None:
            asrc.emit("end-of-stream")
        msg = wait_bus(pipeline.get_bus(), 60 * Gst.SECOND)
        if msg is None:
            raise ClipError(f"{path}: timed out writing the clip")
        if msg.type == Gst.MessageType.ERROR:
            raise ClipError(f"{path}: {error_text(msg)}")
    finally:
        pipeline.set_state(Gst.State.NULL)
    return path


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "framecast"


DEMO_VERSION = 2  # part of the cached files' names: bump when the demo's picture changes
DEMO_SIZE = (640, 360)


def demo_clip(variant: str = "demo") -> Path:
    """A built-in demo clip: made once on first run, then cached.

    ``demo``: Main profile without B-frames, which browsers receive as it is (WebRTC
    passthrough). ``demo-high``: the same picture in High profile with B-frames, which the
    WebRTC side must transcode. Both: 10 s at 30 fps with AAC audio, a ball and a block moving
    (:func:`framecast.pixelindex.render_demo_frame`); :func:`demo_sidecar` has their boxes.
    """
    opts: dict[str, Any] = {"demo": {"profile": "main", "bframes": 0},
                             "demo-high": {"profile": "high", "bframes": 2}}[variant]
    path = cache_dir() / f"{variant}-v{DEMO_VERSION}.mp4"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.part.mp4")
        width, height = DEMO_SIZE
        make_clip(tmp, codec="h264", container="mp4", frames=DEMO_PERIOD, fps=30, width=width,
                  height=height, audio="aac", gop=30, render=render_demo_frame, **opts)
        tmp.replace(path)  # atomic: a server started meanwhile never sees half a clip
    return path


def demo_sidecar() -> Path:
    """JSON Lines beside the demo clips: line i holds the boxes of the objects in frame i,
    computed from the frame index exactly as the picture is drawn."""
    path = cache_dir() / f"demo-v{DEMO_VERSION}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        width, height = DEMO_SIZE
        lines = (json.dumps({"boxes": [list(o) for o in demo_objects(i, width, height)]})
                 for i in range(DEMO_PERIOD))
        tmp = path.with_suffix(f".{os.getpid()}.part")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(path)
    return path


def frames_for_seconds(seconds: float, fps: int) -> int:
    return max(1, math.ceil(seconds * fps))
