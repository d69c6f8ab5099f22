"""RTSP looping benchmark: (a) seamlessness over 20 loops, (b) server CPU per client-second for
N = 1, 10, 50 RTSP clients of a 1080p ~4 Mb/s clip, side by side with VLC 3 in the same run,
(c) time to first frame for a joining client.

    .venv/bin/python bench/loop_bench.py [--quick]

Clients for (b) are a tiny asyncio RTSP client (RTP over UDP: VLC answers 461 to TCP
interleaving) in this process, the same for both servers, so the servers' CPU is what differs.
VLC refuses to run as root: it runs as ``nobody`` through ``setpriv`` (which execs, so its pid is
VLC's own).
Bounded: about 2–3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAMECAST = str(ROOT / ".venv" / "bin" / "framecast")
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_port(port: int, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


# -- clips ----------------------------------------------------------------------------------

def bench_clip_1080p(path: Path, seconds: int = 5) -> Path:
    """1080p30 H.264, ~4 Mb/s CBR, GOP 1 s, moving test picture (made once, cached)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    subprocess.run([
        "gst-launch-1.0", "-q", "videotestsrc", f"num-buffers={30 * seconds}",
        "pattern=smpte", "horizontal-speed=8", "!",
        "video/x-raw,width=1920,height=1080,framerate=30/1,format=I420", "!",
        "x264enc", "speed-preset=superfast", "bitrate=4000", "pass=cbr", "vbv-buf-capacity=1000",
        "key-int-max=30", "option-string=scenecut=0:min-keyint=30", "bframes=0", "!",
        "video/x-h264,profile=main", "!", "h264parse", "!",
        "mp4mux", "!", "filesink", f"location={tmp}"], check=True)
    tmp.replace(path)
    return path


# -- a minimal RTSP client (TCP interleaved) ------------------------------------------------

class _Count(asyncio.DatagramProtocol):
    def __init__(self, client: RtspClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, _addr: object) -> None:
        self.client.bytes += len(data)


