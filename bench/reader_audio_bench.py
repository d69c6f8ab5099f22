"""Cost of ``framecast.open(file, audio=True)`` next to the default ``audio=False``.

Reads a 10 s 640x360 H.264 clip with AAC audio (300 frames, 469 AAC frames) from the file,
without decoding video, best and median of N runs each in a fresh interpreter:

- ``audio=False`` of another tree (``REF_SRC``, default /work/main/src): the reference, the
  reader before audio existed (the default path must cost the same);
- ``audio=False`` and ``audio=True`` of this tree (audio decoded to float32 PCM).

    .venv/bin/python bench/reader_audio_bench.py    # REF_SRC=<tree>/src to compare another
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

N = 7
HERE = Path(__file__).resolve().parent.parent / "src"
REF = Path(os.environ.get("REF_SRC", "/work/main/src"))
CLIP = Path("/tmp/framecast-bench/reader-audio.mp4")

READ = """
import sys, time
import framecast
t0 = time.perf_counter()
n = a = 0
kw = {{"audio": True}} if {audio} else {{}}
with framecast.open({clip!r}, **kw) as r:
    for item in r:
        if isinstance(item, framecast.Frame):
            n += 1
        else:
            a += 1
print((time.perf_counter() - t0) * 1000, n, a)
"""


def run(src: Path, audio: bool) -> tuple[float, int, int]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", READ.format(audio=audio, clip=str(CLIP))],
                         env=env, check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def main() -> None:
    if not CLIP.exists():
        sys.path.insert(0, str(HERE))
        from framecast.gst.clips import make_clip

        make_clip(CLIP, frames=300, fps=30, width=640, height=360, audio="aac")
    cases = {"reference: audio=False (REF_SRC)": (REF, False),
             "audio=False (this tree)": (HERE, False),
             "audio=True (this tree)": (HERE, True)}
    rows = {}
    for name, (src, audio) in cases.items():
        runs = [run(src, audio) for _ in range(N)]
        ms = [r[0] for r in runs]
        rows[name] = (min(ms), statistics.median(ms), runs[0][1], runs[0][2])
    ref = rows["reference: audio=False (REF_SRC)"][0]
    print(f"{'case':36} {'best ms':>8} {'median':>8} {'frames':>6} {'chunks':>6} {'vs ref':>7}")
    for name, (best, med, n, a) in rows.items():
        print(f"{name:36} {best:8.1f} {med:8.1f} {n:6d} {a:6d} {best / ref:7.2f}")


if __name__ == "__main__":
    main()
