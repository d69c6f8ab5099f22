"""WebRTC: glass-to-glass latency and server CPU per viewer, with real Chromium viewers.

Latency: for each presented frame, the moment Chromium expects it on screen (rVFC
``expectedDisplayTime`` on the ``Date.now()`` clock) minus the frame's SEI ``wallclock_ns``
(stamped when the frame left the server; server and browser share the clock here). Goal on
loopback: p50 <= 80 ms, p95 <= 150 ms.

CPU: utime+stime of the ``framecast serve`` process from /proc/<pid>/stat over a fixed window,
as % of one core. Producers are lazy (running only from the first viewer until 5 s after the
last), so there are two 0-viewer figures: *idle* (producer stopped: what a server nobody watches
costs) and the *reference* (producer running, no viewer: measured inside the 5 s grace after the
1-viewer step, i.e. what every mount cost before producers were lazy). Per-viewer cost =
(cpu_N - reference)/N and the ratio cpu_N / reference, as before.
All viewer tabs keep rendering (background throttling off), so every one of them presents frames.

Time to first frame: ``performance.now()`` of the first presented frame in a fresh tab (page
load, signalling, ICE/DTLS, first keyframe), for the first viewer of a stopped producer (cold)
and for a second viewer joining a running one (warm), interleaved over rounds.

Audio (``--audio-only`` runs just this part): server CPU for the same 640x360 picture without
audio (the reference), with AAC (transcoded to Opus once per mount) and with Opus (passed
through), each for 1 and ``--audio-viewers`` WHEP peers in one page that play the sound; the
AAC→Opus cost per mount = CPU(AAC, 1) - CPU(no audio, 1), per audio viewer = the extra slope.
A/V offset: a flash-and-beep clip (1 s loop) played for ``--lipsync`` s, beep minus flash as
Chromium presents them (tests/browser/browser_audio.py), p50/p95 over all flashes and in the
first 6 s / after 20 loops.

Runs itself inside tools/netns-run (WebRTC needs the private namespace). Usage:
    .venv/bin/python bench/webrtc_bench.py [--window 8] [--viewers 1,5,20] [--audio-only]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "browser")]

from browser_audio import CLOSE_PEERS_JS, WHEP_AUDIO_JS, measure, offsets  # noqa: E402
from browser_helpers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    Server,
    in_private_netns,
    start_server,
    stop_server,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Tabs other than the front one would otherwise stop rendering (no rVFC, no presented frames).
NO_THROTTLING = ["--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
                 "--disable-background-timer-throttling"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (all threads)


def measure_cpu(server: Server, window: float) -> float:
    """Server CPU over ``window`` seconds, in % of one core."""
    c0, t0 = cpu_seconds(server.pid), time.monotonic()
    time.sleep(window)
    return 100 * (cpu_seconds(server.pid) - c0) / (time.monotonic() - t0)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def frames_decoded(page) -> int:
    return int(page.evaluate(
        "window.framecast.pc.getStats().then(r => { let n = 0; r.forEach(s => {"
        " if (s.type === 'inbound-rtp' && s.kind === 'video') n = s.framesDecoded; });"
        " return n; })"))


def producer_running(server: Server) -> bool:
    return bool(server.streams()[0].get("producer_running"))


def wait_producer(server: Server, running: bool, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while producer_running(server) != running:
        assert time.monotonic() < deadline, f"producer_running never became {running}"
        time.sleep(0.2)


def first_frame_ms(page, url: str) -> float:
    page.goto(url)
    page.wait_for_function("window.framecast.presented.length >= 1", timeout=60000)
    return float(page.evaluate("window.framecast.presented[0].t"))


def ttff(browser, server: Server, rounds: int) -> tuple[list[float], list[float]]:
    """(cold, warm) time to first presented frame in ms, ``rounds`` of each, interleaved."""
    url = f"{server.base}/?stream={server.mounts[0]}"
    cold: list[float] = []
    warm: list[float] = []
    context = browser.new_context()
    try:
        context.new_page().goto(f"{server.base}/")  # page assets cached for every round
        for _ in range(rounds):
            wait_producer(server, False)
            a, b = context.new_page(), context.new_page()
            cold.append(first_frame_ms(a, url))
            warm.append(first_frame_ms(b, url))
            a.close()
            b.close()
            server.wait_webrtcbins(0)
    finally:
        context.close()
    return cold, warm


def rng(values: list[float]) -> str:
    return f"{min(values):.0f}–{max(values):.0f}" if values else "–"


def run_viewers(browser, server: Server, n: int, window: float) -> dict[str, float]:
    mount = server.mounts[0]
    context = browser.new_context()
    try:
        pages = []
        for _ in range(n):
            page = context.new_page()
            page.goto(f"{server.base}/?stream={mount}")
            pages.append(page)
        for page in pages:
            page.wait_for_function("window.framecast.presented.length >= 30", timeout=90000)
        got = server.wait_webrtcbins(n)
        assert got == n, f"server holds {got} webrtcbins for {n} viewers"
        time.sleep(1.0)  # let jitter buffers settle before measuring
        t0 = [p.evaluate("performance.now()") for p in pages]
        d0 = [frames_decoded(p) for p in pages]
        cpu = measure_cpu(server, window)
        decoded = sum(frames_decoded(p) - d for p, d in zip(pages, d0, strict=True))
        lat: list[float] = []
        first: list[float] = []
        frames = matched = late = 0
        for i, (page, t) in enumerate(zip(pages, t0, strict=True)):
            rec = page.evaluate("t => window.framecast.presented.filter(p => p.t >= t)", t)
            frames += len(rec)
            matched += sum(r["matched"] for r in rec)
            late += sum(bool(r.get("late")) for r in rec)
            vals = [r["latencyMs"] for r in rec if r["latencyMs"] is not None]
            lat += vals
            if i == 0:
                first = vals
        return {
            "viewers": n, "cpu": cpu, "fps": frames / n / window,
            "decoded_fps": decoded / n / window,
            "coverage": matched / max(1, frames), "late": late / max(1, frames),
            "p50": pct(lat, 0.5), "p95": pct(lat, 0.95),
            "p50_first": pct(first, 0.5), "p95_first": pct(first, 0.95),
        }
    finally:
        context.close()
        server.wait_webrtcbins(0)


def audio_cpu(browser, server: Server, mount: str, n: int, window: float) -> float:
    """Server CPU with ``n`` WHEP peers on ``mount`` playing its sound (and video)."""
    page = browser.new_page()
    try:
        page.goto(server.base + "/")
        got = page.evaluate(WHEP_AUDIO_JS, [mount, n])
        assert all(g["status"] == 201 for g in got), got
        time.sleep(1.0)
        return measure_cpu(server, window)
    finally:
        page.evaluate(CLOSE_PEERS_JS)
        page.close()
        server.wait_webrtcbins(0)
        wait_producer(server, False)


def audio_bench(browser, tmp: Path, window: float, viewers: int, lipsync_s: float,
                lipsync_runs: int) -> None:
    from framecast.gst.clips import make_clip

    clips = [make_clip(tmp / f"{a or 'none'}.mp4", codec="h264", frames=150, fps=30,
                       width=640, height=360, profile="main", gop=30, audio=a)
             for a in (None, "aac", "opus")]
    lip = make_clip(tmp / "lipsync.mp4", frames=30, fps=30, width=320, height=240,
                    profile="main", audio="aac", flash_every=30)
    server = start_server([*clips, lip], tmp)
    try:
        cpu: dict[tuple[str, int], float] = {}
        for mount in ("none", "aac", "opus"):
            for n in (1, viewers):
                cpu[mount, n] = audio_cpu(browser, server, mount, n, window)
                print(f"audio {mount:>4}, {n:>2} viewers: CPU {cpu[mount, n]:5.1f} %",
                      flush=True)
        runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        for _ in range(lipsync_runs):
            for align in (False, True):  # interleaved: both see the same machine load
                page = browser.new_page()
                page.goto(server.base + "/")
                runs[align].append(measure(page, "lipsync", lipsync_s, align=align))
                page.close()
    finally:
        stop_server(server)
    slope = {m: (cpu[m, viewers] - cpu[m, 1]) / (viewers - 1) for m in ("none", "aac", "opus")}
    print(f"\n| mount audio | CPU 1 viewer % | × no audio | CPU {viewers} viewers % "
          "| per viewer % | audio cost per mount % | audio cost per viewer % |")
    print("|---|---|---|---|---|---|---|")
    for m in ("none", "aac", "opus"):
        label = {"none": "none (reference)", "aac": "AAC → Opus once",
                 "opus": "Opus passthrough"}[m]
        print(f"| {label} | {cpu[m, 1]:.1f} | {cpu[m, 1] / cpu['none', 1]:.2f} "
              f"| {cpu[m, viewers]:.1f} | {slope[m]:.2f} | {cpu[m, 1] - cpu['none', 1]:+.1f} "
              f"| {slope[m] - slope['none']:+.2f} |")
    # the reference is a plain WHEP peer; the viewer aligns a peer with audio (alignAudio)
    for align in (False, True):
        label = "the viewer (video target 90 ms)" if align else "plain WHEP peer (reference)"
        every, start, first, late = [], [], [], []
        for got in runs[align]:
            offs = offsets(got)
            every += [o for _t, o in offs]
            start += [o for t, o in offs if t < 6]
            first += [o for _t, o in offs[:1]]
            late.append(pct([o for t, o in offs if t >= 21], 0.5))
            print(f"  {label}: {[(round(t), round(o)) for t, o in offs]}; Chromium stats "
                  f"{got.get('stats')}", flush=True)
        print(f"\nA/V offset (beep - flash, > 0: audio late), {label}, {len(runs[align])} runs, "
              f"{len(every)} flashes over {lipsync_s:.0f} s each: p50 {pct(every, 0.5):.0f} ms, "
              f"p95 {pct(every, 0.95):.0f} ms, p95 of |offset| "
              f"{pct([abs(o) for o in every], 0.95):.0f} ms, max |offset| "
              f"{max(map(abs, every), default=0):.0f} ms; first flash "
              f"{[round(o) for o in first]}; first 6 s p50 {pct(start, 0.5):.0f} ms; after 20 "
              f"loops p50 per run {[round(o) for o in late]}; load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=8.0, help="seconds measured per step")
    ap.add_argument("--viewers", default="1,5,20", help="viewer counts, comma-separated")
    ap.add_argument("--rounds", type=int, default=3, help="cold/warm time-to-first-frame rounds")
    ap.add_argument("--audio-only", action="store_true", help="only the audio part")
    ap.add_argument("--audio-viewers", type=int, default=5, help="viewers in the audio part")
    ap.add_argument("--lipsync", type=float, default=30.0, help="seconds of lip-sync measure")
    ap.add_argument("--lipsync-runs", type=int, default=3,
                    help="lip-sync runs, each of a plain WHEP peer and of the viewer's")
    args = ap.parse_args()

    if not in_private_netns():
        os.execv(str(ROOT / "tools" / "netns-run"),
                 [str(ROOT / "tools" / "netns-run"), sys.executable, *sys.argv])

    from playwright.sync_api import sync_playwright

    from framecast.gst.clips import make_clip

    if args.audio_only:
        with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            audio_bench(browser, Path(tmp), args.window, args.audio_viewers, args.lipsync,
                        args.lipsync_runs)
            browser.close()
        return 0
    counts = [int(x) for x in args.viewers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "bench.mp4", codec="h264", frames=150, fps=30, width=640,
                         height=360, profile="main", bframes=0, gop=30)
        server = start_server([clip], Path(tmp))
        grace = 3.5  # of the server's 5 s idle stop: the warm 0-viewer reference window
        try:
            time.sleep(2.0)
            idle = measure_cpu(server, args.window)
            print(f"idle: server CPU with 0 viewers, producer stopped {idle:.1f} % of a core "
                  f"(640x360 30 fps, window {args.window:.0f} s)", flush=True)
            rows = []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM,
                                            args=[*CHROMIUM_ARGS, *NO_THROTTLING])
                cold, warm = ttff(browser, server, args.rounds)
                print(f"time to first frame: cold producer {rng(cold)} ms, warm {rng(warm)} ms "
                      f"(cold {cold}, warm {warm})", flush=True)
                ref = -1.0
                for n in counts:
                    rows.append(run_viewers(browser, server, n, args.window))
                    if ref < 0:  # right after the first step's viewers left: still running
                        assert producer_running(server)
                        ref = measure_cpu(server, grace)
                        print(f"reference: 0 viewers, producer running (grace) {ref:.1f} %",
                              flush=True)
                        wait_producer(server, False)
                    r = rows[-1]
                    print(f"{n:>3} viewers: CPU {r['cpu']:5.1f} %  latency p50 {r['p50']:5.1f} "
                          f"p95 {r['p95']:5.1f} ms (viewer 1: {r['p50_first']:.1f}/"
                          f"{r['p95_first']:.1f})  presented/s {r['fps']:4.1f}  "
                          f"decoded/s {r['decoded_fps']:4.1f}  "
                          f"metadata {r['coverage']:.1%} (+{r['late']:.1%} late)", flush=True)
                browser.close()
        finally:
            stop_server(server)

        # The same picture in High profile: Chromium cannot take it, so the mount is
        # transcoded once for WebRTC (SEI carried across); one viewer, latency and CPU.
        high = make_clip(Path(tmp) / "high.mp4", codec="h264", frames=150, fps=30, width=640,
                         height=360, profile="high", bframes=0, gop=30)
        server = start_server([high], Path(tmp))
        try:
            time.sleep(2.0)
            idle_t = measure_cpu(server, args.window)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                cold_t, warm_t = ttff(browser, server, args.rounds)
                tr = run_viewers(browser, server, 1, args.window)
                ref_t = measure_cpu(server, grace)
                browser.close()
            transcoded = server.streams()[0].get("transcoded_for_webrtc")
        finally:
            stop_server(server)
        print(f"High-profile mount (transcoded_for_webrtc={transcoded}): CPU idle {idle_t:.1f} % "
              f"(producer stopped), {ref_t:.1f} % with 0 viewers and the producer running, "
              f"{tr['cpu']:.1f} % with 1; latency p50 {tr['p50']:.1f} p95 {tr['p95']:.1f} ms; "
              f"metadata {tr['coverage']:.1%}; time to first frame cold {rng(cold_t)} ms, "
              f"warm {rng(warm_t)} ms", flush=True)

    print("\n| viewers | server CPU % | × 0 viewers | per viewer % | p50 ms | p95 ms |"
          " decoded/s | presented/s | metadata at presentation | + late |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    idle_ratio = idle / ref if ref > 0 else float("nan")
    print(f"| 0, producer stopped (idle) | {idle:.1f} | {idle_ratio:.2f} | – | – | – | – | – "
          "| – | – |")
    print(f"| 0, producer running (reference) | {ref:.1f} | 1.00 | – | – | – | – | – | – | – |")
    for r in rows:
        per = (r["cpu"] - ref) / r["viewers"]
        ratio = r["cpu"] / ref if ref > 0 else float("nan")
        print(f"| {r['viewers']} | {r['cpu']:.1f} | {ratio:.2f} | {per:.2f} | {r['p50']:.0f} "
              f"| {r['p95']:.0f} | {r['decoded_fps']:.1f} | {r['fps']:.1f} | {r['coverage']:.1%} "
              f"| {r['late']:.1%} |")
    one = rows[0]
    ok = one["p50"] <= 80 and one["p95"] <= 150
    print(f"\nlatency goal (1 viewer, p50 <= 80, p95 <= 150 ms): "
          f"{'met' if ok else 'NOT met'} ({one['p50']:.0f}/{one['p95']:.0f} ms); "
          f"median of the p50s: {statistics.median([r['p50'] for r in rows]):.0f} ms; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        audio_bench(browser, Path(tmp), args.window, args.audio_viewers, args.lipsync,
                    args.lipsync_runs)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
