"""The interop matrix: every real RTSP client the set-up installs plays a looped mount across
loop points, over TCP and UDP, H.264 (B-frames + AAC) and H.265 (B-frames).

Each client runs in its own process (tests/integration/interop_clients.py) and reports the
frame index drawn in the pixels of every picture it presented. All twelve clients of a codec
play the same shared mount at once, as a field's mix of players would; each must show the
picture index advancing by exactly one, through at least three loop points.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.server import Server

CLIENTS = ("ffmpeg", "mpv", "rtspsrc", "playbin", "pyav", "opencv")
TRANSPORTS = ("tcp", "udp")
N, GOP, W, H = 20, 10, 320, 240          # 20 frames a loop: 3 loops in 2 s at 30 fps
LOOPS = 3
JOIN = 2 * GOP + 5                       # a client joining mid-GOP starts at a keyframe
COUNT = JOIN + LOOPS * N + 5
RUNNER = Path(__file__).with_name("interop_clients.py")


def play(client: str, url: str, transport: str) -> list[int] | str:
    """The indices a client showed, or why it showed none."""
    try:
        out = subprocess.run([sys.executable, str(RUNNER), client, url, transport, str(COUNT),
                              str(W), str(H)], capture_output=True, text=True, timeout=40)
    except subprocess.TimeoutExpired as exc:
        return f"still running after 40 s: {(exc.stderr or b'')[-300:]!r}"
    if out.returncode != 0:
        return f"exit {out.returncode}: {out.stderr.strip()[-300:]}"
    return json.loads(out.stdout)


def steady_run(indices: list[int]) -> list[int]:
    """The pictures from the first run of 5 consecutive indices on (what a joining client
    shows first may be a picture decoded from a partial GOP); the last 2 are dropped: a
    client stopped mid-GOP may flush its decoder out of order."""
    for start in range(len(indices) - 5):
        window = indices[start:start + 5]
        if all((b - a) % N == 1 for a, b in zip(window, window[1:], strict=False)):
            return indices[start:-2]
    return []


@pytest.fixture(scope="module", params=[("h264", "aac"), ("h265", None)],
                ids=["h264-bframes-aac", "h265-bframes"])
def mount_url(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    codec, audio = request.param
    base = tmp_path_factory.mktemp(f"interop-{codec}")
    clip = make_clip(base / "clip.mp4", codec=codec, frames=N, bframes=2, gop=GOP, audio=audio,
                     width=W, height=H)
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http=False),
                 (Mount(name="clip", file=str(clip)),)).start()
    try:
        yield srv.rtsp_url("clip")
    finally:
        srv.stop()


def test_every_client_plays_across_loop_points(mount_url: str) -> None:
    runs = [(c, t) for c in CLIENTS for t in TRANSPORTS]
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = {run: pool.submit(play, run[0], mount_url, run[1]) for run in runs}
        results = {run: f.result() for run, f in futures.items()}
    failures = []
    for (client, transport), indices in sorted(results.items()):
        if isinstance(indices, str):
            failures.append(f"{client}/{transport}: {indices}")
            continue
        steady = steady_run(indices)
        steps = [(b - a) % N for a, b in zip(steady, steady[1:], strict=False)]
        bad = [i for i, s in enumerate(steps) if s != 1]
        skipped = len(indices) - len(steady) - 2
        if len(steady) < LOOPS * N or bad or skipped > JOIN:
            failures.append(f"{client}/{transport}: {len(indices)} pictures, {skipped} before "
                            f"a steady start, steps != 1 at {bad[:5]}: {indices}")
    assert not failures, "\n".join(failures)


def _request(sock: socket.socket, text: str) -> tuple[int, str]:
    """Send one RTSP request; skip interleaved data until the reply; (status, headers)."""
    sock.sendall(text.encode())
    data = b""
    while True:
        while data.startswith(b"$"):
            if len(data) < 4:
                break
            size = 4 + int.from_bytes(data[2:4], "big")
            if len(data) < size:
                break
            data = data[size:]
        if not data.startswith(b"$") and b"\r\n\r\n" in data:
            head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
            return int(head.split()[1]), head
        chunk = sock.recv(1 << 16)
        assert chunk, "server closed the connection"
        data += chunk


def test_a_client_may_pause_and_resume_a_shared_mount(mount_url: str) -> None:
    """PAUSE answers 200 (1.22 refuses it with 400 on media published CLOCK_AND_OFFSET, and
    rtspsrc, VLC and other players then fail when they pause or stop); PLAY resumes the
    stream, and a GStreamer client that reaches its end exits cleanly."""
    host, port = mount_url.split("/")[2].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        status, head = _request(sock, f"DESCRIBE {mount_url} RTSP/1.0\r\nCSeq: 1\r\n"
                                      "Accept: application/sdp\r\n\r\n")
        assert status == 200
        status, head = _request(sock, f"SETUP {mount_url}/stream=0 RTSP/1.0\r\nCSeq: 2\r\n"
                                      "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n")
        session = re.search(r"Session: *([^;\r\n]+)", head)
        assert status == 200 and session
        sess = f"Session: {session.group(1)}\r\n"
        for cseq, method in enumerate(("PLAY", "PAUSE", "PLAY", "TEARDOWN"), start=3):
            status, _ = _request(sock, f"{method} {mount_url} RTSP/1.0\r\nCSeq: {cseq}\r\n"
                                       f"{sess}\r\n")
            assert status == 200, f"{method}: {status}"
            time.sleep(0.3)
    out = subprocess.run(["gst-launch-1.0", "-q", "rtspsrc", f"location={mount_url}",
                          "protocols=tcp", "!", "application/x-rtp,media=video", "!",
                          "fakesink", "num-buffers=60"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr[-400:]
