"""Metadata injection cost: 1080p passthrough with vs without framecastinject; app-push 1080p30.

    .venv/bin/python bench/inject_bench.py [--quick] [--push-only]

1. Passthrough: ``filesrc ! qtdemux ! h264parse ! [framecastinject] ! fakesink sync=false`` on
   a 1080p H.264 clip (x264 veryfast, B-frames), run REPS times each way (interleaved). Prints
   frames/s both ways, their ratio, the added cost per frame (wall and CPU µs) and the share
   of one core that costs a 30 fps stream. (A Python element costs ~65 µs per buffer just to
   be called, so the ratio to a pipeline with no Python in it cannot reach 0.9: judge by the
   per-frame cost — see shared notes.)
2. App push: ``Publisher``'s own pipeline (appsrc ! videoconvert ! I420 ! x264enc zerolatency
   ultrafast constrained-baseline ! h264parse ! framecastinject ! rtph264pay) into a fakesink,
   1080p numpy frames pushed at 30 fps for SECONDS: frames out per second, whether it kept
   up, and the pushing thread's CPU per frame in ``push()`` (numpy → buffer, put, push).
   Variants, interleaved PUSH_REPS times: the old push() (GI buffer + numpy copy + emit,
   kept here as the reference), push() RGB with the default copy and with copy=False, and
   the same for I420 input. ``--push-only`` skips part 1.
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

from framecast.gst.runtime import Gst, init_gst  # noqa: E402

QUICK = "--quick" in sys.argv
W, H, FPS = 1920, 1080, 30
FRAMES = 60 if QUICK else 150
REPS = 3 if QUICK else 6
SECONDS = 3 if QUICK else 8
PUSH_REPS = 1 if QUICK else 3


def clip_path() -> Path:
    from framecast.gst.clips import cache_dir, make_clip

    path = cache_dir() / f"bench-1080p-{FRAMES}.mp4"
    if not path.exists():
        tmp = path.with_suffix(".part.mp4")
        make_clip(tmp, frames=FRAMES, fps=FPS, width=W, height=H, bframes=2, gop=30)
        tmp.replace(path)
    return path


def run_passthrough(clip: Path, inject: bool) -> tuple[float, float, int]:
    """(wall s, process CPU s, frames) for one pass over the clip."""
    from framecast.gst.inject import register
    from framecast.gst.probe import probe_file

    register()
    mid = "framecastinject name=inj ! " if inject else ""
    p = Gst.parse_launch(f'filesrc location="{clip}" ! qtdemux ! h264parse ! {mid}'
                         "fakesink sync=false")
    if inject:
        info = probe_file(clip)
        p.get_by_name("inj").configure(video_pts=info.video_pts, period_ns=info.period_ns,
                                       table={i: {"index": i, "boxes": [[1, 2, 3, 4]]}
                                              for i in range(info.frames)})
    p.set_state(Gst.State.PAUSED)
    p.get_state(10 * Gst.SECOND)  # preroll outside the timing
    c0, t0 = time.process_time(), time.perf_counter()
    p.set_state(Gst.State.PLAYING)
    msg = p.get_bus().timed_pop_filtered(120 * Gst.SECOND,
                                         Gst.MessageType.EOS | Gst.MessageType.ERROR)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    p.set_state(Gst.State.NULL)
    assert msg is not None and msg.type == Gst.MessageType.EOS, "pipeline failed"
    return wall, cpu, FRAMES


def passthrough() -> dict[str, float]:
    clip = clip_path()
    run_passthrough(clip, False)  # warm caches
    plain, inj = [], []
    for _ in range(REPS):
        plain.append(run_passthrough(clip, False))
        inj.append(run_passthrough(clip, True))
    # the prerolled first buffer is outside the timing: FRAMES - 1 timed per run
    n = FRAMES - 1
    fps_plain = n / statistics.median(w for w, _, _ in plain)
    fps_inj = n / statistics.median(w for w, _, _ in inj)
    wall_us = (statistics.median(w for w, _, _ in inj)
               - statistics.median(w for w, _, _ in plain)) / n * 1e6
    cpu_us = (statistics.median(c for _, c, _ in inj)
              - statistics.median(c for _, c, _ in plain)) / n * 1e6
    return {"fps_plain": fps_plain, "fps_inject": fps_inj, "ratio": fps_inj / fps_plain,
            "wall_us": wall_us, "cpu_us": cpu_us, "core_share_30fps": cpu_us * 30 / 1e6}


class _Capture:
    """Stands in for a Server: keeps the Publisher's bin factory."""

    factory: Any = None

    def add_mount(self, name: str, factory: Any, shared: bool = True) -> None:
        self.factory = factory

    def remove_mount(self, name: str) -> None:
        pass

    def rtsp_url(self, mount: str) -> str:
        return f"rtsp://bench/{mount}"


