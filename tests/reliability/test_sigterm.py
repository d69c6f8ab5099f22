"""SIGTERM with 20 clients playing (raw RTSP over TCP, ffprobe, a relay's clients): the server
exits within 2 s with status 0 and its clients see their connections end."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from ports import free_port
from relay_helpers import RawRtspClient, Serve, healthy_plays, wait_until

from framecast.gst.clips import make_clip

pytestmark = pytest.mark.timeout(90)

RAW, FFPROBE = 16, 4


def test_sigterm_with_20_clients_exits_fast_and_clean(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=60, gop=15, audio="aac")
    camera = Serve([str(clip)], free_port(), tmp_path / "camera.log")
    cfg = tmp_path / "serve.toml"
    cfg.write_text(f'[mounts.clip]\nfile = "{clip}"\n\n'
                   f'[mounts.cam]\nsource = "{camera.url("clip")}"\n')
    server = Serve(["--config", str(cfg)], free_port(), tmp_path / "serve.log")
    raws: list[RawRtspClient] = []
    probes: list[subprocess.Popen[bytes]] = []
    try:
        camera.start()
        server.start(expect_urls=2)
        for i in range(RAW):  # half on the file, half on the relay
            raws.append(RawRtspClient(server.url("clip" if i % 2 else "cam")).start())
        for _ in range(FFPROBE):
            probes.append(subprocess.Popen(
                ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries",
                 "packet=pts_time", "-of", "csv", server.url("clip")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        assert wait_until(lambda: all(r.received > 20_000 for r in raws), 20), \
            [r.received for r in raws]
        assert wait_until(lambda: len(server.lines("connected to /")) >= RAW + FFPROBE, 10)
        assert all(p.poll() is None for p in probes)
        healthy_plays(server.url("clip"))
        assert server.alive

        t0 = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.proc is not None
        rc = server.proc.wait(10)
        took = time.monotonic() - t0
        print(f"SIGTERM with {RAW + FFPROBE + 1} clients: exit {rc} after {took:.2f} s")
        assert rc == 0, server.log()[-1500:]
        assert took < 2.0, took
        # every client sees its connection end (no client is left waiting on a dead server)
        assert wait_until(lambda: all(r.closed for r in raws), 5)
        for p in probes:
            p.wait(10)
        assert "Traceback" not in server.log() and "CRITICAL" not in server.log(), \
            server.log()[-2000:]
    finally:
        for r in raws:
            r.stop()
        for p in probes:
            if p.poll() is None:
                p.kill()
                p.wait()
        server.stop()
        camera.stop()
