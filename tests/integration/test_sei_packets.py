"""Stamps cost no RTP packet: a frame's SEI rides in the same packet as the start of its access
unit (STAP-A with the AUD / parameter sets / a small first slice), on a real RTSP session over
UDP. Same clip, one mount with stamps and one without: the same number of packets per frame.
"""

from __future__ import annotations

import socket
import time

import pytest
from ports import udp_pair

from framecast import metadata as md
from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.server import Server

FU_A, STAP_A, SEI = 28, 24, 6


def _request(f, sock: socket.socket, method: str, url: str, cseq: int,
             headers: dict[str, str]) -> tuple[dict[str, str], str]:
    lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}", *(f"{k}: {v}" for k, v in
                                                            headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    status = f.readline().decode()
    assert " 200 " in status, f"{method}: {status}"
    hdrs = {}
    while (ln := f.readline().decode().strip()):
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    body = f.read(int(hdrs.get("content-length", "0"))).decode()
    return hdrs, body


def receive_rtp(url: str, seconds: float) -> list[bytes]:
    """PLAY the video track over UDP and return every RTP packet received for ``seconds``."""
    host, port = url.split("/")[2].rsplit(":", 1)
    rtp, rtcp = udp_pair()
    rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rtp.settimeout(0.2)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        f = sock.makefile("rb")
        _, sdp = _request(f, sock, "DESCRIBE", url, 1, {"Accept": "application/sdp"})
        sdp_video = sdp[sdp.index("m=video"):]
        ctl = next(ln[10:].strip() for ln in sdp_video.splitlines() if ln.startswith("a=control:"))
        track = ctl if "://" in ctl else url.rstrip("/") + "/" + ctl
        p = rtp.getsockname()[1]
        hdrs, _ = _request(f, sock, "SETUP", track, 2,
                           {"Transport": f"RTP/AVP;unicast;client_port={p}-{p + 1}"})
        session = hdrs["session"].split(";")[0]
        _request(f, sock, "PLAY", url, 3, {"Session": session, "Range": "npt=0.000-"})
        packets: list[bytes] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                packets.append(rtp.recv(65536))
            except TimeoutError:
                continue
        _request(f, sock, "TEARDOWN", url, 4, {"Session": session})
    rtp.close()
    rtcp.close()
    return packets


def _nal_units(pkt: bytes) -> list[bytes]:
    """NAL units (or FU-A fragments) carried by one H.264 RTP packet."""
    pay = pkt[12 + 4 * (pkt[0] & 0x0F):]
    if pay[0] & 0x1F != STAP_A:
        return [pay]
    out, i = [], 1
    while i + 2 <= len(pay):
        n = int.from_bytes(pay[i:i + 2], "big")
        out.append(pay[i + 2:i + 2 + n])
        i += 2 + n
    return out


def per_frame(packets: list[bytes]) -> tuple[float, int, int]:
    """(packets per frame over whole frames, frames, packets holding only SEI)."""
    by_ts: dict[int, int] = {}
    sei_alone = 0
    for pkt in packets:
        by_ts[int.from_bytes(pkt[4:8], "big")] = by_ts.get(int.from_bytes(pkt[4:8], "big"),
                                                           0) + 1
        types = [nal[0] & 0x1F for nal in _nal_units(pkt)]
        sei_alone += all(t == SEI for t in types)
    whole = list(by_ts.values())[1:-1]  # the first and last frame may be cut by the window
    return sum(whole) / len(whole), len(whole), sei_alone


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    # x264enc writes an AUD first in every AU, as most encoders that target RTSP do
    clip = make_clip(tmp_path_factory.mktemp("pkts") / "clip.mp4", frames=30, fps=30,
                     width=640, height=360, gop=15)
    srv = Server(Settings(rtsp_port=0), (Mount(name="on", file=str(clip)),
                                         Mount(name="off", file=str(clip), stamps=False)))
    yield srv.start()
    srv.stop()


def test_sei_shares_the_first_packet_of_its_access_unit(server: Server) -> None:
    on = receive_rtp(server.rtsp_url("on"), 2.5)
    off = receive_rtp(server.rtsp_url("off"), 2.5)
    ppf_on, frames_on, alone_on = per_frame(on)
    ppf_off, frames_off, alone_off = per_frame(off)
    assert frames_on >= 30 and frames_off >= 30, (frames_on, frames_off)
    # every frame carries our SEI, and never in a packet of its own
    sei = [nal for pkt in on for nal in _nal_units(pkt) if nal[0] & 0x1F == SEI
           and md.FRAMECAST_UUID in nal]
    assert len(sei) >= frames_on
    assert alone_on == 0 and alone_off == 0
    assert ppf_on == pytest.approx(ppf_off, abs=0.05), (ppf_on, ppf_off)
    assert ppf_on > 1.5  # frames big enough for FU-A: the SEI rides with the AUD


def test_publisher_sei_never_takes_a_packet_of_its_own() -> None:
    """A Publisher mount (x264 zerolatency: AUD, then 2 slices per frame) aggregates like a
    file mount: every frame's SEI shares a packet with the AUD before it."""
    import threading

    import numpy as np

    import framecast

    srv = Server(Settings(rtsp_port=0, http=False)).start()
    stop = threading.Event()
    try:
        with framecast.Publisher("pub", 320, 240, 30, server=srv, gop=15) as pub:
            def push() -> None:
                i = 0
                while not stop.is_set():
                    frame = np.full((240, 320, 3), (i * 7) % 255, np.uint8)
                    frame[:, : (i * 5) % 320] = 255 - (i % 255)
                    pub.push(frame, {"i": i})
                    i += 1
                    time.sleep(1 / 30)

            pusher = threading.Thread(target=push, daemon=True)
            pusher.start()
            try:
                packets = receive_rtp(srv.rtsp_url("pub"), 2.0)
            finally:
                stop.set()
                pusher.join(5)
    finally:
        srv.stop()
    ppf, frames, alone = per_frame(packets)
    assert frames >= 30, frames
    sei = [nal for pkt in packets for nal in _nal_units(pkt)
           if nal[0] & 0x1F == SEI and md.FRAMECAST_UUID in nal]
    assert len(sei) >= frames
    assert alone == 0, f"{alone} SEI-only packets in {len(packets)} ({ppf:.2f} per frame)"