def old_push(pub: Any, frame: Any, metadata: Any) -> bool:
    """The reference: push() as it was before zero-copy (GI buffer, map, numpy copy, emit)."""
    import numpy as np

    src, inj = pub._live[0], pub._live[1]
    pts = src.get_current_running_time()
    buf = Gst.Buffer.new_allocate(None, frame.nbytes, None)
    with buf.map(Gst.MapFlags.WRITE) as info:
        np.copyto(np.frombuffer(info.data, dtype=np.uint8).reshape(frame.shape), frame)
    buf.pts = pts
    buf.duration = Gst.SECOND // pub.fps
    if metadata:
        inj.put(pts, metadata)
    return src.emit("push-buffer", buf) == Gst.FlowReturn.OK


def to_i420(rgb: Any) -> Any:
    """BT.601 limited-range I420, laid out as OpenCV's COLOR_RGB2YUV_I420 (H*3/2 x W)."""
    import numpy as np

    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    h, w = y.shape
    u = u.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    v = v.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    planes = [y.ravel(), u.ravel(), v.ravel()]
    return np.clip(np.concatenate(planes), 0, 255).round().astype(np.uint8).reshape(h * 3 // 2, w)


# (label, pixel format, how to push); "old" is the reference measured in the same run
VARIANTS = [
    ("old push() (reference)", "RGB", "old"),
    ("push() RGB, copy (default)", "RGB", "copy"),
    ("push() RGB, copy=False", "RGB", "zero"),
    ("push() I420, copy (default)", "I420", "copy"),
    ("push() I420, copy=False", "I420", "zero"),
]


def app_push(pixel_format: str, how: str, pics: list[Any]) -> dict[str, float]:
    from framecast.publisher import Publisher

    cap = _Capture()
    pub = Publisher("bench", W, H, FPS, server=cap, pixel_format=pixel_format)
    pipeline = Gst.Pipeline.new("app-bench")
    b = cap.factory()
    pipeline.add(b)
    b.add_pad(Gst.GhostPad.new("src", b.get_by_name("pay0").get_static_pad("src")))
    sink = Gst.ElementFactory.make("fakesink")
    sink.set_property("sync", False)
    pipeline.add(sink)
    b.link(sink)
    out = {"packets": 0}
    lock = threading.Lock()

    def count(_pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        with lock:
            out["packets"] += 1
        return Gst.PadProbeReturn.OK

    sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count)
    pipeline.set_state(Gst.State.PLAYING)
    pipeline.get_state(10 * Gst.SECOND)
    if how == "old":
        def push(frame: Any, md: Any) -> bool:
            return old_push(pub, frame, md)
    else:
        def push(frame: Any, md: Any) -> bool:
            return pub.push(frame, md, copy=how == "copy")
    total = SECONDS * FPS
    push_s: list[float] = []
    push_cpu: list[float] = []  # CPU of the pushing thread: wall also counts waiting for a core
    cpu0, t0 = time.process_time(), time.perf_counter()
    next_t = t0
    late = failed = 0
    for i in range(total):
        s, sc = time.perf_counter(), time.thread_time()
        ok = push(pics[i % len(pics)], {"i": i, "boxes": [[10, 20, 30, 40]]})
        push_s.append(time.perf_counter() - s)
        push_cpu.append(time.thread_time() - sc)
        failed += not ok
        next_t += 1 / FPS
        delay = next_t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            late += 1
    pushed_in = time.perf_counter() - t0
    inj = b.get_by_name("inject-bench")
    encoded_in_time = inj.buffers  # encoded + stamped while pushing: kept up with real time?
    cpu_pushing = time.process_time() - cpu0
    time.sleep(1.0)  # let the encoder drain
    held = pub.in_flight
    pipeline.set_state(Gst.State.NULL)
    return {"pushed": total, "out": encoded_in_time, "push_seconds": pushed_in,
            "fps_out": encoded_in_time / pushed_in,
            "push_ms_median": statistics.median(push_s) * 1e3,
            "push_cpu_ms_median": statistics.median(push_cpu) * 1e3,
            "push_ms_p95": sorted(push_s)[int(0.95 * len(push_s))] * 1e3, "late": late,
            "cpu_cores": cpu_pushing / pushed_in, "dropped": pub.dropped + failed,
            "packets": out["packets"], "injected": inj.buffers, "held_after": held}


def app_push_all() -> dict[str, list[dict[str, float]]]:
    import numpy as np

    from framecast.pixelindex import render_frame

    # a few distinct pictures (drawing 1080p in numpy is not what we measure)
    rgb = [np.ascontiguousarray(render_frame(i, W, H)) for i in range(8)]
    pics = {"RGB": rgb, "I420": [to_i420(p) for p in rgb]}
    res: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in VARIANTS}
    for _ in range(PUSH_REPS):  # interleaved: load from other work hits every variant alike
        for label, fmt, how in VARIANTS:
            res[label].append(app_push(fmt, how, pics[fmt]))
    return res


