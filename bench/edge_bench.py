"""Janus as the WebRTC edge: framecast CPU vs Janus CPU per viewer, latency direct vs Janus,
rtsp feed (Janus pulls our RTSP) vs rtp feed (framecast pushes RTP).

For each feed: a private Janus (tests/janus_harness.py: streaming plugin + HTTP transport only)
and ``framecast serve --janus URL --janus-feed FEED`` with one looped 640x360 30 fps Main clip
(passthrough); then the same picture in High profile with B-frames (feed auto: pushed as RTP,
transcoded once by framecast) with 0 and 10 viewers. N Python consumers (webrtcbin answering
Janus's offer, no decoding: ``janus://`` sources into fakesinks; Chromium tabs cannot run by
the 50 on 2 cores) watch through Janus for N = 0, 1, 10, 50, plus the latency reader below:
one more viewer in every step, so "0" is the edge with one viewer and per-viewer figures are
(N step - 0 step) / N.
CPU = utime+stime from /proc/<pid>/stat over the window, % of one core, for the framecast
process and the Janus process.

Latency: one more reader (``framecast.open``, no decoding) during each step: the moment a frame
comes out of it minus its SEI ``wallclock_ns`` (stamped when the frame left framecast). The
same reader through ``webrtc://`` (framecast's own WHEP) and ``rtsp://`` is the reference
(direct), measured in the same run.

Runs itself inside tools/netns-run. Usage:
    .venv/bin/python bench/edge_bench.py [--window 8] [--viewers 1,10,50] [--feeds rtsp,rtp]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "tests" / "browser")]

from browser_helpers import Server, in_private_netns, start_server, stop_server  # noqa: E402
from janus_harness import Janus  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def consumers(url: str, n: int) -> Any:
    """N ``janus://`` (or ``webrtc://``) sources into fakesinks, counting access units."""
    from framecast.gst.janus_client import make_janus_source
    from framecast.gst.whep_client import Consumers, make_webrtc_source

    def janus(u: str) -> Any:
        return make_janus_source(u, timeout=30)

    make = janus if url.startswith("janus://") else make_webrtc_source
    return Consumers(url, n, make_source=make, pace=0.05).start()


