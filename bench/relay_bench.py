"""Relay benchmark: what a relay does to its camera's timeline and metadata.

    PYTHONPATH=src .venv/bin/python bench/relay_bench.py [--seconds 15]

(a) seq/PTS: a plain 30 fps camera (a file mount without stamps, without and with B-frames)
    relayed once; over TCP, the relay's own ``seq`` in presentation order (repeats, skips, steps
    back) and its ``pts_ns`` against a perfect 1/30 s grid (worst deviation in the first 1.5 s
    and after);
(b) true age: a framecast origin relayed once; the frame's age read from the origin's
    ``wallclock_ns`` vs from the relay's own stamp (what a reader took before), and how much
    too low the latter reads;
(c) WebRTC CPU for a relayed 720p30 constrained-baseline stream: an always-on producer (no
    viewer) as decided now vs forced to transcode (the reference); CPU of the whole process
    (camera, relay hub, producer) per second.
Run it against another tree (e.g. PYTHONPATH=/work/main/src) for a before/after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import framecast
from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.server import Server

FPS = 30
FRAME_NS = 1_000_000_000 // FPS


def relay_stamps(md: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The relay's own stamps: its hop (this tree) or its own envelope (before: the last)."""
    if not md:
        return None
    if md[0].get("hops"):
        return md[0]["hops"][-1]
    return md[-1]


def read(url: str, seconds: float) -> list[tuple[int, list[dict[str, Any]]]]:
    out = []
    end = None
    with framecast.open(url, timeout=20, transport="tcp") as reader:
        for f in reader:
            now = time.time_ns()
            end = end or time.monotonic() + seconds
            out.append((now, f.metadata))
            if time.monotonic() > end:
                break
    return out


def seq_and_jitter(frames: list[tuple[int, list[dict[str, Any]]]]) -> dict[str, Any]:
    # in presentation order by the relay's own PTS (the reader's order is the reader's)
    own = sorted((s for _, md in frames if (s := relay_stamps(md)) is not None),
                 key=lambda s: s["pts_ns"])[:-5]  # the last B-frames may not be in yet
    seqs = [s["seq"] for s in own]
    steps = [b - a for a, b in zip(seqs, seqs[1:], strict=False)]
    pts = sorted(s["pts_ns"] for s in own)
    first = pts[0]
    dev = [(p - first) - round((p - first) / FRAME_NS) * FRAME_NS for p in pts]
    # the grid's phase from the steady part (the first frames may all be off together)
    steady = [d for p, d in zip(pts, dev, strict=False) if p - first > 1_500_000_000]
    phase = statistics.median(steady) if steady else 0
    early = [abs(d - phase) for p, d in zip(pts, dev, strict=False) if p - first <= 1_500_000_000]
    late = [abs(d - phase) for d in steady]
    return {"frames": len(own), "repeats": sum(1 for s in steps if s == 0),
            "skipped": sum(s - 1 for s in steps if s > 1), "back": sum(1 for s in steps if s < 0),
            "jitter_first_1.5s_ms": max(early) / 1e6 if early else 0.0,
            "jitter_after_ms": max(late) / 1e6 if late else 0.0}


def ages(frames: list[tuple[int, list[dict[str, Any]]]]) -> dict[str, float]:
    origin, relay = [], []
    for now, md in frames[30:]:  # past the start-up burst
        own = relay_stamps(md)
        if not md or own is None or own is md[0]:
            continue
        origin.append((now - md[0]["wallclock_ns"]) / 1e6)
        relay.append((now - own["wallclock_ns"]) / 1e6)
    o, r = statistics.median(origin), statistics.median(relay)
    return {"frames": len(origin), "age_from_origin_ms": o, "age_from_relay_stamp_ms": r,
            "too_low_by_ms": o - r}


def producer_cpu(source: str, transcode: bool | None, seconds: float) -> dict[str, Any]:
    """CPU (this process: camera, relay hub, producer) per second of an always-on WebRTC
    producer for a relay of ``source``; ``transcode`` None = as decided."""
    import asyncio
    import resource

    from framecast.gst.runtime import Bridge
    from framecast.http.metrics import Registry
    from framecast.http.server import HttpServer, mount_specs

    async def run() -> dict[str, Any]:
        (spec,) = await asyncio.to_thread(mount_specs, [Mount(name="r", source=source)])
        if transcode is not None:
            spec.transcode = transcode
        bridge = Bridge(asyncio.get_running_loop())
        srv = HttpServer(bridge, [spec], port=0, metrics=Registry(), idle_stop=None)
        await srv.start()
        try:
            await asyncio.sleep(3)  # camera connected, first frames through
            producer = srv.mounts["r"].producer
            f0, t0 = producer.frames, time.monotonic()
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            await asyncio.sleep(seconds)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            dt = time.monotonic() - t0
            cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / dt
            return {"transcoded": producer.transcoded, "cpu_cores": round(cpu, 3),
                    "fps": round((producer.frames - f0) / dt, 1)}
        finally:
            await srv.stop()
            bridge.close()

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    clip = make_clip(tmp / "cam.mp4", frames=300, fps=FPS, gop=30, profile="constrained-baseline")
    bclip = make_clip(tmp / "camb.mp4", frames=300, fps=FPS, gop=30, bframes=2)
    settings = Settings(bind="127.0.0.1", rtsp_port=0, http=False)
    cam = Server(settings, (Mount(name="plain", file=str(clip), stamps=False),
                            Mount(name="plainb", file=str(bclip), stamps=False),
                            Mount(name="origin", file=str(clip)))).start()
    relay = Server(settings, (Mount(name="rplain", source=cam.rtsp_url("plain")),
                              Mount(name="rplainb", source=cam.rtsp_url("plainb")),
                              Mount(name="rorigin", source=cam.rtsp_url("origin")))).start()
    try:
        for name, what in (("rplain", "no B-frames"), ("rplainb", "B-frames")):
            print(f"(a) relay seq/PTS, plain camera, {what}:", seq_and_jitter(
                read(relay.rtsp_url(name), args.seconds)))
        print("(b) age through one relay:", ages(read(relay.rtsp_url("rorigin"), args.seconds)))
        hd = make_clip(tmp / "hd.mp4", frames=150, fps=FPS, gop=30, width=1280, height=720,
                       profile="constrained-baseline")
        hdcam = Server(settings, (Mount(name="hd", file=str(hd), stamps=False),)).start()
        try:
            url = hdcam.rtsp_url("hd")
            ref = producer_cpu(url, True, args.seconds)
            now = producer_cpu(url, None, args.seconds)
        finally:
            hdcam.stop()
        print("(c) WebRTC producer, relayed 720p30 constrained-baseline: reference (transcode)",
              ref, "as decided", now, "CPU ratio", round(now["cpu_cores"] / ref["cpu_cores"], 3))
    finally:
        relay.stop()
        cam.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
