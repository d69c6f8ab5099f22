"""Chromium viewers through a real Janus edge (own process, generated config): every frame
keeps its SEI through Janus, so the overlay is as frame-synced as for direct viewers."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import INDEX_FRAMES, Server, decode_sample, start_server, stop_server
from playwright.sync_api import Browser, Page

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from janus_harness import Janus  # noqa: E402

from framecast.pixelindex import read_index  # noqa: E402

pytestmark = pytest.mark.browser

VIEWERS = 10


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Janus]]:
    """Two Janus edges at once."""
    js = [Janus(tmp_path_factory.mktemp("janus")).start() for _ in range(2)]
    yield js
    for j in js:
        j.stop()


@pytest.fixture(scope="module")
def janus(edges: list[Janus]) -> Janus:
    return edges[0]


@pytest.fixture(scope="module")
def high_clip(clips_dir: Path) -> Path:
    """The index picture in High profile with B-frames: reaches Janus transcoded (rtp feed)."""
    from framecast.gst.clips import make_clip

    return make_clip(clips_dir / "idxhigh.mp4", codec="h264", frames=60, fps=30, width=320,
                     height=240, profile="high", bframes=2, gop=30)


@pytest.fixture(scope="module")
def edge_server(index_clip: Path, high_clip: Path, edges: list[Janus],
                artifacts_dir: Path) -> Iterator[Server]:
    server = start_server([index_clip, high_clip], artifacts_dir,
                          [a for j in edges for a in ("--janus", j.url)])
    yield server
    stop_server(server)


def ours(mps: list[dict], mount: str = "idx") -> list[dict]:
    return [m for m in mps if m["description"].startswith(f"framecast /{mount} from ")]


def wait_edges_up(server: Server, mount: str = "idx", n: int = 2,
                  timeout: float = 30) -> list[dict]:
    """The mount's Janus edges as /api/streams lists them, once viewers can join all ``n``."""
    deadline = time.monotonic() + timeout
    while True:
        edges = {s["name"]: s["edges"] for s in server.streams()}[mount]
        if len(edges) == n and all(e["up"] for e in edges):
            return edges
        assert time.monotonic() < deadline, f"edges never up: {edges}\n{server.log()}"
        time.sleep(0.3)


def open_janus_viewer(page: Page, server: Server, query: str = "", mount: str = "idx") -> None:
    page.on("pageerror", lambda e: print(f"pageerror: {e}"))
    page.goto(f"{server.base}/?stream={mount}&via=janus{query}")


def wait_playing(page: Page, server: Server, frames: int = 30, timeout_ms: int = 60000) -> None:
    try:
        page.wait_for_function(
            f"window.framecast.presented.length >= {frames}", timeout=timeout_ms)
    except Exception:
        state = page.evaluate("({state: window.framecast.state, errors: window.framecast.errors,"
                              " streams: window.framecast.streams})")
        raise AssertionError(f"no frames through Janus: {state}\n{server.log()}") from None


def test_ten_viewers_through_two_janus_edges_get_metadata_on_every_frame(
        browser: Browser, edge_server: Server, edges: list[Janus]) -> None:
    wait_edges_up(edge_server, "idx")
    wait_edges_up(edge_server, "idxhigh")
    # a context each: janus.js long-polls over HTTP, and one context's 6 connections per host
    # would be held by 6 pages' polls (real viewers each have their own browser)
    contexts = [browser.new_context() for _ in range(VIEWERS)]
    try:
        pages = []
        for i, context in enumerate(contexts):
            page = context.new_page()
            # pages 0 and 8 sample pictures: the overlay's seq against the index in pixels;
            # 8 and 9 play the High/B-frame mount (transcoded once by framecast, RTP feed)
            sample = "&sample=7&samples=20" if i in (0, 8) else ""
            open_janus_viewer(page, edge_server, f"&edge={i % 2}{sample}",
                              "idxhigh" if i >= 8 else "idx")
            pages.append(page)
        for page in pages:
            wait_playing(page, edge_server)
        # spread over both edges as the links asked
        assert {p.evaluate("window.framecast.edge") for p in pages} == {j.url for j in edges}
        assert edge_server.webrtcbins() == 0  # none of them is framecast's own viewer
        before = [page.evaluate("[performance.now(), window.framecast.received, "
                                "window.framecast.receivedWithMetadata]") for page in pages]
        time.sleep(3)
        for page, (t0, rx0, md0) in zip(pages, before, strict=True):
            presented, rx, md = page.evaluate(
                "t0 => [window.framecast.presented.filter(p => p.t >= t0), "
                "window.framecast.received, window.framecast.receivedWithMetadata]", t0)
            # every frame Janus delivered (~30 fps) carried our SEI ...
            assert rx - rx0 >= 75, (rx0, rx)
            assert md - md0 >= 0.99 * (rx - rx0), (rx - rx0, md - md0)
            # ... and the overlay had it for the frames presented (10 pages on 2 cores present
            # fewer than they receive)
            assert len(presented) >= 5, len(presented)
            matched = sum(p["matched"] for p in presented)
            assert matched >= 0.95 * len(presented), f"{matched}/{len(presented)}"
            seqs = [p["seq"] for p in presented if p["matched"]]
            assert all(b > a for a, b in zip(seqs, seqs[1:], strict=False)), seqs
        for page in (pages[0], pages[8]):
            page.wait_for_function("window.framecast.samples.length >= 20", timeout=30000)
            page.wait_for_timeout(300)
            samples = page.evaluate("window.framecast.samples")
            drawn = [(s["drawnSeq"], read_index(decode_sample(s))) for s in samples]
            assert all(seq is not None for seq, _ in drawn), drawn
            wrong = [(q, px) for q, px in drawn if q % INDEX_FRAMES != px % INDEX_FRAMES]
            assert not wrong, wrong
            assert len({px for _, px in drawn}) >= 10  # a frozen picture would prove nothing
            same = [s for s in samples if s["drawnRtp"] == s["rtp"]]
            assert all(s["seq"] == s["drawnSeq"] for s in same)
    finally:
        for context in contexts:
            context.close()


