"""The public API from Python alone: every public name from ``framecast`` (no GStreamer at
import), and a mount's own metadata providers served end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import framecast
from framecast.gst.clips import make_clip


def test_public_names_import_without_gstreamer() -> None:
    code = ("import sys, framecast\n"
            "names = [n for n in framecast.__all__ if n != 'Publisher']\n"
            "missing = [n for n in names if not hasattr(framecast, n)]\n"
            "print(missing, 'gi' in sys.modules, 'numpy' in sys.modules)\n"
            "framecast.Publisher\n"
            "print('gi' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split("\n")[:2] == ["[] False False", "False"], out.stdout


def test_mount_providers_reach_the_reader(tmp_path: Path) -> None:
    """Two servers, the same mount name, each with its own provider: no shared registry."""
    clip = make_clip(tmp_path / "c.mp4", frames=15)
    seen = []

    def provider(info: object) -> dict[str, object]:
        seen.append(info)
        return {"app": "a", "app_seq": getattr(info, "seq")}  # noqa: B009 - FrameInfo

    settings = framecast.Settings(rtsp_port=0, http=False)
    plain = framecast.Mount("m", file=str(clip))
    with framecast.Server(settings, (plain.with_provider(provider),)) as a, \
            framecast.Server(settings, (plain,)) as b:
        with framecast.open(a.rtsp_url("m"), timeout=20) as frames:
            got_a = [f.metadata[0] for _, f in zip(range(10), frames, strict=False)]
        with framecast.open(b.rtsp_url("m"), timeout=20) as frames:
            got_b = [f.metadata[0] for _, f in zip(range(3), frames, strict=False)]
    assert len(got_a) == 10 and seen
    for md in got_a:
        assert md["app"] == "a" and md["app_seq"] == md["seq"], md  # stamps beside it
    assert all("app" not in md and "seq" in md for md in got_b), got_b
