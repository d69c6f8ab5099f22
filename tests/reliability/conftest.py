"""Reliability tests: hostile, slow and surplus RTSP clients against a real server."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent / "integration"):  # raw_rtsp, rtsp_helpers
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
