"""The viewer in real Chromium: plays a mount over WebRTC (gstwebrtc-api + our signalling), reads
the SEI in a worker and shows the metadata of the frame on screen."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import (
    INDEX_FRAMES,
    Server,
    decode_sample,
    open_viewer,
    page_now,
    presented_since,
    start_server,
    stop_server,
)
from playwright.sync_api import Browser

from framecast.pixelindex import read_index

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_server(artifacts_dir: Path) -> Iterator[Server]:
    """``framecast serve`` with no files: the built-in demo mount."""
    server = start_server([], artifacts_dir, timeout=180)  # first run encodes the demo clip
    yield server
    stop_server(server)


def test_demo_mount_plays_with_metadata_on_95_percent_of_frames(
        browser: Browser, demo_server: Server, artifacts_dir: Path) -> None:
    mount = demo_server.mounts[0]
    page = open_viewer(browser, demo_server, mount)
    try:
        t0 = page_now(page)
        page.wait_for_timeout(5000)
        frames = presented_since(page, t0)
        page.screenshot(path=str(artifacts_dir / "viewer-demo.png"))

        assert len(frames) >= 60, f"only {len(frames)} frames presented in 5 s"
        matched = [f for f in frames if f["matched"]]
        coverage = len(matched) / len(frames)
        assert coverage >= 0.95, f"metadata on {coverage:.1%} of {len(frames)} presented frames"
        # Presented frames advance and their seq stamps advance with them.
        rtps = [f["rtp"] for f in frames]
        assert len(set(rtps)) == len(rtps), "a presented frame was reported twice"
        seqs = [f["seq"] for f in matched]
        assert all(isinstance(s, int) for s in seqs)
        assert sum(b > a for a, b in zip(seqs, seqs[1:], strict=False)) >= 0.9 * (len(seqs) - 1)
        # Glass-to-glass latency from wallclock_ns: the server shares this clock.
        lat = [f["latencyMs"] for f in matched]
        assert all(-50 < x < 5000 for x in lat), f"latency out of range: {min(lat)}..{max(lat)}"

        shown = json.loads(page.inner_text("#metadata"))
        assert {"seq", "loop", "pts_ns", "wallclock_ns"} <= shown.keys()
        assert page.evaluate("window.framecast.stats.fps") > 10
        assert page.inner_text("#latency").endswith("ms")
        names = page.eval_on_selector_all("#streams button", "bs => bs.map(b => b.dataset.stream)")
        assert mount in names
        assert page.evaluate("window.framecast.parseErrors.length") == 0
    finally:
        page.close()


def test_overlay_seq_matches_the_frame_index_drawn_in_pixels(
        browser: Browser, index_server: Server, artifacts_dir: Path) -> None:
    """Each sampled frame is drawn (inside its requestVideoFrameCallback) and its pixel index is
    read in Python: the metadata the page picked for that frame must carry the same index."""
    mount = index_server.mounts[0]
    page = open_viewer(browser, index_server, mount, query="sample=7&samples=40", frames=10)
    try:
        page.wait_for_function("window.framecast.samples.length >= 40", timeout=30000)
        page.wait_for_timeout(300)  # metadata of the last captured picture may be in flight
        page.screenshot(path=str(artifacts_dir / "viewer-index.png"))
        samples = page.evaluate("window.framecast.samples")
    finally:
        page.close()
    assert len(samples) >= 40
    # 1. The metadata stored under the captured picture's own RTP timestamp carries the index
    #    drawn in that picture: on every sample, no tolerance.
    drawn = [(s["drawnSeq"], read_index(decode_sample(s)), s["drawnRtp"]) for s in samples]
    assert all(rtp is not None for _, _, rtp in drawn), "VideoFrame gave no rtpTimestamp"
    missing = [d for d in drawn if d[0] is None]
    assert not missing, f"{len(missing)} of {len(drawn)} captured pictures had no metadata"
    wrong = [(seq, px) for seq, px, _ in drawn if seq % INDEX_FRAMES != px % INDEX_FRAMES]
    assert not wrong, f"seq vs pixel index differ on {len(wrong)}/{len(drawn)}: {wrong[:8]}"
    # 2. The overlay's seq (metadata of the frame rVFC reported as presented) matches the
    #    picture whenever that frame is still the one on screen when the callback runs.
    same = [s for s in samples if s["drawnRtp"] == s["rtp"]]
    assert len(same) >= len(samples) // 2, f"rVFC lagged on {len(samples) - len(same)} samples"
    overlay_wrong = [(s["seq"], s["drawnSeq"]) for s in same if s["seq"] != s["drawnSeq"]]
    assert not overlay_wrong, f"overlay seq differs from the picture's: {overlay_wrong[:8]}"
    # The samples span many distinct frames (a frozen picture would prove nothing).
    assert len({px for _, px, _ in drawn}) >= 20


def test_worker_parser_reads_msgpack_json_h265_and_ignores_other_uuids(
        browser: Browser, index_server: Server) -> None:
    """The page's SEI parser (the one the worker runs) against access units built in Python."""
    from framecast import metadata, sei

    page = browser.new_page()
    try:
        page.goto(index_server.base + "/")
        page.wait_for_function("window.framecast !== undefined")

        def decode(au: bytes, codec: str | None = None) -> object:
            return page.evaluate("([b, c]) => window.framecast.decodeAU(b, c || undefined)",
                                 [list(au), codec])

        h264_slice = bytes([0x65, 0x88, 0x84, 0x00, 0x33, 0xFF])
        h265_slice = bytes([0x26, 0x01, 0xAF, 0x00, 0x00, 0x03, 0x10])
        md = {"seq": 7, "loop": 1, "pts_ns": 10**9, "wallclock_ns": 1_700_000_000_000_000_000,
              "boxes": [[1, 2, 3, 4, "car"]], "zeros": "\x00\x00\x00\x01"}
        for fmt in ("msgpack", "json"):
            payload = metadata.encode_metadata(md, fmt=fmt)
            au = sei.insert_sei(sei.join_annexb([h264_slice]), "h264",
                                [(metadata.FRAMECAST_UUID, payload)])
            got = decode(au)
            assert isinstance(got, dict) and got["seq"] == 7
            assert got["boxes"] == [[1, 2, 3, 4, "car"]]
            assert got["zeros"] == md["zeros"]  # survived emulation prevention
        au265 = sei.insert_sei(sei.join_annexb([h265_slice]), "h265",
                               [(metadata.FRAMECAST_UUID, metadata.encode_metadata(md))])
        assert decode(au265, "h265")["seq"] == 7
        assert decode(au265)["seq"] == 7  # codec guessed from the NAL headers
        other = sei.insert_sei(sei.join_annexb([h264_slice]), "h264",
                               [(b"\x11" * 16, b"x264 banner"),
                                (metadata.FRAMECAST_UUID, metadata.encode_metadata({"seq": 3}))])
        assert decode(other) == {"seq": 3}
        assert decode(sei.join_annexb([h264_slice])) is None
    finally:
        page.close()


