"""Stopping a server with many mounts just after its clients left: in order and silent.

Before: ``Trying to dispose element udpsrcNN, but it is in PLAYING (locked)`` (UDP sessions
outlive their connection) and ``appsrcNN`` (TCP media unprepared with transports on them),
7-24 such warnings per stop of 40 mounts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCENARIO = Path(__file__).with_name("shutdown_scenario.py")
NOISE = ("Trying to dispose", "CRITICAL", "assertion", "Bail out", "ERROR")


def test_stop_right_after_clients_left_is_silent(tmp_path: Path) -> None:
    env = dict(os.environ, GST_DEBUG="1")
    for _ in range(2):
        out = subprocess.run([sys.executable, str(SCENARIO), str(tmp_path), "30"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        noisy = [line for line in out.stderr.splitlines() if any(n in line for n in NOISE)]
        assert not noisy, "\n".join(noisy[:10])
        assert "stopped in" in out.stderr
