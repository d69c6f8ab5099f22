"""Janus as the WebRTC edge: framecast keeps exactly its mountpoints on a real Janus (own
process, generated config, free ports), through framecast restarts and Janus restarts."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))
from browser_helpers import SERVE_CMD as SERVE  # noqa: E402
from browser_helpers import Server, start_server, stop_server  # noqa: E402
from janus_harness import Janus  # noqa: E402


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from framecast.gst.clips import make_clip

    d = tmp_path_factory.mktemp("janus-clips")
    return {"main": make_clip(d / "main.mp4", frames=60, profile="main", bframes=0),
            "high": make_clip(d / "high.mp4", frames=60, profile="high", bframes=2)}


@pytest.fixture
def janus(tmp_path: Path) -> Iterator[Janus]:
    j = Janus(tmp_path / "janus").start()
    yield j
    j.stop()


def ours(mps: list[dict], mount: str) -> list[dict]:
    return [m for m in mps if m["description"].startswith(f"framecast /{mount} from ")]


def serve(clips: dict[str, Path], janus: Janus, artifacts: Path, *extra: str) -> Server:
    return start_server([clips["main"], clips["high"]], artifacts,
                        ["--janus", janus.url, *extra])


def test_mountpoints_made_removed_and_leftovers_replaced(clips: dict[str, Path], janus: Janus,
                                                         artifacts_dir: Path) -> None:
    server = serve(clips, janus, artifacts_dir)
    try:
        # feed = auto: Janus pulls /main over RTSP; /high (High, B-frames) is pushed as RTP,
        # transcoded once, since a browser could not play it as it is
        mps = janus.wait_mountpoints(
            lambda m: len(ours(m, "main")) == 1 and len(ours(m, "high")) == 1)
        first = ours(mps, "main")[0]["id"]
        streams = {s["name"]: s for s in server.streams()}
        deadline = time.monotonic() + 10
        while not streams["main"]["edges"] or not streams["main"]["edges"][0]["up"]:
            assert time.monotonic() < deadline, streams["main"]
            time.sleep(0.3)
            streams = {s["name"]: s for s in server.streams()}
        assert streams["main"]["edges"] == [{"kind": "janus", "url": janus.url, "feed": "rtsp",
                                             "mountpoint": first, "up": True}]
        assert [e["feed"] for e in streams["high"]["edges"]] == ["rtp"]
        # a crash leaves the mountpoint behind ...
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        assert [m["id"] for m in ours(janus.mountpoints(), "main")] == [first]
    finally:
        stop_server(server)
    # ... the next run (same origin) replaces it: one mountpoint, a new one
    server = serve(clips, janus, artifacts_dir, "--rtsp-port", str(server.rtsp_port))
    try:
        mps = janus.wait_mountpoints(
            lambda m: [x["id"] for x in ours(m, "main")] not in ([], [first]))
        assert len(ours(mps, "main")) == 1
    finally:
        stop_server(server)
    # a clean stop removes everything it made
    assert janus.mountpoints() == []
    assert "Traceback" not in server.log()


def test_janus_down_and_back(clips: dict[str, Path], janus: Janus, artifacts_dir: Path) -> None:
    server = serve(clips, janus, artifacts_dir, "--janus-feed", "rtsp")
    try:
        janus.wait_mountpoints(lambda m: len(ours(m, "main")) == 1)
        # High profile with B-frames: Janus would relay it as is, so not with feed = rtsp
        assert "/high not published with feed = \"rtsp\"" in server.log()
        assert ours(janus.mountpoints(), "high") == []
        janus.kill()
        time.sleep(5)  # a couple of polls and retries while it is down
        assert server.alive() and [s["name"] for s in server.streams()] == ["main", "high"]
        log = server.log()
        assert log.count("down (") == 1, log
        janus.start()  # same port, empty: a restarted edge
        mps = janus.wait_mountpoints(lambda m: len(ours(m, "main")) == 1, timeout=20)
        assert len(mps) == 1
        assert "back; mountpoints recreated" in server.log()
    finally:
        stop_server(server)


def test_reader_through_janus_gets_every_frame_with_its_metadata(
        clips: dict[str, Path], janus: Janus, artifacts_dir: Path) -> None:
    import framecast
    from framecast.pixelindex import read_index

    server = serve(clips, janus, artifacts_dir)
    try:
        mp = janus.wait_mountpoints(lambda m: len(ours(m, "main")) == 1)
        port = janus.port
        for target in ("main", str(ours(mp, "main")[0]["id"])):  # by mount name or by id
            with framecast.open(f"janus://127.0.0.1:{port}/{target}", decode=True,
                                timeout=20) as reader:
                frames = [f for _, f in zip(range(45), reader, strict=False)]
            assert len(frames) == 45
            assert all(f.metadata for f in frames)
            seqs = [f.metadata[0]["seq"] for f in frames]
            assert [b - a for a, b in zip(seqs, seqs[1:], strict=False)] == [1] * 44, seqs
            assert all(read_index(f.image) == s % 60 for f, s in zip(frames, seqs, strict=True))
        with pytest.raises(Exception, match="no mountpoint for /nope"):
            with framecast.open(f"janus://127.0.0.1:{port}/nope", timeout=5) as reader:
                next(iter(reader))
    finally:
        stop_server(server)


def test_rtp_feed_sends_every_mount_transcoded_once_where_browsers_need_it(
        clips: dict[str, Path], janus: Janus, artifacts_dir: Path) -> None:
    import framecast
    from framecast.pixelindex import read_index

    server = serve(clips, janus, artifacts_dir, "--janus-feed", "rtp")
    try:
        # the High/B-frame mount too: it reaches Janus as constrained baseline
        mps = janus.wait_mountpoints(
            lambda m: len(ours(m, "main")) == 1 and len(ours(m, "high")) == 1)
        assert len(mps) == 2
        for mount in ("high", "main"):
            with framecast.open(f"janus://127.0.0.1:{janus.port}/{mount}", decode=True,
                                timeout=20) as reader:
                frames = [f for _, f in zip(range(45), reader, strict=False)]
            assert all(f.metadata for f in frames), mount
            seqs = [f.metadata[0]["seq"] for f in frames]
            assert [b - a for a, b in zip(seqs, seqs[1:], strict=False)] == [1] * 44, seqs
            assert all(read_index(f.image) == s % 60 for f, s in zip(frames, seqs, strict=True))
        edges = {s["name"]: s["edges"] for s in server.streams()}
        assert [e["feed"] for e in edges["high"]] == ["rtp"] and edges["high"][0]["up"]
        # framecast's own WebRTC side has no viewer: the feed is the edge's own producer
        assert server.webrtcbins() == 0
    finally:
        stop_server(server)
    assert janus.mountpoints() == []


def test_config_file_edge_with_api_secret(clips: dict[str, Path], tmp_path: Path,
                                          artifacts_dir: Path) -> None:
    janus = Janus(tmp_path / "secret-janus", api_secret="s3cret").start()
    try:
        for secret, works in (("wrong", False), ("s3cret", True)):
            cfg = tmp_path / f"{secret}.toml"
            cfg.write_text(f'[mounts.main]\nfile = "{clips["main"]}"\n\n[edge.janus]\n'
                           f'url = "{janus.url}"\napi_secret = "{secret}"\n')
            server = start_server([], artifacts_dir, ["--config", str(cfg)])
            try:
                if works:
                    janus.wait_mountpoints(lambda m: len(ours(m, "main")) == 1)
                else:
                    time.sleep(3)
                    assert janus.mountpoints() == []
                    lines = [x for x in server.log().splitlines() if "down (" in x]
                    assert len(lines) == 1 and "Unauthorized" in lines[0], server.log()
                    assert server.alive()
            finally:
                stop_server(server)
        assert janus.mountpoints() == []
    finally:
        janus.stop()


def test_relay_on_the_edge_comes_back_after_its_camera(clips: dict[str, Path], janus: Janus,
                                                       tmp_path: Path,
                                                       artifacts_dir: Path) -> None:
    """A relayed camera (profile unknown: transcoded, RTP feed) that goes away past its grace
    and comes back: the edge's video comes back without anyone touching Janus."""
    from ports import free_port

    cam_port = free_port()
    cam_cmd = [*SERVE, str(clips["main"]), "--rtsp-port", str(cam_port), "--no-http"]
    camera = subprocess.Popen(cam_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = tmp_path / "relay.toml"
    cfg.write_text(f'[mounts.cam]\nsource = "rtsp://127.0.0.1:{cam_port}/main"\n'
                   'relay_grace = 2\nrelay_timeout = 1\nrelay_retry_max = 2\n\n'
                   f'[edge.janus]\nurl = "{janus.url}"\n')
    server = start_server([], artifacts_dir, ["--config", str(cfg)])

    def edge_up() -> bool:
        return bool(server.streams()[0]["edges"][0]["up"])

    try:
        assert wait_for(edge_up, 40), server.log()
        assert server.streams()[0]["edges"][0]["feed"] == "rtp"
        camera.kill()
        camera.wait(10)
        assert wait_for(lambda: not edge_up(), 30), server.log()
        time.sleep(12)  # past the grace and the feed's stall limit: the feed is rebuilt
        camera = subprocess.Popen(cam_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(edge_up, 60), server.log()
        import framecast

        with framecast.open(f"janus://127.0.0.1:{janus.port}/cam", timeout=20) as reader:
            frames = [f for _, f in zip(range(10), reader, strict=False)]
        assert len(frames) == 10 and all(f.metadata for f in frames)
        assert server.alive()
    finally:
        stop_server(server)
        camera.kill()
        camera.wait(10)


def wait_for(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except (OSError, ValueError, KeyError, IndexError):
            pass
        time.sleep(0.5)
    return False


def test_websocket_api_url(clips: dict[str, Path], tmp_path: Path, artifacts_dir: Path) -> None:
    """framecast drives Janus over its WebSocket transport just as over HTTP, restarts too."""
    janus = Janus(tmp_path / "ws-janus", ws=True).start()
    server = start_server([clips["main"]], artifacts_dir, ["--janus", janus.ws_url])
    try:
        first = janus.wait_mountpoints(lambda m: len(ours(m, "main")) == 1)
        assert wait_for(lambda: server.streams()[0]["edges"][0]["up"], 20), server.log()
        janus.kill()
        janus.start()
        mps = janus.wait_mountpoints(lambda m: len(ours(m, "main")) == 1, timeout=20)
        assert mps[0]["id"] != first[0]["id"]  # a new socket, a new session, made again
        stop_server(server)
        assert janus.mountpoints() == []  # a clean stop removed it, over the WebSocket
    finally:
        stop_server(server)
        janus.stop()


def test_audio_reaches_the_edge_as_opus(tmp_path: Path, janus: Janus,
                                        artifacts_dir: Path) -> None:
    """A mount's audio through Janus: Opus as the mount has it (Janus pulls the RTSP), AAC as
    the Opus framecast encodes once (the mount is then fed as RTP: Janus would hand AAC to
    browsers that cannot play it). A janus:// reader hears the file's 440 Hz tone from both."""
    from audio_helpers import chunks_peak_hz

    import framecast
    from framecast.gst.clips import make_clip

    clips = [make_clip(tmp_path / f"{a}tone.mp4", frames=60, profile="main", audio=a)
             for a in ("aac", "opus")]
    server = start_server(clips, artifacts_dir, ["--janus", janus.url])
    try:
        janus.wait_mountpoints(lambda m: len(ours(m, "aactone")) == len(ours(m, "opustone")) == 1)
        assert wait_for(lambda: all(s["edges"][0]["up"] for s in server.streams()), 30), \
            server.log()
        feeds = {s["name"]: s["edges"][0]["feed"] for s in server.streams()}
        assert feeds == {"aactone": "rtp", "opustone": "rtsp"}, feeds
        for mount in ("aactone", "opustone"):
            loud = []
            with framecast.open(f"janus://127.0.0.1:{janus.port}/{mount}", audio=True,
                                timeout=20) as reader:
                for _, item in zip(range(400), reader, strict=False):
                    if isinstance(item, framecast.AudioChunk) and \
                            float(abs(item.samples).max()) > 0.1:
                        loud.append(item)
                        if len(loud) >= 40:
                            break
            assert len(loud) >= 20, f"/{mount}: {len(loud)} chunks with sound"
            assert loud[0].rate == 48000
            assert abs(chunks_peak_hz(loud) - 440) < 10, mount
            # video only: the audio Janus offers anyway is drained, frames keep coming
            with framecast.open(f"janus://127.0.0.1:{janus.port}/{mount}",
                                timeout=20) as reader:
                frames = [f for _, f in zip(range(20), reader, strict=False)]
            assert len(frames) == 20 and all(f.metadata for f in frames)
    finally:
        stop_server(server)
