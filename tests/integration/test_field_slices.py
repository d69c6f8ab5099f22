"""Multi-slice access units (x264/x265 ``slices=4``, x264 zerolatency's sliced threads) are
served as one frame each: parameter sets once before the first slice, our SEI once before the
first slice, one packet and one unique PTS per frame, metadata on every frame whose pixels
decode cleanly — for file mounts (MP4, TS, H.264 and H.265) and a Publisher, TCP and UDP.

Before the fix rtph264pay (config-interval=-1) put SPS+PPS before every IDR *slice*: ffprobe
counted 4 keyframe packets per keyframe and repeated PTS.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
from field_helpers import read_framecast, read_pyav, rtsp_access_units, run_concurrently
from rtsp_helpers import check_pts, ffprobe_packets
from sei_helpers import write_index_sidecar

import framecast
from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.pixelindex import render_frame
from framecast.server import Server

N, GOP, FPS = 20, 10, 30
CLIPS = {  # mount -> (codec, container, bframes)
    "h264": ("h264", "mp4", 2),
    "h264ts": ("h264", "ts", 0),
    "h265": ("h265", "mp4", 2),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    d = tmp_path_factory.mktemp("slices")
    mounts = []
    for name, (codec, cont, b) in CLIPS.items():
        clip = make_clip(d / f"{name}.{cont}", codec=codec, container=cont, frames=N,
                         fps=FPS, bframes=b, gop=GOP, slices=4)
        side = d / f"{name}.jsonl"
        write_index_sidecar(side, N)
        mounts.append(Mount(name=name, file=str(clip), sidecar=str(side)))
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http=False), tuple(mounts)).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("mount", list(CLIPS))
def test_one_packet_per_frame(server: Server, mount: str) -> None:
    """ffprobe over TCP and UDP at once: 3+ loops give one keyframe packet per GOP and one
    unique PTS per frame."""
    got: dict[str, list[dict]] = {}
    threads = [threading.Thread(target=lambda t=t: got.__setitem__(
        t, ffprobe_packets(server.rtsp_url(mount), 2.8, t))) for t in ("tcp", "udp")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert sorted(got) == ["tcp", "udp"]
    for transport, packets in got.items():
        pts = [p["pts_time"] for p in packets if p.get("pts_time") not in (None, "N/A")]
        assert len(pts) == len(set(pts)), f"{transport}: repeated PTS"
        keys = [p for p in packets if "K" in p.get("flags", "")]
        assert len(keys) <= len(packets) // GOP + 1, f"{transport}: {len(keys)} keyframes"
        report = check_pts(packets, 1 / FPS)
        assert report.clean, (transport, report)
        assert report.frames >= 2.5 * N, transport


@pytest.mark.parametrize("mount", list(CLIPS))
def test_access_unit_layout(server: Server, mount: str) -> None:
    """Each AU as the depayloader delivers it: parameter sets once and our SEI once, both
    before the first of its 4 slices."""
    codec = CLIPS[mount][0]
    aus = rtsp_access_units(server.rtsp_url(mount), codec, 1.5)
    aus = aus[next(i for i, a in enumerate(aus) if a.keyframe):]
    assert len(aus) >= N
    for au in aus:
        assert au.slices(codec) == 4
        assert au.layout_errors(codec) == [], au.pts
    assert len({a.pts for a in aus}) == len(aus)


@pytest.mark.parametrize("mount", ["h264", "h265"])
def test_metadata_on_every_frame_decodes_cleanly(server: Server, mount: str) -> None:
    """framecast.open (UDP) and PyAV (TCP) at once: metadata index = pixel index on every
    frame over 3 loops; PyAV logs no decode error."""
    url, count = server.rtsp_url(mount), 3 * N
    results = run_concurrently({"framecast": lambda: read_framecast(url, "udp", count),
                                "pyav": lambda: read_pyav(url, "tcp", count)},
                               stagger=1.0, timeout=60)
    fc = results["framecast"]
    pyav, errors = results["pyav"]  # type: ignore[misc]
    assert errors == []
    for frames in (fc, pyav):
        assert len(frames) >= count  # type: ignore[arg-type]
        for pixel, md in frames:  # type: ignore[union-attr]
            assert md["index"] == pixel, (pixel, md)
            assert md["seq"] == md["loop"] * N + pixel, md
    seqs = [md["seq"] for _, md in fc]  # type: ignore[union-attr]
    assert seqs == sorted(set(seqs))  # UDP: in order, none twice
    seqs = [md["seq"] for _, md in pyav]  # type: ignore[union-attr]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # TCP: none lost either


def test_publisher_zerolatency_slices(server: Server) -> None:
    """A Publisher (x264 zerolatency: sliced threads) over RTSP: one AU per pushed frame, every
    AU laid out as one frame with its metadata."""
    w, h = 640, 480  # big enough for x264 to cut each frame into several slices
    frames = [render_frame(i, w, h) for i in range(GOP)]
    with framecast.Publisher("pub", w, h, FPS, server=server, gop=GOP) as pub:
        got: list = []
        t = threading.Thread(target=lambda: got.extend(
            rtsp_access_units(pub.url, "h264", 2.0)))
        t.start()
        assert pub.wait_ready(10)
        pub.run_at_fps((frames[i % GOP], {"i": i}) for i in range(int(1.6 * FPS)))
        t.join(10)
    aus = got[next(i for i, a in enumerate(got) if a.keyframe):]
    assert len(aus) >= FPS
    assert max(a.slices("h264") for a in aus) > 1, "one slice per frame: the test proves nothing"
    for au in aus:
        assert au.layout_errors("h264") == [], au.pts
    assert len({a.pts for a in aus}) == len(aus)
    assert np.all(np.diff([a.pts for a in aus]) > 0)


def test_relayed_multi_slice_camera(server: Server) -> None:
    """A relay of a multi-slice stream (an IP camera's) keeps each AU one frame: parameter sets
    once, one SEI (the origin's envelope with the relay's hop) before the first slice, one PTS
    per frame."""
    relayer = Server(Settings(bind="127.0.0.1", rtsp_port=0, http=False),
                     (Mount(name="relayed", source=server.rtsp_url("h264")),)).start()
    try:
        aus = rtsp_access_units(relayer.rtsp_url("relayed"), "h264", 3.0)
    finally:
        relayer.stop()
    aus = aus[next(i for i, a in enumerate(aus) if a.keyframe):]
    assert len(aus) >= N
    # the first keyframe AU too: it carried its parameter sets twice (once more before the
    # AUD, from a second parser on the served side) before the relay served the hub's AUs as is
    assert sum(a.keyframe for a in aus) >= 3
    for au in aus:
        assert au.slices("h264") == 4
        assert au.layout_errors("h264", sei_nals=1) == [], au.pts
    assert len({a.pts for a in aus}) == len(aus)