def wait_frames(cons: Any, frames: int = 30, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while min(cons.frames) < frames and time.monotonic() < deadline:
        if cons.errors:
            raise RuntimeError(cons.errors[0])
        time.sleep(0.2)
    if min(cons.frames) < frames:
        raise RuntimeError(f"consumers stuck: {sorted(cons.frames)[:5]} frames")


def latencies(url: str, seconds: float) -> list[float]:
    """ms from a frame's wallclock_ns (left framecast) to the moment the reader gives it."""
    import framecast

    out: list[float] = []
    with framecast.open(url, timeout=30) as reader:
        t_end = None
        for f in reader:
            now = time.time_ns()
            if t_end is None:
                t_end = time.monotonic() + 2.0 + seconds  # 2 s to settle (a cold start)
            elif time.monotonic() > t_end - seconds and f.metadata:
                out.append((now - f.metadata[0]["wallclock_ns"]) / 1e6)
            if time.monotonic() > t_end:
                break
    return out


def measure(server: Server, janus: Janus, window: float, lat_url: str | None
            ) -> dict[str, Any]:
    lat: list[float] = []
    th = None
    if lat_url:
        th = threading.Thread(target=lambda: lat.extend(latencies(lat_url, window)))
        th.start()
        time.sleep(1.5)  # the reader's own start-up is not in the window
    f0, j0, t0 = cpu_seconds(server.pid), cpu_seconds(janus.proc.pid), time.monotonic()
    time.sleep(window)
    dt = time.monotonic() - t0
    fc = 100 * (cpu_seconds(server.pid) - f0) / dt
    jc = 100 * (cpu_seconds(janus.proc.pid) - j0) / dt
    if th is not None:
        th.join(60)
    return {"framecast": fc, "janus": jc, "p50": pct(lat, 0.5), "p95": pct(lat, 0.95),
            "n_lat": len(lat)}


def wait_up(server: Server, mounts: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        up = {s["name"] for s in server.streams() if any(e["up"] for e in s["edges"])}
        if set(mounts) <= up:
            return
        time.sleep(0.3)
    raise RuntimeError(f"edges not up for {mounts}: {server.streams()}")


def run_feed(feed: str, clips: dict[str, Path], viewers: list[int], window: float,
             tmp: Path) -> list[dict[str, Any]]:
    janus = Janus(tmp / f"janus-{feed}").start()
    server = start_server([clips["main"]], tmp, ["--janus", janus.url, "--janus-feed", feed])
    rows = []
    try:
        wait_up(server, ["main"])
        time.sleep(2)
        url = f"janus://127.0.0.1:{janus.port}/main"
        rows.append({"feed": feed, "n": 0, **measure(server, janus, window, url)})
        print(f"{feed:>4}   0 viewers: {fmt(rows[-1])}", flush=True)
        for n in viewers:
            cons = consumers(url, n)
            try:
                wait_frames(cons)
                time.sleep(1)
                rows.append({"feed": feed, "n": n, **measure(server, janus, window, url)})
                print(f"{feed:>4} {n:>3} viewers: {fmt(rows[-1])}", flush=True)
            finally:
                cons.stop()
    finally:
        stop_server(server)
        janus.stop()
    return rows


def transcoded(clips: dict[str, Path], window: float, tmp: Path) -> list[dict[str, Any]]:
    """High + B-frames (feed auto → rtp, transcoded once by framecast): 0 and 1 viewer."""
    janus = Janus(tmp / "janus-high").start()
    server = start_server([clips["high"]], tmp, ["--janus", janus.url])
    rows = []
    try:
        wait_up(server, ["high"])
        time.sleep(2)
        url = f"janus://127.0.0.1:{janus.port}/high"
        rows.append({"feed": "rtp, High→transcoded", "n": 0,
                     **measure(server, janus, window, url)})
        print(f"High transcoded, 0 viewers: {fmt(rows[-1])}", flush=True)
        cons = consumers(url, 10)
        try:
            wait_frames(cons)
            rows.append({"feed": "rtp, High→transcoded", "n": 10,
                         **measure(server, janus, window, url)})
            print(f"High transcoded, 10 viewers: {fmt(rows[-1])}", flush=True)
        finally:
            cons.stop()
    finally:
        stop_server(server)
        janus.stop()
    return rows


def direct(clips: dict[str, Path], window: float, tmp: Path) -> list[dict[str, Any]]:
    """Reference: the same reader straight from framecast (WHEP and RTSP), no Janus."""
    server = start_server([clips["main"]], tmp)
    rows = []
    try:
        for name, url in (("direct WHEP", f"webrtc://127.0.0.1:{server.http_port}/main"),
                          ("direct RTSP", f"rtsp://127.0.0.1:{server.rtsp_port}/main")):
            lat = latencies(url, window)
            rows.append({"feed": name, "p50": pct(lat, 0.5), "p95": pct(lat, 0.95),
                         "n_lat": len(lat)})
            print(f"{name}: latency p50 {rows[-1]['p50']:.1f} p95 {rows[-1]['p95']:.1f} ms "
                  f"({len(lat)} frames)", flush=True)
    finally:
        stop_server(server)
    return rows


def fmt(r: dict[str, Any]) -> str:
    return (f"framecast {r['framecast']:5.1f} %  janus {r['janus']:5.1f} %  latency p50 "
            f"{r['p50']:6.1f} p95 {r['p95']:6.1f} ms ({r['n_lat']} frames)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=8.0)
    ap.add_argument("--viewers", default="1,10,50")
    ap.add_argument("--feeds", default="rtsp,rtp")
    args = ap.parse_args()
    if not in_private_netns():
        os.execv(str(ROOT / "tools" / "netns-run"),
                 [str(ROOT / "tools" / "netns-run"), sys.executable, *sys.argv])
    from framecast.gst.clips import make_clip

    viewers = [int(v) for v in args.viewers.split(",")]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clips = {"main": make_clip(tmp / "main.mp4", frames=90, width=640, height=360,
                                   profile="main", bframes=0),
                 "high": make_clip(tmp / "high.mp4", frames=90, width=640, height=360,
                                   profile="high", bframes=2)}
        print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
        ref = direct(clips, args.window, tmp)
        rows = []
        for feed in args.feeds.split(","):
            rows += run_feed(feed, clips, viewers, args.window, tmp)
        rows += transcoded(clips, args.window, tmp)
        print(f"load average at end: {os.getloadavg()[0]:.1f}\n")
    print("| feed | viewers | framecast CPU % | Janus CPU % | Janus % per viewer | "
          "latency p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|")
    base = {r["feed"]: r["janus"] for r in rows if r["n"] == 0}
    for r in rows:
        per = ((r["janus"] - base.get(r["feed"], 0.0)) / r["n"]) if r["n"] else float("nan")
        print(f"| {r['feed']} | {r['n']} | {r['framecast']:.1f} | {r['janus']:.1f} | "
              f"{per:.2f} | {r['p50']:.1f} | {r['p95']:.1f} |")
    for r in ref:
        print(f"| {r['feed']} (reference) | 1 | – | – | – | {r['p50']:.1f} | {r['p95']:.1f} |")
    ratios = []
    for feed in ("rtsp", "rtp"):
        one = [r for r in rows if r["feed"] == feed and r["n"] == 1]
        if one and ref:
            ratios.append(f"{feed}: p50 {one[0]['p50'] / ref[0]['p50']:.2f}× direct WHEP")
    flat = {}
    for feed in ("rtsp", "rtp"):
        fr = [r["framecast"] for r in rows if r["feed"] == feed]
        if fr:
            flat[feed] = f"{min(fr):.1f}–{max(fr):.1f} %"
    print("\nlatency through Janus vs direct:", "; ".join(ratios))
    print("framecast CPU over 0..N viewers (flat = the edge carries the fan-out):", flat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
