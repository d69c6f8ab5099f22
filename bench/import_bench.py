"""Start-up cost of the public API: ``import framecast`` and ``framecast --help``.

Each case runs in a fresh interpreter (N times, best and median wall time); the reference is
the bare interpreter started the same way, so "added" is what framecast itself costs. Also
says which heavy modules each case loaded (GStreamer must not be among them).

    .venv/bin/python bench/import_bench.py     # FRAMECAST_SRC=<other>/src: another tree
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

N = 15
SRC = Path(os.environ.get("FRAMECAST_SRC") or Path(__file__).resolve().parent.parent / "src")
HEAVY = ("gi", "numpy", "asyncio", "msgpack", "aiohttp")
CASES = {
    "bare interpreter (reference)": "pass",
    "import framecast": "import framecast",
    "framecast --help": "import sys; sys.argv = ['framecast', '--help']\n"
                        "from framecast.cli import main\ntry:\n    main()\nexcept SystemExit:\n"
                        "    pass",
    "framecast.Publisher (lazy name)": "import framecast; framecast.Publisher",
}


def run(code: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000


def loaded(code: str) -> str:
    probe = (f"{code}\nimport sys\n"
             f"print('HEAVY:', *(m for m in {HEAVY!r} if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, check=True,
                         capture_output=True, text=True).stdout
    return next(ln for ln in out.splitlines() if ln.startswith("HEAVY:"))[6:].strip() or "-"


def main() -> None:
    print(f"{'case':34} {'best ms':>8} {'median':>8} {'added':>7} {'ratio':>6}  heavy modules")
    ref = None
    for name, code in CASES.items():
        times = sorted(run(code) for _ in range(N))
        best, med = times[0], statistics.median(times)
        ref = best if ref is None else ref
        print(f"{name:34} {best:8.1f} {med:8.1f} {best - ref:7.1f} {best / ref:6.2f}  "
              f"{loaded(code)}")


if __name__ == "__main__":
    main()
