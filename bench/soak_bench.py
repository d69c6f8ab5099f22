"""Soak: one mount, 5 healthy clients, a churn of 1 connect/s and one stalled client a minute.

    .venv/bin/python bench/soak_bench.py [--minutes 10] [--quick]

`framecast serve` (a subprocess, RTSP only) loops a 5 s 720p H.264 (B-frames) + AAC clip, so a
loop point falls every 5 s and every stalled client's backlog spans several. Load, all from
this process:
- 5 healthy clients over TCP (interleaved) for the whole run: each counts video frames (RTP
  marker bits) and RTP timestamp gaps (a step of more than 1.5 frames);
- churn: a new session every second, TCP or UDP, playing 0.5–2 s, then half end with
  TEARDOWN and half vanish (RST, no TEARDOWN);
- once a minute a stalled client: SO_RCVBUF 4096, PLAY over TCP, then it never reads.
Every 30 s: the server's RSS, open fds and threads, the healthy clients' frame rate, gaps, and
how many stalled clients the server still holds. The reference is the first sample after one
minute of warm-up: the script prints growth per minute against it (linear fit) and the ratio
of the last sample to it. Not in CI (10 minutes); tests/reliability holds bounded versions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from ports import free_port  # noqa: E402  (the tests' port helper)

FRAMECAST = str(ROOT / ".venv" / "bin" / "framecast")
FPS = 30
CLIP_S = 5


def make_clip(path: Path) -> Path:
    """5 s of 720p30 H.264 Main with B-frames + AAC (made once, cached)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    subprocess.run([
        "gst-launch-1.0", "-q", "videotestsrc", f"num-buffers={FPS * CLIP_S}", "pattern=ball",
        "!", f"video/x-raw,width=1280,height=720,framerate={FPS}/1,format=I420", "!",
        "x264enc", "speed-preset=superfast", "bitrate=3000", "key-int-max=30", "bframes=2", "!",
        "video/x-h264,profile=main", "!", "h264parse", "!", "queue", "!", "mp4mux", "name=mux",
        "!", "filesink", f"location={tmp}",
        "audiotestsrc", f"num-buffers={48 * CLIP_S}", "samplesperbuffer=1000", "!",
        "audio/x-raw,rate=48000,channels=2", "!", "avenc_aac", "!", "aacparse", "!", "queue",
        "!", "mux."], check=True)
    tmp.replace(path)
    return path


