"""Helpers for the real-world stream tests (test_field_*): what real clients receive, per AU.

- :func:`rtsp_access_units`: the NAL units of every access unit as rtspsrc + depayloader hand
  them over (the marker bit closes an AU), to check the layout of multi-slice frames;
- :func:`read_framecast` / :func:`read_pyav`: (pixel index, metadata) of decoded frames, from
  the first keyframe with its metadata on, PyAV's decode errors counted.
"""

from __future__ import annotations

import bisect
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
from rtsp_helpers import RtspsrcClient
from sei_helpers import sei_of

import framecast
from framecast import sei
from framecast.gst.runtime import Gst, init_gst
from framecast.metadata import FRAMECAST_UUID
from framecast.pixelindex import read_index

PARAMETER_SETS = {"h264": {7, 8}, "h265": {32, 33, 34}}
SEI_TYPES = {"h264": {6}, "h265": {39}}


@dataclass
class AccessUnit:
    pts: int
    keyframe: bool
    nals: list[bytes] = field(default_factory=list)

    def types(self, codec: str) -> list[int]:
        return [sei.nal_type(n, codec) for n in self.nals]

    def slices(self, codec: str) -> int:
        return sum(sei.is_vcl(n, codec) for n in self.nals)

    def layout_errors(self, codec: str, sei_nals: int = 1) -> list[str]:
        """What is wrong with this AU as one frame: parameter sets once, before the first slice;
        ``sei_nals`` framecast SEI NAL units (a relay adds its own to the origin's), all before
        the first slice; keyframes carry parameter sets."""
        types = self.types(codec)
        vcl = [i for i, n in enumerate(self.nals) if sei.is_vcl(n, codec)]
        errs = []
        if not vcl:
            return ["no slice"]
        first = vcl[0]
        ps = [i for i, t in enumerate(types) if t in PARAMETER_SETS[codec]]
        if any(i > first for i in ps):
            errs.append(f"parameter sets after the first slice: {types}")
        if len(ps) != len({types[i] for i in ps}):
            errs.append(f"parameter sets repeated: {types}")
        if self.keyframe and not ps:
            errs.append(f"keyframe without parameter sets: {types}")
        ours = [i for i, n in enumerate(self.nals) if types[i] in SEI_TYPES[codec]
                and any(u == FRAMECAST_UUID for u, _ in _user_data(n, codec))]
        if len(ours) != sei_nals or any(i > first for i in ours):
            errs.append(f"framecast SEI at {ours}, first slice at {first}: {types}")
        return errs


def _user_data(nal: bytes, codec: str) -> list[tuple[bytes, bytes]]:
    try:
        return sei.parse_sei_nal(nal, codec)
    except sei.SEIError:
        return []


def _drop_depayloader_sets(au: AccessUnit, codec: str) -> None:
    types = au.types(codec)
    for k in range(1, len(types)):
        if types[k - 1] not in PARAMETER_SETS[codec]:
            return
        if set(types[:k]) == PARAMETER_SETS[codec] & set(types[k:]):
            del au.nals[:k]  # a full set, then the server's own
            return


