"""A Publisher on every output: process CPU and delivery latency with an RTSP reader, a WebRTC
reader, or both at once (each watched output runs its own encode of the same pushes).

640x480 RGB frames pushed at 30 fps into a Publisher with its own server (RTSP + HTTP); the
readers are ``framecast.open(url, decode=False)`` in this process (they parse, never decode).
CPU: this whole process (publisher, server, readers) over WINDOW s, as % of one core, after a
warm-up; the reference is the RTSP reader alone, and the other figures are given as ratios to
it. Latency: receive time minus the frame's ``wallclock_ns`` stamp (same clock, loopback).
Scenarios are interleaved over REPS rounds; medians are printed.

Runs itself inside tools/netns-run (WebRTC needs the private namespace). Usage:
    .venv/bin/python bench/publisher_bench.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "browser")]

QUICK = "--quick" in sys.argv
W, H, FPS = 640, 480, 30
WARMUP, WINDOW = (1.5, 3.0) if QUICK else (2.0, 6.0)
REPS = 1 if QUICK else 3
SCENARIOS = ("rtsp", "webrtc", "both")


class Reader(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop_flag = url, threading.Event()
        self.frames, self.latencies_ms = 0, []
        self.error: str | None = None

    def run(self) -> None:
        import framecast

        try:
            with framecast.open(self.url, decode=False, timeout=20) as reader:
                for f in reader:
                    if self.stop_flag.is_set():
                        return
                    self.frames += 1
                    if f.metadata and "wallclock_ns" in f.metadata[0]:
                        self.latencies_ms.append(
                            (time.time_ns() - f.metadata[0]["wallclock_ns"]) / 1e6)
        except Exception as exc:  # reported with the figures
            self.error = str(exc)


def run_scenario(pub: Any, kind: str) -> dict[str, float]:
    urls = {"rtsp": [pub.url],
            "webrtc": [f"webrtc://127.0.0.1:{pub.server.http_port}/{pub.mount}"]}
    urls["both"] = urls["rtsp"] + urls["webrtc"]
    readers = [Reader(u) for u in urls[kind]]
    for r in readers:
        r.start()
    time.sleep(WARMUP)
    n0 = [r.frames for r in readers]
    l0 = [len(r.latencies_ms) for r in readers]
    c0, t0 = time.process_time(), time.monotonic()
    time.sleep(WINDOW)
    cpu = (time.process_time() - c0) / (time.monotonic() - t0) * 100
    fps = min((r.frames - n) / WINDOW for r, n in zip(readers, n0, strict=True))
    lat = [x for r, n in zip(readers, l0, strict=True) for x in r.latencies_ms[n:]]
    for r in readers:
        r.stop_flag.set()
    for r in readers:
        r.join(10)
        if r.error:
            print(f"  {kind}: reader error: {r.error}")
    time.sleep(1.0)  # media and producer stop (idle stop 0) before the next scenario
    return {"cpu": cpu, "fps": fps, "p50": statistics.median(lat) if lat else float("nan")}


def main() -> int:
    from browser_helpers import in_private_netns

    import framecast

    if not in_private_netns():
        os.execv(str(ROOT / "tools" / "netns-run"),
                 [str(ROOT / "tools" / "netns-run"), sys.executable, *sys.argv])
    from framecast.config import Settings
    from framecast.pixelindex import render_frame

    frames = [render_frame(i, W, H) for i in range(FPS)]
    pub = framecast.Publisher("bench", W, H, FPS, settings=Settings(
        rtsp_port=0, http_port=0, webrtc_idle_stop=0))
    stop = threading.Event()

    def push() -> None:
        i, next_t = 0, time.monotonic()
        while not stop.is_set():
            pub.push(frames[i % FPS], {"i": i})
            i += 1
            next_t += 1 / FPS
            time.sleep(max(0.0, next_t - time.monotonic()))

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    results: dict[str, list[dict[str, float]]] = {k: [] for k in SCENARIOS}
    try:
        for _ in range(REPS):
            for kind in SCENARIOS:
                results[kind].append(run_scenario(pub, kind))
    finally:
        stop.set()
        pusher.join(5)
        pub.close()
    med = {k: {f: statistics.median(r[f] for r in v) for f in ("cpu", "fps", "p50")}
           for k, v in results.items()}
    ref = med["rtsp"]["cpu"]
    print(f"Publisher {W}x{H} {FPS} fps, process CPU (publisher + server + readers), "
          f"window {WINDOW:g} s, median of {REPS}; load average {os.getloadavg()[0]:.1f}")
    print("| outputs watched | CPU % of a core | × RTSP only | slowest reader fps | "
          "latency p50 ms |")
    print("|---|---|---|---|---|")
    for k in SCENARIOS:
        m = med[k]
        print(f"| {k} | {m['cpu']:.1f} | {m['cpu'] / ref:.2f} | {m['fps']:.1f} | "
              f"{m['p50']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