def proc_stats(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {ln.split(":")[0]: ln.split(":", 1)[1].strip() for ln in status if ":" in ln}
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
            "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


# -- a minimal RTSP client ------------------------------------------------------------------

class Session:
    """DESCRIBE / SETUP (first video track) / PLAY over one TCP connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        host, port = url.split("/")[2].rsplit(":", 1)
        self.addr = (host, int(port))
        self.cseq = 0
        self.session = ""
        self.base = url

    async def _request(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, method: str,
                       uri: str, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
        self.cseq += 1
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self.cseq}", "User-Agent: soak_bench"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        w.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        while True:   # interleaved data may come before the reply
            first = await r.readexactly(1)
            if first == b"$":
                hdr = await r.readexactly(3)
                await r.readexactly(int.from_bytes(hdr[1:3], "big"))
                continue
            head = (first + await r.readuntil(b"\r\n\r\n")).decode(errors="replace")
            break
        hdrs = {}
        for ln in head.split("\r\n")[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        body = b""
        if int(hdrs.get("content-length", "0")):
            body = await r.readexactly(int(hdrs["content-length"]))
        return int(head.split()[1]), hdrs, body.decode(errors="replace")

    async def start(self, r: asyncio.StreamReader, w: asyncio.StreamWriter,
                    transport: str) -> None:
        st, hdrs, sdp = await self._request(r, w, "DESCRIBE", self.url,
                                            {"Accept": "application/sdp"})
        if st != 200:
            raise RuntimeError(f"DESCRIBE {st}")
        self.base = hdrs.get("content-base", self.url + "/").rstrip("/")
        control, in_video = "stream=0", False
        for ln in sdp.splitlines():
            if ln.startswith("m="):
                in_video = ln.startswith("m=video")
            elif ln.startswith("a=control:") and in_video:
                control = ln[len("a=control:"):].strip()
                break
        track = control if control.startswith("rtsp://") else f"{self.base}/{control}"
        st, hdrs, _ = await self._request(r, w, "SETUP", track, {"Transport": transport})
        if st != 200:
            raise RuntimeError(f"SETUP {st}")
        self.session = hdrs.get("session", "").split(";")[0]
        st, _, _ = await self._request(r, w, "PLAY", self.base,
                                       {"Session": self.session, "Range": "npt=0.000-"})
        if st != 200:
            raise RuntimeError(f"PLAY {st}")


class Healthy:
    """A TCP client that reads everything: frames (marker bits) and RTP timestamp gaps."""

    def __init__(self, url: str) -> None:
        self.session = Session(url)
        self.frames = 0
        self.error: str | None = None
        self.stamps: list[int] = []    # RTP timestamps of this window's frames

    def _rtp(self, pkt: bytes) -> None:
        if len(pkt) >= 12 and pkt[1] & 0x80:   # marker: the last packet of a frame
            self.frames += 1
            self.stamps.append(int.from_bytes(pkt[4:8], "big"))

    def take_gaps(self) -> int:
        """Steps of more than 1.5 frames between this window's frames in presentation order
        (frames arrive in decode order: with B-frames their timestamps are not monotonic)."""
        stamps, self.stamps = self.stamps, []
        if len(stamps) < 8:
            return 0
        first = stamps[0]
        # unwrap around the first stamp (RTP timestamps are 32-bit and wrap)
        pts = sorted((s - first + (1 << 31)) % (1 << 32) for s in stamps)[3:-3]
        frame = 90000 / FPS
        return sum(1 for a, b in zip(pts, pts[1:], strict=False) if b - a > 1.5 * frame)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            r, w = await asyncio.open_connection(*self.session.addr, limit=1 << 20)
            await self.session.start(r, w, "RTP/AVP/TCP;unicast;interleaved=0-1")
            while not stop.is_set():
                first = await r.readexactly(1)
                if first != b"$":
                    await r.readuntil(b"\r\n\r\n")   # a reply to nothing: skip it
                    continue
                hdr = await r.readexactly(3)
                pkt = await r.readexactly(int.from_bytes(hdr[1:3], "big"))
                if hdr[0] == 0:
                    self._rtp(pkt)
            w.close()
        except Exception as exc:  # reported in the table
            self.error = str(exc) or type(exc).__name__


async def churn_one(url: str, rng: random.Random) -> str:
    """One short session: TCP or UDP, 0.5–2 s, then TEARDOWN or an abrupt RST."""
    s = Session(url)
    udp = []
    try:
        r, w = await asyncio.open_connection(*s.addr)
        if rng.random() < 0.5:
            transport = "RTP/AVP/TCP;unicast;interleaved=0-1"
        else:
            for _ in range(2):
                sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sk.bind(("127.0.0.1", 0))
                udp.append(sk)
            p = udp[0].getsockname()[1]
            transport = f"RTP/AVP;unicast;client_port={p}-{udp[1].getsockname()[1]}"
        await s.start(r, w, transport)
        end = time.monotonic() + rng.uniform(0.5, 2.0)
        while time.monotonic() < end:
            try:
                await asyncio.wait_for(r.read(1 << 16), 0.2)
            except TimeoutError:
                pass
        sock = w.get_extra_info("socket")
        if rng.random() < 0.5:
            w.write(f"TEARDOWN {s.base} RTSP/1.0\r\nCSeq: 99\r\nSession: {s.session}\r\n\r\n"
                    .encode())
            await w.drain()
            w.close()
            return "teardown"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        w.close()
        return "rst"
    except Exception as exc:
        return f"error: {exc or type(exc).__name__}"
    finally:
        for sk in udp:
            sk.close()


def stalled_client(url: str, timeout: float = 10.0) -> socket.socket:
    """PLAY over TCP with a 4 KB receive buffer, then never read (what a paused phone does)."""
    host, port = url.split("/")[2].rsplit(":", 1)
    sk = socket.socket()
    sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sk.settimeout(timeout)
    sk.connect((host, int(port)))

    def req(text: str) -> str:
        sk.sendall(text.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sk.recv(4096)
        head, _, _ = data.partition(b"\r\n\r\n")
        return head.decode(errors="replace")

    req(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n")
    # the SDP body may still be in the buffer: the reply headers are all we need
    head = req(f"SETUP {url}/stream=0 RTSP/1.0\r\nCSeq: 2\r\n"
               "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n")
    session = next((ln.split(":", 1)[1].split(";")[0].strip() for ln in head.split("\r\n")
                    if ln.lower().startswith("session:")), "")
    sk.sendall(f"PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n".encode())
    return sk


def held_by_server(sk: socket.socket) -> bool:
    """Has the server not closed this (never-read) connection? Drain what is buffered: EOF or
    RST means the server dropped it."""
    sk.setblocking(False)
    try:
        while True:
            data = sk.recv(1 << 16)
            if not data:
                return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sk.setblocking(True)


# -- the run ------------------------------------------------------------------------------

async def soak(url: str, pid: int, minutes: float, sample_s: float) -> list[dict]:
    rng = random.Random(7)
    stop = asyncio.Event()
    healthy = [Healthy(url) for _ in range(5)]
    tasks = [asyncio.create_task(h.run(stop)) for h in healthy]
    stalled: list[socket.socket] = []
    churn: dict[str, int] = {}
    churn_tasks: set[asyncio.Task[str]] = set()
    samples: list[dict] = []
    t0 = time.monotonic()
    next_sample, next_stall, frames0 = t0 + sample_s, t0 + 5, 0

    def done(t: asyncio.Task[str]) -> None:
        churn_tasks.discard(t)
        if not t.cancelled():
            key = t.result().split(":")[0]
            churn[key] = churn.get(key, 0) + 1

    while time.monotonic() - t0 < minutes * 60:
        task = asyncio.create_task(churn_one(url, rng))
        churn_tasks.add(task)
        task.add_done_callback(done)
        now = time.monotonic()
        if now >= next_stall:
            try:
                stalled.append(await asyncio.to_thread(stalled_client, url))
            except OSError as exc:
                churn["stall-error"] = churn.get("stall-error", 0) + 1
                print(f"stalled client failed to start: {exc}", file=sys.stderr)
            next_stall += 60
        if now >= next_sample:
            frames = sum(h.frames for h in healthy)
            gaps = sum(h.take_gaps() for h in healthy)
            held = sum(held_by_server(s) for s in stalled)
            st = proc_stats(pid)
            st.update(t_min=(now - t0) / 60, fps=(frames - frames0) / sample_s / len(healthy),
                      gaps=gaps, stalled=len(stalled), held=held,
                      churn=sum(churn.values()), errors=sum(1 for h in healthy if h.error))
            frames0 = frames
            samples.append(st)
            print(f"{st['t_min']:5.1f} min  RSS {st['rss_mb']:6.1f} MB  fds {st['fds']:4d}  "
                  f"threads {st['threads']:3d}  healthy {st['fps']:5.1f} fps  gaps {st['gaps']}  "
                  f"stalled held {held}/{len(stalled)}  churned {st['churn']}  "
                  f"dead healthy {st['errors']}", flush=True)
            next_sample += sample_s
        await asyncio.sleep(1.0)
    stop.set()
    await asyncio.sleep(0.5)
    for t in [*tasks, *churn_tasks]:
        t.cancel()
    await asyncio.gather(*tasks, *churn_tasks, return_exceptions=True)
    for s in stalled:
        s.close()
    print("churn outcomes:", churn)
    print("healthy client errors:", [h.error for h in healthy if h.error] or "none")
    return samples


def slope_per_min(samples: list[dict], key: str) -> float:
    xs = [s["t_min"] for s in samples]
    ys = [float(s[key]) for s in samples]
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true", help="2 minutes, samples every 15 s")
    args = ap.parse_args()
    minutes, sample_s = (2.0, 15.0) if args.quick else (args.minutes, 30.0)
    clip = make_clip(ROOT / ".cache" / "bench" / "soak-720p-aac.mp4")
    port = free_port()
    log = open(ROOT / ".cache" / "bench" / "soak-server.log", "w")
    server = subprocess.Popen([FRAMECAST, "serve", str(clip), "--no-http", "--rtsp-port",
                               str(port)], stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        print(f"server pid {server.pid} at {url}; {minutes:g} min, sample every {sample_s:g} s")
        samples = asyncio.run(soak(url, server.pid, minutes, sample_s))
        alive = server.poll() is None
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            rc = server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            rc = -9
        log.close()
    steady = [s for s in samples if s["t_min"] >= 1.0] or samples
    ref, last = steady[0], steady[-1]
    print(f"\nserver alive to the end: {alive}; exit status after SIGTERM: {rc}")
    print("| metric | reference (first sample ≥ 1 min) | last | last/ref | growth per min |")
    print("|---|---|---|---|---|")
    for key, unit in (("rss_mb", "MB"), ("fds", ""), ("threads", "")):
        print(f"| {key} | {ref[key]:.1f} {unit} | {last[key]:.1f} {unit} | "
              f"{last[key] / ref[key]:.2f} | {slope_per_min(steady, key):+.2f} {unit}/min |")
    fps = [s["fps"] for s in steady]
    print(f"healthy frame rate: min {min(fps):.1f}, median {statistics.median(fps):.1f} fps "
          f"(clip {FPS} fps); RTP timestamp gaps: {sum(s['gaps'] for s in samples)}; "
          f"stalled clients still held at the end: {last['held']}/{last['stalled']}")
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
