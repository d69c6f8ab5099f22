"""Helpers for the browser tests: the server process, the viewer page, pixel samples."""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import Browser, Page
from ports import free_port

__all__ = ["free_port"]  # re-exported: browser tests and benches take it from here

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-features=WebRtcHideLocalIpsWithMdns", "--autoplay-policy=no-user-gesture-required",
]
# The server under test; FRAMECAST_SERVE (a command line) points the tests at another build.
SERVE_CMD = shlex.split(os.environ.get("FRAMECAST_SERVE", "")) or [
    str(ROOT / ".venv" / "bin" / "framecast"), "serve"]


# A JS helper to put at the top of a page.evaluate function's body: offer (every ICE candidate
# in it, no trickle) → POST /whep/<mount> → {res, answer}.
WHEP_POST_JS = """
  const whepPost = async (pc, mount) => {
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise(r => {
      if (pc.iceGatheringState === "complete") return r();
      pc.addEventListener("icegatheringstatechange",
                          () => pc.iceGatheringState === "complete" && r());
      setTimeout(r, 3000);
    });
    const res = await fetch("/whep/" + mount, {method: "POST",
      headers: {"Content-Type": "application/sdp"}, body: pc.localDescription.sdp});
    return {res, answer: await res.text()};
  };
"""


def in_private_netns() -> bool:
    # tools/netns-run makes the veth pair v0/v1; /proc/self/net follows our net namespace.
    return any(line.strip().startswith("v0:")
               for line in Path("/proc/self/net/dev").read_text().splitlines())


def http_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as res:
        return json.loads(res.read())


def http_text(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as res:
        return res.read().decode()


def stream_list(body: Any) -> list[dict[str, Any]]:
    """``/api/streams`` as a list of dicts, each with a ``name``."""
    items = body if isinstance(body, list) else body.get("streams", [])
    if isinstance(items, dict):  # {mount: info}
        items = [{"name": k, **v} for k, v in items.items()]
    return [{**x, "name": x.get("name") or x.get("mount")} for x in items]


@dataclass
class Server:
    """A running ``framecast serve`` process."""

    proc: subprocess.Popen[bytes]
    http_port: int
    rtsp_port: int
    log_path: Path
    mounts: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def streams(self) -> list[dict[str, Any]]:
        return stream_list(http_json(f"{self.base}/api/streams"))

    def metrics(self) -> str:
        return http_text(f"{self.base}/metrics")

    def webrtcbins(self) -> int:
        """webrtcbin elements the server holds, summed over mounts (``webrtc.webrtcbins``)."""
        total = 0
        for s in self.streams():
            w = s.get("webrtc") if isinstance(s.get("webrtc"), dict) else {}
            total += int(w.get("webrtcbins", w.get("viewers", s.get("viewers", 0))))
        return total

    def wait_webrtcbins(self, n: int, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while (got := self.webrtcbins()) != n and time.monotonic() < deadline:
            time.sleep(0.25)
        return got

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None


def start_server(files: Sequence[Path | str], log_dir: Path, extra: Sequence[str] = (),
                 timeout: float = 90) -> Server:
    http_port, rtsp_port = free_port(), free_port()
    log_path = log_dir / f"serve-{http_port}.log"
    out = log_path.open("wb")
    proc = subprocess.Popen(
        [*SERVE_CMD, *map(str, files), "--http-port", str(http_port),
         "--rtsp-port", str(rtsp_port), *extra],
        stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "GST_DEBUG": os.environ.get("GST_DEBUG", "1")},
    )
    server = Server(proc, http_port, rtsp_port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"framecast serve exited {proc.returncode}:\n{server.log()}")
        try:
            names = [s["name"] for s in server.streams()]
            if names:
                server.mounts = names
                return server
        except (OSError, ValueError):
            pass
        time.sleep(0.3)
    stop_server(server)
    raise AssertionError(f"framecast serve not ready in {timeout:.0f} s:\n{server.log()}")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(5)


INDEX_FRAMES = 60


# ---------------------------------------------------------------- the viewer page

def open_viewer(browser: Browser, server: Server, mount: str, *, query: str = "",
                frames: int = 20, timeout_ms: int = 30000) -> Page:
    """Open the viewer on ``mount`` and wait until ``frames`` frames were presented."""
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.on("pageerror", lambda e: print(f"pageerror: {e}"))
    page.goto(f"{server.base}/?stream={mount}{'&' + query if query else ''}")
    try:
        page.wait_for_function(f"window.framecast && window.framecast.presented.length >= {frames}",
                               timeout=timeout_ms)
    except Exception:
        state = page.evaluate(
            "window.framecast && {state: window.framecast.state, errors: window.framecast.errors,"
            " received: window.framecast.received, signalling: window.framecast.signalling}")
        page.close()
        raise AssertionError(f"viewer did not play {mount}: {state}\n{server.log()}") from None
    return page


def presented_since(page: Page, t0: float) -> list[dict[str, Any]]:
    return page.evaluate("t0 => window.framecast.presented.filter(p => p.t >= t0)", t0)


def page_now(page: Page) -> float:
    return float(page.evaluate("performance.now()"))


def decode_sample(sample: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(sample["rgb"])
    return np.frombuffer(raw, dtype=np.uint8).reshape(sample["height"], sample["width"], 3)