def test_two_viewers_see_the_same_frames_with_the_same_metadata(
        browser: Browser, index_server: Server) -> None:
    """The stream is shared: two pages present the same RTP-matched seq for one picture."""
    mount = index_server.mounts[0]
    a = open_viewer(browser, index_server, mount, query="sample=5&samples=12")
    b = open_viewer(browser, index_server, mount, query="sample=5&samples=12")
    try:
        for page in (a, b):
            page.wait_for_function("window.framecast.samples.length >= 12", timeout=30000)
            page.wait_for_timeout(300)  # metadata of the last captured picture may be in flight
        for page in (a, b):
            for s in page.evaluate("window.framecast.samples"):
                assert s["drawnSeq"] is not None
                px = read_index(decode_sample(s))
                assert s["drawnSeq"] % INDEX_FRAMES == px % INDEX_FRAMES
        assert index_server.webrtcbins() == 2
    finally:
        a.close()
        b.close()
    assert index_server.wait_webrtcbins(0) == 0


def test_page_reports_a_stream_with_no_producer_instead_of_hanging(
        browser: Browser, index_server: Server) -> None:
    page = browser.new_page()
    try:
        page.goto(index_server.base + "/?stream=no-such-mount")
        page.wait_for_function("window.framecast.signalling.startsWith('connected')")
        time.sleep(1)
        # said on the page (tests/browser/test_browser_newcomer.py checks the sentence)
        assert page.evaluate("window.framecast.state") == "not-found"
        assert 'no stream "no-such-mount"' in page.inner_text("#message")
        assert page.evaluate("window.framecast.presented.length") == 0
    finally:
        page.close()


BOX = (40, 60, 100, 80)  # x, y, w, h in video pixels (320x240)

# Overlay canvas pixels: on the box's left edge (mid-height) and at its centre.
OVERLAY_JS = """
([x, y, w, h, vw, vh]) => {
  const c = document.getElementById("overlay");
  const ctx = c.getContext("2d");
  const s = Math.min(c.width / vw, c.height / vh);
  const ox = (c.width - vw * s) / 2, oy = (c.height - vh * s) / 2;
  const px = (X, Y) => Array.from(ctx.getImageData(Math.round(ox + X * s),
                                                   Math.round(oy + Y * s), 1, 1).data);
  return {edge: px(x, y + h / 2), centre: px(x + w / 2, y + h / 2)};
}
"""


def test_sidecar_boxes_in_json_are_drawn_over_the_video(
        browser: Browser, index_clip: Path, tmp_path: Path, artifacts_dir: Path) -> None:
    """A mount configured with a sidecar (one line per presented frame, boxes) and JSON
    payloads: the page decodes JSON, shows the frame's line and draws its box, scaled."""
    sidecar = tmp_path / "boxes.jsonl"
    sidecar.write_text("".join(
        json.dumps({"n": i, "boxes": [[*BOX, f"obj{i}"]]}) + "\n" for i in range(INDEX_FRAMES)))
    config = tmp_path / "framecast.toml"
    config.write_text(f'[mounts.boxes]\nfile = "{index_clip}"\nsidecar = "{sidecar}"\n'
                      'metadata_format = "json"\n')
    server = start_server([], artifacts_dir, extra=["--config", str(config)])
    try:
        page = open_viewer(browser, server, "boxes", frames=30)
        try:
            page.wait_for_timeout(1000)
            page.screenshot(path=str(artifacts_dir / "viewer-boxes.png"))
            formats = page.evaluate("window.framecast.formats")
            assert formats["json"] > 0 and formats["msgpack"] == 0, formats
            shown = json.loads(page.inner_text("#metadata"))
            assert shown["boxes"][0][:4] == list(BOX)
            # The sidecar line of presented frame i is what frame i carries.
            assert shown["n"] == shown["seq"] % INDEX_FRAMES
            assert shown["boxes"][0][4] == f"obj{shown['n']}"
            px = page.evaluate(OVERLAY_JS, [*BOX, 320, 240])
            r, g, b, a = px["edge"]
            assert a > 200 and g > 180 and r < 120 and b < 120, f"no green box edge: {px}"
            assert px["centre"][3] == 0, f"box interior not transparent: {px}"
        finally:
            page.close()
    finally:
        stop_server(server)