def rtsp_access_units(url: str, codec: str, seconds: float,
                      transport: str = "tcp") -> list[AccessUnit]:
    """Every AU received in ``seconds`` (rtspsrc ! depay, AU-aligned).

    The depayloader prepends the SDP's parameter sets to the first keyframe it outputs (and
    strips them all in avc mode): that first copy, not sent by the server, is removed."""
    init_gst()
    proto = {"tcp": "tcp", "udp": "udp"}[transport]
    desc = (f'rtspsrc location="{url}" protocols={proto} latency=100 buffer-mode=none '
            f"! application/x-rtp,media=video ! rtp{codec}depay ! "
            f"video/x-{codec},stream-format=byte-stream,alignment=au ! "
            "appsink name=sink sync=false emit-signals=false max-buffers=0")
    pipe = Gst.parse_launch(desc)
    out: list[AccessUnit] = []
    lock = threading.Lock()

    def on_buf(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        data = buf.extract_dup(0, buf.get_size())
        au = AccessUnit(buf.pts, not buf.has_flags(Gst.BufferFlags.DELTA_UNIT),
                        sei.split_annexb(data))
        with lock:
            if au.keyframe and not any(a.keyframe for a in out):
                _drop_depayloader_sets(au, codec)   # its first keyframe, not its first AU
            out.append(au)
        return Gst.PadProbeReturn.OK

    sink = pipe.get_by_name("sink")
    sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_buf)
    sink.connect("new-sample", lambda s: (s.emit("pull-sample"), Gst.FlowReturn.OK)[1])
    sink.set_property("emit-signals", True)
    pipe.set_state(Gst.State.PLAYING)
    try:
        end = time.monotonic() + seconds
        bus = pipe.get_bus()
        while time.monotonic() < end:
            msg = bus.timed_pop_filtered(50 * Gst.MSECOND, Gst.MessageType.ERROR)
            if msg is not None:
                raise AssertionError(f"rtspsrc: {msg.parse_error()[0].message}")
    finally:
        pipe.set_state(Gst.State.NULL)
    with lock:
        return list(out)


def read_framecast(url: str, transport: str, count: int,
                   max_skip: int = 60) -> list[tuple[int, dict[str, Any]]]:
    """(pixel index, our metadata) of ``count`` decoded frames via framecast.open."""
    out = []
    with framecast.open(url, decode=True, transport=transport, timeout=15) as reader:
        started, skipped = False, 0
        for frame in reader:
            started = started or (frame.keyframe and bool(frame.metadata))
            if not started:
                skipped += 1
                assert skipped <= max_skip, "no complete keyframe"
                continue
            assert frame.image is not None
            assert len(frame.metadata) == 1, (frame.pts, frame.metadata)
            out.append((read_index(frame.image), frame.metadata[0]))
            if len(out) >= count:
                break
    return out


def read_pyav(url: str, transport: str, count: int,
              max_skip: int = 60) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """(pixel index, our metadata) of ``count`` frames decoded by PyAV, and FFmpeg's errors
    logged from the first complete keyframe on."""
    out: list[tuple[int, dict[str, Any]]] = []
    errors: list[str] = []
    old_level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)  # PyAV logs nothing unless told to
    with av.logging.Capture() as logs, \
            av.open(url, options={"rtsp_transport": transport}, timeout=15) as container:
        started, skipped, mark = False, 0, 0
        for frame in container.decode(video=0):
            ours, _others = sei_of(frame)
            if not started and frame.key_frame and len(ours) == 1:
                started, mark = True, len(logs)
            if not started:
                skipped += 1
                assert skipped <= max_skip, "no complete keyframe"
                continue
            assert len(ours) == 1, (frame.pts, ours)
            out.append((read_index(frame.to_ndarray(format="rgb24")), ours[0]))
            if len(out) >= count:
                break
        errors = [f"{name}: {msg.strip()}" for level, name, msg in logs[mark:]
                  if level <= av.logging.ERROR]
    av.logging.set_level(old_level)
    return out, errors


# -- audio across loop points ---------------------------------------------------------------

