"""A relay keeps the origin's metadata: a framecast stream relayed once and twice arrives with
one envelope per frame, the origin's stamps and user fields untouched (its ``wallclock_ns``
gives the frame's true age), each relay's own stamps in ``hops`` — over UDP (framecast.open)
and TCP (PyAV, no decode error). Before, each relay added a second envelope and a reader took
the relay's ``wallclock_ns``, reading the latency through a relay too low."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from field_helpers import read_framecast, read_pyav, run_concurrently
from rtsp_helpers import check_pts, ffprobe_packets
from sei_helpers import write_index_sidecar

import framecast
from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.server import Server

N, GOP, FPS = 20, 10, 30


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """origin (a file with B-frames and a sidecar) → r1 → r2."""
    d = tmp_path_factory.mktemp("hops")
    clip = make_clip(d / "o.mp4", frames=N, fps=FPS, bframes=2, gop=GOP)
    side = d / "o.jsonl"
    write_index_sidecar(side, N)
    servers: dict[str, Server] = {}
    try:
        settings = Settings(bind="127.0.0.1", rtsp_port=0, http=False)
        servers["o"] = Server(settings, (Mount(name="o", file=str(clip),
                                               sidecar=str(side)),)).start()
        servers["r1"] = Server(settings, (Mount(name="r1", source=servers["o"].rtsp_url("o")),
                                          )).start()
        servers["r2"] = Server(settings, (Mount(name="r2",
                                                source=servers["r1"].rtsp_url("r1")),)).start()
        yield servers
    finally:
        for s in reversed(servers.values()):
            s.stop()


def check_frames(frames: list[tuple[int, dict[str, Any]]], vias: list[str]) -> None:
    assert len(frames) >= 2 * N
    for pixel, md in frames:
        # the origin's stamps and its sidecar field, on the picture they were written for
        assert md["index"] == pixel and md["seq"] == md["loop"] * N + pixel, md
        assert [h["via"] for h in md["hops"]] == vias, md
        clocks = [md["wallclock_ns"]] + [h["wallclock_ns"] for h in md["hops"]]
        assert clocks == sorted(clocks), md  # origin first, then each relay in turn
    for k in range(len(vias)):
        seqs = [md["hops"][k]["seq"] for _, md in frames]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (vias[k], seqs)


def test_one_hop_keeps_the_origin(chain: dict[str, Server]) -> None:
    check_frames(read_framecast(chain["r1"].rtsp_url("r1"), "tcp", 2 * N), ["r1"])


def test_two_hops_keep_the_origin_udp_and_pyav(chain: dict[str, Server]) -> None:
    url, count = chain["r2"].rtsp_url("r2"), 2 * N
    res = run_concurrently({"framecast": lambda: read_framecast(url, "udp", count),
                            "pyav": lambda: read_pyav(url, "tcp", count)},
                           stagger=1.0, timeout=60)
    pyav, errors = res["pyav"]
    assert errors == []
    check_frames(pyav, ["r1", "r2"])
    check_frames(res["framecast"], ["r1", "r2"])


def test_true_age_through_relays(chain: dict[str, Server]) -> None:
    """The age read from the origin's wallclock is older than from any relay's: with the
    relay's own stamp (what a reader saw before) it read too low by the relays' delay."""
    ages = []
    with framecast.open(chain["r2"].rtsp_url("r2"), timeout=15) as reader:
        for frame in reader:
            now = time.time_ns()
            if frame.metadata:
                md = frame.metadata[0]
                ages.append((now - md["wallclock_ns"], now - md["hops"][-1]["wallclock_ns"]))
            if len(ages) >= N:
                break
    assert all(origin > last for origin, last in ages), ages


def test_two_hops_one_packet_group_per_frame(chain: dict[str, Server]) -> None:
    """ffprobe over TCP and UDP at once: one keyframe packet per GOP, every PTS once and one
    frame apart (the relay's timeline is its camera's RTP clock), DTS never back."""
    url = chain["r2"].rtsp_url("r2")
    got = run_concurrently({t: lambda t=t: ffprobe_packets(url, 3.0, t) for t in ("tcp", "udp")},
                           timeout=60)
    for transport, packets in got.items():
        keys = [p for p in packets if "K" in p.get("flags", "")]
        assert len(keys) <= len(packets) // GOP + 1, (transport, len(keys))
        report = check_pts(packets, 1 / FPS)
        assert report.clean and report.frames >= 2 * GOP, (transport, report)


def test_publisher_through_a_relay_keeps_its_stamps(tmp_path: Any) -> None:
    """A Publisher's frames relayed: its own fields and stamps (when the app pushed them)
    arrive untouched, the relay's in ``hops``."""
    from framecast.pixelindex import render_frame

    settings = Settings(bind="127.0.0.1", rtsp_port=0, http=False)
    with framecast.Publisher("pub", 320, 240, FPS, gop=GOP) as pub:
        relay = Server(settings, (Mount(name="rpub", source=pub.url),)).start()
        got: list[dict[str, Any]] = []

        def read() -> None:
            with framecast.open(relay.rtsp_url("rpub"), timeout=15) as reader:
                for frame in reader:
                    got.extend(frame.metadata)
                    if len(got) >= GOP:
                        break

        try:
            reader = threading.Thread(target=read)
            reader.start()
            assert pub.wait_ready(15)
            pub.run_at_fps((render_frame(i, 320, 240), {"i": i}) for i in range(3 * FPS))
            reader.join(15)
        finally:
            relay.stop()
    assert len(got) >= GOP
    for md in got:
        assert isinstance(md["i"], int) and md["seq"] >= 0  # the Publisher's envelope
        assert [h["via"] for h in md["hops"]] == ["rpub"]
        assert md["wallclock_ns"] <= md["hops"][0]["wallclock_ns"]