def main() -> None:
    init_gst()
    if "--push-only" in sys.argv:
        push_report()
        return
    print(f"== passthrough 1080p H.264 (B-frames), {FRAMES} frames x {REPS} runs each")
    r = passthrough()
    print(f"without injection : {r['fps_plain']:8.0f} frames/s")
    print(f"with injection    : {r['fps_inject']:8.0f} frames/s")
    print(f"ratio             : {r['ratio']:8.2f}   (goal >= 0.9 cannot hold for any Python "
          "element; see per-frame cost)")
    print(f"added per frame   : {r['wall_us']:8.0f} µs wall, {r['cpu_us']:.0f} µs CPU")
    print(f"30 fps stream     : {r['core_share_30fps'] * 100:8.2f} % of one core")
    push_report()


def push_report() -> None:
    print(f"== app push 1080p{FPS} numpy -> x264 zerolatency -> SEI, {SECONDS} s x "
          f"{PUSH_REPS} runs per variant, interleaved")
    print(f"   push() CPU = the pushing thread's CPU per frame (goal <= 1 ms); RGB frames are "
          f"{W * H * 3 / 1e6:.1f} MB, I420 {W * H * 1.5 / 1e6:.1f} MB")
    res = app_push_all()
    ref = statistics.median(r["push_cpu_ms_median"] for r in res[VARIANTS[0][0]])
    print(f"{'variant':30} {'push CPU ms':>17} {'x ref':>6} {'wall ms':>13} {'p95 ms':>6} "
          f"{'frames/s out':>12} {'late':>4} {'drop':>4} {'cores':>11} {'held':>4}")
    for label, runs in res.items():
        cpu = [r["push_cpu_ms_median"] for r in runs]
        wall = [r["push_ms_median"] for r in runs]
        cores = [r["cpu_cores"] for r in runs]
        print(f"{label:30} {min(cpu):6.3f}-{max(cpu):.3f} (med {statistics.median(cpu):.3f})"
              f" {statistics.median(cpu) / ref:6.2f} {min(wall):5.2f}-{max(wall):5.2f} "
              f"{statistics.median(r['push_ms_p95'] for r in runs):6.2f} "
              f"{min(r['fps_out'] for r in runs):12.1f} {sum(r['late'] for r in runs):4d} "
              f"{sum(r['dropped'] for r in runs):4d} {min(cores):.2f}-{max(cores):.2f} "
              f"{max(r['held_after'] for r in runs):4d}")
    print("   (frames/s out: the worst run's frames encoded + stamped while pushing, real time "
          f"= {FPS}; cores: whole process incl. x264 while pushing; held: zero-copy frames "
          "still held 1 s after the last push, must be 0)")
    print(f"load average      : {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

if __name__ == "__main__":
    main()
