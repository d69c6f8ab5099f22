"""Helpers for the reliability tests: framecast servers in subprocesses (so they can be
SIGKILLed, SIGSTOPped, SIGTERMed) with their log captured, and a few client checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from rtsp_helpers import RtspsrcClient, wait_until  # noqa: E402

__all__ = ["RtspsrcClient", "Serve", "describe_status", "healthy_plays", "monotonic_steps",
           "wait_until"]


class Serve:
    """``framecast serve ARGS`` in a subprocess on a fixed port; stderr goes to ``log``."""

    def __init__(self, args: list[str], port: int, log: Path) -> None:
        self.args = args
        self.port = port
        self.log_path = log
        self.proc: subprocess.Popen[str] | None = None
        self.urls: list[str] = []

    def start(self, expect_urls: int = 1, timeout: float = 30.0) -> Serve:
        cmd = [sys.executable, "-m", "framecast", "serve", *self.args,
               "--rtsp-port", str(self.port), "--no-http"]
        env = dict(os.environ, GST_DEBUG=os.environ.get("GST_DEBUG", "1"))
        with open(self.log_path, "a") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                         env=env)
        assert self.proc.stdout is not None
        self.urls = []
        end = time.monotonic() + timeout
        while len(self.urls) < expect_urls and time.monotonic() < end:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith(("rtsp://", "rtsps://")):
                self.urls.append(line.strip())
        assert len(self.urls) >= expect_urls, f"server did not start: {self.log()[-800:]}"
        # the URLs are printed right before "ready": wait for the port to be served
        assert wait_until(lambda: "ready" in self.log(), 10), self.log()[-800:]
        return self

    def url(self, mount: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{mount}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def lines(self, needle: str) -> list[str]:
        return [ln for ln in self.log().splitlines() if needle in ln]

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM (SIGCONT first, in case it is stopped), then SIGKILL after 10 s."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


def describe_status(url: str, timeout: float = 10.0) -> int:
    """The status code of a DESCRIBE for ``url`` (raw RTSP over TCP; 0 if no answer)."""
    import socket
    from urllib.parse import urlparse

    u = urlparse(url)
    with socket.create_connection((u.hostname, u.port or 554), timeout=timeout) as s:
        s.sendall(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
                  .encode())
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            return 0
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def healthy_plays(url: str, seconds: float = 2.0, min_fps: float = 20.0) -> RtspsrcClient:
    """A fresh rtspsrc client on ``url`` gets frames at ``min_fps`` or more, no error."""
    c = RtspsrcClient(url).run_for(seconds + 1.0)
    c.stop()
    assert not c.errors, c.errors
    assert len(c.video) >= min_fps * seconds, f"{url}: {len(c.video)} frames"
    return c


def monotonic_steps(pts: list[int]) -> list[float]:
    """Steps (s) between consecutive decode-order PTS of a stream without B-frames."""
    return [(b - a) / 1e9 for a, b in zip(pts, pts[1:], strict=False)]