def test_janus_restarted_viewers_come_back_and_join_again(
        browser: Browser, edge_server: Server, janus: Janus) -> None:
    first = janus.wait_mountpoints(lambda m: len(ours(m)) == 1)
    wait_edges_up(edge_server)
    watching = browser.new_context().new_page()
    try:
        open_janus_viewer(watching, edge_server, "&edge=0")
        wait_playing(watching, edge_server)
        janus.kill()
        watching.wait_for_function("window.framecast.message !== null", timeout=30000)
        assert "retrying" in watching.evaluate("window.framecast.message")
        janus.start()
        mps = janus.wait_mountpoints(lambda m: len(ours(m)) == 1, timeout=20)
        assert ours(mps)[0]["id"] != ours(first)[0]["id"]
        assert len(mps) == 2  # idx and idxhigh, nothing else
        assert wait_edges_up(edge_server)[0]["mountpoint"] == ours(mps)[0]["id"]
        # the page that was watching plays again by itself, on the new mountpoint
        t0 = watching.evaluate("performance.now()")
        watching.wait_for_function(
            f"window.framecast.presented.filter(p => p.t > {t0} && p.matched).length >= 30",
            timeout=60000)
        assert watching.evaluate("window.framecast.message") is None
        # and a new viewer joins
        page = browser.new_page()
        try:
            open_janus_viewer(page, edge_server, "&edge=0")
            wait_playing(page, edge_server)
            assert page.evaluate("window.framecast.presented.slice(-20).every(p => p.matched)")
        finally:
            page.close()
    finally:
        watching.context.close()
    assert edge_server.alive()


def test_viewer_through_janus_hears_the_mounts_audio(browser: Browser, janus: Janus,
                                                     clips_dir: Path,
                                                     artifacts_dir: Path) -> None:
    """An AAC mount through Janus: the edge gets framecast's one Opus encode (RTP feed), and
    the viewer plays it (real sound, not packets of silence) beside the video."""
    from framecast.gst.clips import make_clip

    clip = make_clip(clips_dir / "jaac.mp4", frames=60, profile="main", audio="aac")
    server = start_server([clip], artifacts_dir, ["--janus", janus.url])
    page = browser.new_page()
    try:
        (edge,) = wait_edges_up(server, "jaac", n=1)
        assert edge["feed"] == "rtp"
        open_janus_viewer(page, server, "&muted=0", "jaac")
        wait_playing(page, server, frames=10)
        page.wait_for_function("window.framecast.audio.tracks >= 1", timeout=15000)
        deadline = time.monotonic() + 20
        while True:
            stats = page.evaluate("window.framecast.audioStats()")
            if (stats and stats["energy"] > 0.05 and stats["packets"] > 50) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert stats and stats["energy"] > 0.05 and stats["packets"] > 50, stats
        assert page.evaluate("window.framecast.edge") == janus.url
        assert server.webrtcbins() == 0  # heard through Janus, not from framecast itself
    finally:
        page.close()
        stop_server(server)
