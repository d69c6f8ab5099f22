"""Helpers for the reliability tests: framecast servers in subprocesses (so they can be
SIGKILLed, SIGSTOPped, SIGTERMed) with their log captured, and a few client checks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from rtsp_helpers import RtspsrcClient, check_pts, ffprobe_packets, wait_until  # noqa: E402

__all__ = ["RawRtspClient", "RtspsrcClient", "Serve", "check_pts", "describe_status",
           "ffprobe_packets", "healthy_plays", "monotonic_steps", "wait_until"]


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
        readies = self.log().count("] ready (Ctrl-C stops)")  # the log is kept across restarts
        with open(self.log_path, "a") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                         env=env)
        assert self.proc.stdout is not None
        self.urls = []
        # read stdout on a thread: a server stuck at start-up fails the test, with its log
        lines: list[str] = []
        out = self.proc.stdout
        threading.Thread(target=lambda: lines.extend(iter(out.readline, "")), daemon=True).start()

        def urls() -> list[str]:
            return [ln.strip() for ln in list(lines) if ln.startswith(("rtsp://", "rtsps://"))]

        wait_until(lambda: len(urls()) >= expect_urls or self.proc.poll() is not None, timeout)
        self.urls = urls()
        assert len(self.urls) >= expect_urls, \
            f"server did not start in {timeout:g} s: {self.log()[-800:]}"
        # the URLs are printed right before "ready": wait for the port to be served
        assert wait_until(lambda: self.log().count("] ready (Ctrl-C stops)") > readies, 10), \
            self.log()[-800:]
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
        return self.proc.returncode  # stdout ends on its own: its reader thread sees EOF


def describe_status(url: str, timeout: float = 10.0) -> int:
    """The status code of a DESCRIBE for ``url`` (raw RTSP over TCP; 0 if no answer)."""
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


def healthy_plays(url: str, seconds: float = 1.5, min_fps: float = 20.0) -> RtspsrcClient:
    """A fresh rtspsrc client on ``url`` gets frames at ``min_fps`` or more, no error.

    The rate is measured from its first frame, which may take a few seconds on a busy box
    (a media built afresh probes its file again first)."""
    c = RtspsrcClient(url).start()
    wait_until(lambda: c.first_frame_at is not None or bool(c.poll_errors()), 10)
    end = time.monotonic() + seconds + 0.5
    while time.monotonic() < end and not c.poll_errors():
        time.sleep(0.05)
    c.stop()
    assert not c.errors, c.errors
    assert len(c.video) >= min_fps * seconds, f"{url}: {len(c.video)} frames"
    return c


def monotonic_steps(pts: list[int]) -> list[float]:
    """Steps (s) between consecutive decode-order PTS of a stream without B-frames."""
    return [(b - a) / 1e9 for a, b in zip(pts, pts[1:], strict=False)]


class RawRtspClient:
    """A minimal RTSP client: DESCRIBE, SETUP (TCP interleaved) and PLAY of the first stream,
    then a thread that reads (counting the bytes of RTP frames) until the server closes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received = 0
        self.closed = False
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def _request(self, f: Any, method: str, url: str, cseq: int, extra: str = "") -> str:
        assert self._sock is not None
        self._sock.sendall(f"{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n".encode())
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            ch = f.read(1)
            if not ch:
                raise ConnectionError(f"{method}: connection closed")
            head += ch
        text = head.decode(errors="replace")
        length = 0
        for line in text.split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        body = f.read(length).decode(errors="replace") if length else ""
        if " 200 " not in text.split("\r\n", 1)[0]:
            raise ConnectionError(f"{method}: {text.splitlines()[0]}")
        return text + body

    def start(self, timeout: float = 10.0) -> RawRtspClient:
        u = urlparse(self.url)
        self._sock = socket.create_connection((u.hostname, u.port or 554), timeout=timeout)
        f = self._sock.makefile("rb")
        sdp = self._request(f, "DESCRIBE", self.url, 1, "Accept: application/sdp\r\n")
        control = next((ln.split(":", 1)[1].strip() for ln in sdp.splitlines()
                        if ln.startswith("a=control:") and "stream" in ln), "stream=0")
        track = control if "://" in control else f"{self.url.rstrip('/')}/{control}"
        reply = self._request(f, "SETUP", track, 2,
                              "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
        session = next(ln.split(":", 1)[1].split(";")[0].strip() for ln in reply.splitlines()
                       if ln.lower().startswith("session:"))
        self._request(f, "PLAY", self.url, 3, f"Session: {session}\r\nRange: npt=0-\r\n")
        self._sock.settimeout(30)
        self._thread = threading.Thread(target=self._read, args=(f,), daemon=True)
        self._thread.start()
        return self

    def _read(self, f: Any) -> None:
        try:
            while True:
                chunk = f.read1(65536)
                if not chunk:
                    break
                self.received += len(chunk)
        except OSError:
            pass
        self.closed = True

    def stop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
