"""300 media starts (0 → 1 client → 0) leave no injector, pad or element behind.

Before the fix each start leaked its FramecastInject (~14.5 kB with pads, indexer and bound
methods): the pads held bound methods of the element as chain/event functions, a cycle
through C that Python's GC cannot see.
"""

from __future__ import annotations

import gc
import time

import pytest
from raw_rtsp import RawRtsp
from rtsp_helpers import RtspsrcClient, wait_until

from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.gst.inject import FramecastInject
from framecast.server import Server

STARTS = 300


def _live() -> dict[str, int]:
    from gi.repository import Gst

    gc.collect()
    objs = gc.get_objects()
    return {"injectors": sum(1 for o in objs if isinstance(o, FramecastInject)),
            "pads": sum(1 for o in objs if isinstance(o, Gst.Pad))}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    clip = make_clip(tmp_path_factory.mktemp("starts") / "tiny.mp4", frames=10, fps=30,
                     width=160, height=120, gop=10)
    srv = Server(Settings(rtsp_port=0, http=False), (Mount(name="tiny", file=str(clip)),)).start()
    yield srv
    srv.stop()


def _start_once(server: Server, url: str) -> None:
    raw = RawRtsp(server.port)
    try:
        raw.play_tcp(url)
        assert raw.response()[0] == 200  # the PLAY reply: the media is running
        raw.request("TEARDOWN", url)
    finally:
        raw.close()


def test_300_media_starts_leave_no_injectors(server: Server) -> None:
    url = server.rtsp_url("tiny")
    factory = server.mounts["tiny"].factory
    _start_once(server, url)
    assert wait_until(lambda: not factory.medias, 10)
    base, rss0 = _live(), _rss_mb()
    t0 = time.monotonic()
    for _ in range(STARTS):
        _start_once(server, url)
    assert time.monotonic() - t0 < 60
    assert wait_until(lambda: not factory.medias, 10), "medias still prepared"
    after = _live()
    assert after["injectors"] <= base["injectors"] + 1, f"{base} -> {after}"
    assert after["pads"] <= base["pads"] + 4, f"{base} -> {after}"
    assert _rss_mb() - rss0 < 20, f"RSS grew {_rss_mb() - rss0:.1f} MB"
    client = RtspsrcClient(url, transport="tcp").run_for(1.5)
    try:
        assert not client.poll_errors() and len(client.video) >= 20, client.errors
    finally:
        client.stop()
