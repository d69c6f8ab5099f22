"""Helpers for the RTSP tests: real clients (ffprobe, rtspsrc) and timestamp checks."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass

import gi  # noqa: I001

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402, I001

from framecast.gst.runtime import init_gst


def ffprobe_packets(url: str, seconds: float, transport: str = "tcp",
                    stream: str = "v:0", timeout: float = 30.0) -> list[dict]:
    """Video packets (pts/dts in seconds, key flag) of ``seconds`` of stream, via ffprobe."""
    cmd = ["ffprobe", "-v", "error", "-rtsp_transport", transport,
           "-read_intervals", f"%+{seconds}", "-select_streams", stream,
           "-show_entries", "packet=pts_time,dts_time,flags,duration_time", "-of", "json", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"ffprobe failed: {out.stderr.strip()[-400:]}"
    return json.loads(out.stdout).get("packets", [])


@dataclass
class PtsReport:
    frames: int
    span: float
    duplicates: int
    gaps: int
    backwards: int
    steps: list[float]

    @property
    def clean(self) -> bool:
        return self.duplicates == self.gaps == self.backwards == 0


def check_pts(packets: list[dict], frame_s: float, tol: float = 0.0015,
              tail: int = 4) -> PtsReport:
    """Sorted PTS must step by one frame (±tol); decode order must never go backwards.

    Packets before the first keyframe with a timestamp are skipped (a joining client), and the
    last ``tail`` frames are ignored (B-frames still in flight when the capture stopped).
    """
    timed = [p for p in packets if p.get("pts_time") not in (None, "N/A")]
    start = next(i for i, p in enumerate(timed) if "K" in p.get("flags", ""))
    timed = timed[start:]
    key_pts = float(timed[0]["pts_time"])
    pts = sorted(float(p["pts_time"]) for p in timed if float(p["pts_time"]) >= key_pts)
    pts = pts[:-tail] if tail else pts
    dts = [float(p["dts_time"]) for p in timed if p.get("dts_time") not in (None, "N/A")]
    steps = [b - a for a, b in zip(pts, pts[1:], strict=False)]
    dup = sum(1 for s in steps if s < frame_s - tol)
    gap = sum(1 for s in steps if s > frame_s + tol)
    back = sum(1 for a, b in zip(dts, dts[1:], strict=False) if b <= a)
    return PtsReport(len(pts), pts[-1] - pts[0] if pts else 0.0, dup, gap, back, steps)


class RtspsrcClient:
    """A GStreamer rtspsrc client recording (stream media, pts) of every depayloaded buffer."""

    def __init__(self, url: str, *, transport: str = "tcp", audio: bool = False,
                 user: str | None = None, password: str | None = None,
                 tls: bool = False, latency: int = 100) -> None:
        init_gst()
        proto = {"tcp": "tcp", "udp": "udp"}[transport]
        creds = ""
        if user is not None:
            creds = f' user-id="{user}" user-pw="{password}"'
        tlsopt = " tls-validation-flags=0" if tls else ""
        # buffer-mode=none: PTS straight from RTP timestamps (no arrival-time smoothing)
        desc = (f'rtspsrc name=src location="{url}" protocols={proto} latency={latency} '
                f"buffer-mode=none{creds}{tlsopt} "
                "src. ! application/x-rtp,media=video ! parsebin ! fakesink name=vsink "
                "sync=false async=false")
        # parsebin: depayload + parse, no decoding (cheap on a shared CI box)
        if audio:
            desc += (" src. ! application/x-rtp,media=audio ! parsebin ! fakesink name=asink "
                     "sync=false async=false")
        self.pipeline = Gst.parse_launch(desc)
        self.video: list[int] = []
        self.audio: list[tuple[int, int]] = []
        self.first_frame_at: float | None = None
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.pipeline.get_by_name("vsink").get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER, self._on_video)
        if audio:
            self.pipeline.get_by_name("asink").get_static_pad("sink").add_probe(
                Gst.PadProbeType.BUFFER, self._on_audio)
        self.started_at = 0.0

    def _on_video(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        with self.lock:
            if self.first_frame_at is None:
                self.first_frame_at = time.monotonic()
            self.video.append(info.get_buffer().pts)
        return Gst.PadProbeReturn.OK

    def _on_audio(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        with self.lock:
            self.audio.append((buf.pts, buf.duration))
        return Gst.PadProbeReturn.OK

    def start(self) -> RtspsrcClient:
        self.started_at = time.monotonic()
        self.pipeline.set_state(Gst.State.PLAYING)
        return self

    def poll_errors(self) -> list[str]:
        bus = self.pipeline.get_bus()
        while True:
            msg = bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.EOS)
            if msg is None:
                return self.errors
            if msg.type == Gst.MessageType.EOS:
                self.errors.append("EOS")
            else:
                self.errors.append(msg.parse_error()[0].message)

    def run_for(self, seconds: float) -> RtspsrcClient:
        self.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.poll_errors():
            time.sleep(0.05)
        return self

    @property
    def ttff(self) -> float | None:
        return None if self.first_frame_at is None else self.first_frame_at - self.started_at

    def stop(self) -> None:
        self.pipeline.set_state(Gst.State.NULL)


def wait_until(pred, timeout: float = 10.0, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()