def _udp_pair() -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on consecutive ports (RTP even, RTCP odd)."""
    for _ in range(50):
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        port = a.getsockname()[1]
        if port % 2 == 0:
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                b.bind(("127.0.0.1", port + 1))
                return a, b
            except OSError:
                b.close()
        a.close()
    raise OSError("no consecutive UDP ports")


class RtspClient:
    """DESCRIBE/SETUP/PLAY the first video track; count the bytes of media received."""

    def __init__(self, url: str, transport: str = "udp") -> None:
        self.url = url
        self.transport = transport
        self.bytes = 0
        self.error: str | None = None
        self.cseq = 0

    async def _request(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, method: str,
                       uri: str, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
        self.cseq += 1
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self.cseq}", "User-Agent: loop_bench"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        w.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await r.readuntil(b"\r\n\r\n")).decode(errors="replace")
        status = int(head.split()[1])
        hdrs = {}
        for ln in head.split("\r\n")[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        body = b""
        if int(hdrs.get("content-length", "0")):
            body = await r.readexactly(int(hdrs["content-length"]))
        return status, hdrs, body.decode(errors="replace")

    async def run(self, stop: asyncio.Event) -> None:
        host_port = self.url.split("/")[2]
        host, port = host_port.rsplit(":", 1)
        try:
            r, w = await asyncio.open_connection(host, int(port), limit=1 << 20)
            st, hdrs, sdp = await self._request(r, w, "DESCRIBE", self.url,
                                                {"Accept": "application/sdp"})
            if st != 200:
                raise RuntimeError(f"DESCRIBE {st}")
            base = hdrs.get("content-base", self.url + "/")
            controls, in_video = [], False
            for ln in sdp.splitlines():
                if ln.startswith("m="):
                    in_video = ln.startswith("m=video")
                elif ln.startswith("a=control:") and in_video:
                    controls.append(ln[len("a=control:"):].strip())
            ctl = controls[0] if controls else "*"
            track = ctl if ctl.startswith("rtsp://") else (
                base if ctl == "*" else base.rstrip("/") + "/" + ctl)
            socks = []
            if self.transport == "tcp":
                tr = "RTP/AVP/TCP;unicast;interleaved=0-1"
            else:
                socks = list(_udp_pair())
                loop = asyncio.get_running_loop()
                for sk in socks:
                    await loop.create_datagram_endpoint(lambda: _Count(self), sock=sk)
                rtp = socks[0].getsockname()[1]
                tr = f"RTP/AVP;unicast;client_port={rtp}-{rtp + 1}"
            st, hdrs, _ = await self._request(r, w, "SETUP", track, {"Transport": tr})
            if st != 200:
                raise RuntimeError(f"SETUP {st}")
            session = hdrs.get("session", "").split(";")[0]
            st, _h, _ = await self._request(r, w, "PLAY", base.rstrip("/"),
                                            {"Session": session, "Range": "npt=0.000-"})
            if st != 200:
                raise RuntimeError(f"PLAY {st}")
            while not stop.is_set():
                data = await r.read(1 << 18)
                if not data:
                    raise RuntimeError("server closed")
                if self.transport == "tcp":
                    self.bytes += len(data)
            w.close()
        except Exception as exc:  # reported, the bench goes on
            self.error = str(exc) or type(exc).__name__


async def load_run(url: str, n: int, pid: int, warmup: float, measure: float,
                   transport: str = "udp") -> dict:
    stop = asyncio.Event()
    clients = [RtspClient(url, transport) for _ in range(n)]
    tasks = []
    for c in clients:  # stagger a little so setup storms do not dominate
        tasks.append(asyncio.create_task(c.run(stop)))
        await asyncio.sleep(0.02)
    await asyncio.sleep(warmup)
    b0, c0, t0 = sum(c.bytes for c in clients), cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(measure)
    b1, c1, t1 = sum(c.bytes for c in clients), cpu_seconds(pid), time.monotonic()
    stop.set()
    await asyncio.sleep(0.3)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    errors = [c.error for c in clients if c.error and c.error != "CancelledError"]
    dt = t1 - t0
    return {"n": n, "cpu_s": c1 - c0, "client_s": n * dt,
            "cpu_per_client_s": (c1 - c0) / (n * dt),
            "mbps_per_client": (b1 - b0) * 8 / dt / n / 1e6, "errors": len(errors),
            "error": errors[0] if errors else None}


def start_framecast(clip: Path, port: int, sei: bool = True) -> tuple[subprocess.Popen, str]:
    """``sei=False``: the mount asks for no metadata (no SEI injector: pure demux/parse/pay)."""
    args = [str(clip)]
    if not sei:
        cfg = Path("/tmp/framecast-bench") / f"nosei-{port}.toml"
        cfg.parent.mkdir(exist_ok=True)
        cfg.write_text(f'[mounts.{clip.stem}]\nfile = "{clip}"\nstamps = false\n')
        args = ["--config", str(cfg)]
    p = subprocess.Popen([FRAMECAST, "serve", "--no-http", "--rtsp-port", str(port), *args],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = p.stdout.readline().strip()
    wait_port(port)
    return p, url


def start_vlc(clip: Path, port: int) -> tuple[subprocess.Popen, str]:
    # VLC refuses root; setpriv execs (no fork), so p.pid is VLC itself
    shared = Path("/tmp/framecast-bench") / clip.name
    shared.parent.mkdir(exist_ok=True)
    shared.parent.chmod(0o755)
    if not shared.exists():
        shutil.copy(clip, shared)
    shared.chmod(0o644)
    # --loop alone restarts the sout at the end of the file and the RTSP sessions go silent;
    # --input-repeat replays the input inside the same sout
    cmd = ["cvlc", "-q", "--no-audio", "--loop", "--input-repeat=100000", str(shared), "--sout",
           f"#rtp{{sdp=rtsp://127.0.0.1:{port}/stream}}", "--sout-keep"]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "HOME": "/tmp"})
    wait_port(port)
    time.sleep(1.0)  # VLC starts streaming on its own; let it settle
    return p, f"rtsp://127.0.0.1:{port}/stream"


def stop(p: subprocess.Popen) -> None:
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# -- (a) seamlessness -----------------------------------------------------------------------

def seamless(loops: int = 20) -> list[dict]:
    sys.path.insert(0, str(ROOT / "src"))
    from framecast.gst.clips import cache_dir, make_clip

    out = []
    d = cache_dir() / "bench"
    variants = [("h264", "mp4", 2), ("h265", "ts", 2)]
    clips = []
    for codec, cont, b in variants:
        f = d / f"seam-{codec}-b{b}.{cont}"
        if not f.exists():
            make_clip(f, codec=codec, container=cont, frames=15, fps=30, bframes=b, gop=15)
        clips.append(f)
    port = free_port()
    p = subprocess.Popen([FRAMECAST, "serve", "--no-http", "--rtsp-port", str(port),
                          *map(str, clips)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    urls = [p.stdout.readline().strip() for _ in clips]
    try:
        seconds = loops * 0.5 + 0.4
        procs = [subprocess.Popen(
            ["ffprobe", "-v", "error", "-rtsp_transport", tr, "-read_intervals",
             f"%+{seconds}", "-select_streams", "v:0", "-show_entries",
             "packet=pts_time,dts_time,flags", "-of", "json", u],
            stdout=subprocess.PIPE, text=True) for u, tr in zip(urls, ("tcp", "udp"),
                                                                strict=True)]
        for (codec, cont, b), pr, tr in zip(variants, procs, ("tcp", "udp"), strict=True):
            packets = json.loads(pr.communicate(timeout=seconds + 30)[0])["packets"]
            pts = sorted(float(x["pts_time"]) for x in packets if x.get("pts_time", "N/A")
                         != "N/A")[:-4]
            dts = [float(x["dts_time"]) for x in packets if x.get("dts_time", "N/A") != "N/A"]
            steps = [b2 - a for a, b2 in zip(pts, pts[1:], strict=False)]
            f = 1 / 30
            out.append({"variant": f"{codec}/{cont}/B={b}/{tr}", "loops": (pts[-1] - pts[0]) / 0.5,
                        "frames": len(pts),
                        "dup": sum(s < f - 0.0015 for s in steps),
                        "missing": sum(s > f + 0.0015 for s in steps),
                        "backwards": sum(b2 <= a for a, b2 in zip(dts, dts[1:], strict=False))})
    finally:
        stop(p)
    return out


# -- (c) time to first frame ----------------------------------------------------------------

def _has_idr(data: bytes) -> bool:
    """An H.264 Annex B access unit containing an IDR slice (NAL type 5)."""
    i = data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        if data[i + 3] & 0x1F == 5:
            return True
        i = data.find(b"\x00\x00\x01", i + 3)
    return False


def ttff(url: str, tries: int = 7) -> list[float]:
    """Seconds from PLAY to the first IDR access unit (the first frame a decoder can show),
    for clients joining a live mount. (Buffer DELTA flags after depayloading are unreliable,
    so the NAL types are read.)"""
    sys.path.insert(0, str(ROOT / "src"))
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    import random

    rng = random.Random(7)
    times = []
    for _ in range(tries):
        pl = Gst.parse_launch(
            f"rtspsrc location={url} protocols=tcp latency=0 ! rtph264depay ! h264parse ! "
            "video/x-h264,stream-format=byte-stream,alignment=au ! "
            "appsink name=s sync=false max-buffers=200")
        sink = pl.get_by_name("s")
        t0 = time.monotonic()
        pl.set_state(Gst.State.PLAYING)
        got = None
        while time.monotonic() - t0 < 10:
            sample = sink.emit("try-pull-sample", Gst.SECOND // 10)
            if sample is None:
                continue
            buf = sample.get_buffer()
            ok, m = buf.map(Gst.MapFlags.READ)
            idr = ok and _has_idr(bytes(m.data))
            if ok:
                buf.unmap(m)
            if idr:
                got = time.monotonic() - t0
                break
        pl.set_state(Gst.State.NULL)
        if got is not None:
            times.append(got)
        time.sleep(rng.uniform(0.05, 1.0))  # land at a random point of the GOP each time
    return times


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="N = 1, 10 only, shorter windows")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from framecast.gst.clips import cache_dir

    if not shutil.which("cvlc"):
        print("cvlc missing (Debian vlc-bin): run make setup", file=sys.stderr)
        return 1
    t_start = time.monotonic()
    print("== (a) seamlessness over 20 loops (ffprobe over RTSP, 0.5 s clips)")
    print(f"{'variant':<24}{'loops':>6}{'frames':>8}{'dup':>5}{'miss':>6}{'back':>6}")
    for row in seamless():
        print(f"{row['variant']:<24}{row['loops']:>6.1f}{row['frames']:>8}{row['dup']:>5}"
              f"{row['missing']:>6}{row['backwards']:>6}")

    clip = bench_clip_1080p(cache_dir() / "bench" / "bench-1080p-4mbps-gop30.mp4")
    mbps = clip.stat().st_size * 8 / 5 / 1e6
    print(f"\n== (b) server CPU per client-second, {clip.name} ({mbps:.1f} Mb/s file), "
          "clients: RTSP, RTP over UDP (VLC serves no TCP interleaving), read and discard")
    ns = (1, 10) if args.quick else (1, 10, 50)
    warmup, measure = (1.5, 4.0) if args.quick else (2.0, 7.0)
    rows = {}
    servers = {"framecast": lambda c, p: start_framecast(c, p),
               "framecast-noSEI": lambda c, p: start_framecast(c, p, sei=False),
               "vlc": start_vlc}
    for server, start in servers.items():
        for n in ns:
            port = free_port()
            p, url = start(clip, port)
            try:
                rows[(server, n)] = asyncio.run(load_run(url, n, p.pid, warmup, measure))
            finally:
                stop(p)
    print("CPU ms per client-second (lower is better); Mb/s delivered per client; "
          "CPU ms per delivered Mbit")
    print(f"{'N':>4} {'server':<16} {'ms/client-s':>12} {'vs VLC':>7} {'Mb/s/client':>12} "
          f"{'ms/Mbit':>8} {'errors':>7}")
    for n in ns:
        vl = rows[("vlc", n)]["cpu_per_client_s"]
        for server in servers:
            r = rows[(server, n)]
            ms = r["cpu_per_client_s"] * 1000
            per_mbit = ms / r["mbps_per_client"] if r["mbps_per_client"] else float("nan")
            ratio = r["cpu_per_client_s"] / vl if vl else float("nan")
            print(f"{n:>4} {server:<16} {ms:>12.2f} {ratio:>7.2f} {r['mbps_per_client']:>12.2f} "
                  f"{per_mbit:>8.2f} {r['errors']:>7}")
            if r["error"]:
                print(f"     error: {r['error']}")

    print("\n== (c) time to first frame (rtspsrc, TCP, joining a mount that is already playing)")
    port = free_port()
    p, url = start_framecast(clip, port)
    holder = subprocess.Popen(["ffmpeg", "-v", "quiet", "-rtsp_transport", "tcp", "-i", url,
                               "-c", "copy", "-f", "null", "-"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        times = ttff(url)
    finally:
        holder.kill()
        holder.wait()
        stop(p)
    if times:
        print(f"joining client, GOP 1 s: median {statistics.median(times) * 1000:.0f} ms, "
              f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
              f"({len(times)} tries)")
    else:
        print("no frame received")
    port = free_port()
    p, url = start_framecast(clip, port)
    try:
        cold = ttff(url, tries=1)
    finally:
        stop(p)
    if cold:
        print(f"first client (media built on request): {cold[0] * 1000:.0f} ms")
    print(f"\nbench took {time.monotonic() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