def ffprobe_audio(src: str, seconds: float | None = None, transport: str = "tcp",
                  stream: str = "a:0") -> list[tuple[float, float]]:
    """(pts, duration) in seconds of every packet (audio unless ``stream`` says otherwise) of a
    file or of ``seconds`` of an RTSP stream, in arrival order."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
           "packet=pts_time,duration_time,flags", "-of", "json"]
    if src.startswith("rtsp://"):
        cmd[1:1] = ["-rtsp_transport", transport, "-read_intervals", f"%+{seconds}"]
    out = subprocess.run(cmd + [src], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-400:]
    pk = json.loads(out.stdout).get("packets", [])
    # "D": decode-only (AAC priming, frames before an edit list's start): never presented
    return [(float(p["pts_time"]), float(p.get("duration_time") or 0)) for p in pk
            if p.get("pts_time") not in (None, "N/A") and "D" not in p.get("flags", "")]


def rtsp_audio(url: str, seconds: float, transport: str = "tcp") -> list[tuple[float, float]]:
    """(pts, duration) in seconds of the parsed audio frames rtspsrc receives in ``seconds``:
    PTS straight from the RTP timestamps (ffprobe re-times streams when RTCP arrives)."""
    # a roomy jitter buffer: a busy CI box must not turn late packets into lost frames
    client = RtspsrcClient(url, transport=transport, audio=True, latency=500)
    try:
        client.run_for(seconds)
        assert not client.errors, client.errors
    finally:
        client.stop()
    frames = [(pts, dur) for pts, dur in client.audio if pts != Gst.CLOCK_TIME_NONE]
    steps = sorted(b[0] - a[0] for a, b in zip(frames, frames[1:], strict=False))
    typical = steps[len(steps) // 2] if steps else 0  # parsebin may leave durations unset
    return [(pts / 1e9, (dur if dur != Gst.CLOCK_TIME_NONE else typical) / 1e9)
            for pts, dur in frames]


def audio_frames_per_loop(audio: list[tuple[float, float]], video_pts: list[float],
                          period: float, tol: float = 0.001) -> int:
    """How many of a file's audio frames fit one loop: the window starts at the earlier of the
    first video frame and the first audio frame and lasts one period."""
    w0 = min(min(video_pts), audio[0][0])
    return sum(1 for pts, dur in audio if pts >= w0 - tol and pts + dur <= w0 + period + tol)


def audio_loop_errors(packets: list[tuple[float, float]], period: float, per_loop: int,
                      loops: int = 3, tol: float = 0.0011, settle: float = 0.5,
                      lost: int = 0, drift_tol: float = 0.00025) -> list[str]:
    """What is wrong with received audio over ``loops`` periods: overlaps or steps back, a
    frame without its twin one period later, or not ``per_loop`` frames in every period
    (``lost``: how many frames the transport may have lost, UDP)."""
    errs = []
    for (a, da), (b, _db) in zip(packets, packets[1:], strict=False):
        if b <= a:
            errs.append(f"backwards at {a:.4f} -> {b:.4f}")
        elif b < a + da - tol:
            errs.append(f"overlap of {1000 * (a + da - b):.1f} ms at {b:.4f}")
    t0 = packets[0][0] + settle  # the first packets may precede RTCP sync
    span = [p for p, _ in packets if t0 <= p < t0 + loops * period]
    assert span and span[-1] > t0 + (loops - 0.2) * period, "capture too short"
    if not loops * per_loop - lost <= len(span) <= loops * per_loop:
        errs.append(f"{len(span)} frames in {loops} periods, expected {loops * per_loop}")
    times = sorted(p for p, _ in packets)
    missing = []
    for p in span[:per_loop]:  # every frame of one period comes back 1..loops-1 periods later
        for k in range(1, loops):  # exactly: RTP timestamps, 1/48000 s; no drift per loop
            q = p + k * period
            i = bisect.bisect_left(times, q - drift_tol)
            if i == len(times) or abs(times[i] - q) > drift_tol:
                missing.append(f"frame at {p:.4f} has no twin at {q:.4f}")
    if len(missing) > lost:
        errs.extend(missing)
    return errs


def run_concurrently(jobs: dict[str, Callable[[], Any]], stagger: float = 0.0,
                     timeout: float = 60.0, what: str = "") -> dict[str, Any]:
    """Run each job in its own thread (``stagger`` s apart: rtspsrc 1.22 joining together
    with another client may stall); their results by name, the first exception re-raised
    as an AssertionError naming its job."""
    results: dict[str, Any] = {}

    def run(name: str, fn: Callable[[], Any]) -> None:
        try:
            results[name] = fn()
        except BaseException as exc:  # reported below with the job's name
            results[name] = exc

    threads = [threading.Thread(target=run, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
        time.sleep(stagger)
    for t in threads:
        t.join(timeout)
    for name, res in results.items():
        if isinstance(res, BaseException):
            raise AssertionError(f"{what}{name}: {res!r}") from res
    assert len(results) == len(jobs), f"still running: {sorted(set(jobs) - set(results))}"
    return results

