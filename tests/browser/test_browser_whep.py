"""WHEP from real Chromium: a scripted RTCPeerConnection, and the viewer's ?whep=1 mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import INDEX_FRAMES, WHEP_POST_JS, Server, decode_sample, open_viewer
from playwright.sync_api import Browser

from framecast.pixelindex import read_index

pytestmark = pytest.mark.browser

# Offer (all candidates in it) → POST → 201 + answer + Location; play until 30 frames decode.
WHEP_JS = """
async ([mount]) => {""" + WHEP_POST_JS + """
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("video", {direction: "recvonly"});
  const track = new Promise(r => pc.addEventListener("track", e => r(e.track)));
  const {res, answer} = await whepPost(pc, mount);
  const out = {status: res.status, location: res.headers.get("Location"),
               contentType: res.headers.get("Content-Type"), answer};
  if (res.status !== 201) return out;
  await pc.setRemoteDescription({type: "answer", sdp: answer});
  const video = document.createElement("video");
  video.muted = true; video.autoplay = true;
  document.body.append(video);
  video.srcObject = new MediaStream([await track]);
  await video.play();
  const t0 = performance.now();
  let decoded = 0;
  while (performance.now() - t0 < 20000) {
    const stats = await pc.getStats();
    stats.forEach(s => { if (s.type === "inbound-rtp" && s.kind === "video")
                           decoded = s.framesDecoded; });
    if (decoded >= 30) break;
    await new Promise(r => setTimeout(r, 200));
  }
  window.__whep = {pc, location: out.location};
  return {...out, decoded, width: video.videoWidth, connection: pc.connectionState};
}
"""


def test_whep_round_trip_with_a_scripted_peer_connection(
        browser: Browser, index_server: Server) -> None:
    mount = index_server.mounts[0]
    page = browser.new_page()
    try:
        page.goto(index_server.base + "/")
        got = page.evaluate(WHEP_JS, [mount])
        assert got["status"] == 201, got
        assert got["location"], "201 without a Location header"
        assert (got["contentType"] or "").startswith("application/sdp")
        assert "m=video" in got["answer"] and "a=candidate:" in got["answer"]
        assert got["connection"] == "connected"
        assert got["decoded"] >= 30, f"only {got['decoded']} frames decoded"
        assert got["width"] == 320
        assert index_server.webrtcbins() == 1

        status = page.evaluate(
            "async () => (await fetch(window.__whep.location, {method: 'DELETE'})).status")
        assert status in (200, 204)
        assert index_server.wait_webrtcbins(0) == 0
        # The resource is gone: a second DELETE is a 404, not a crash.
        status = page.evaluate(
            "async () => (await fetch(window.__whep.location, {method: 'DELETE'})).status")
        assert status == 404
    finally:
        page.close()
    assert index_server.wait_webrtcbins(0) == 0


@pytest.mark.parametrize(("path", "body", "expected"), [
    ("/whep/no-such-mount", "v=0\r\n", 404),
    ("/whep/{mount}", "this is not SDP", 400),
], ids=["unknown-mount", "garbage-offer"])
def test_whep_rejects_bad_requests_with_a_status(
        browser: Browser, index_server: Server, path: str, body: str, expected: int) -> None:
    page = browser.new_page()
    try:
        page.goto(index_server.base + "/")
        status = page.evaluate(
            "async ([p, b]) => (await fetch(p, {method: 'POST', "
            "headers: {'Content-Type': 'application/sdp'}, body: b})).status",
            [path.format(mount=index_server.mounts[0]), body])
        assert status == expected
        assert index_server.alive()
        assert index_server.webrtcbins() == 0
    finally:
        page.close()


def test_viewer_in_whep_mode_shows_frame_synced_metadata(
        browser: Browser, index_server: Server, artifacts_dir: Path) -> None:
    mount = index_server.mounts[0]
    page = open_viewer(browser, index_server, mount, query="whep=1&sample=9&samples=15")
    try:
        page.wait_for_function("window.framecast.samples.length >= 15", timeout=30000)
        page.wait_for_timeout(300)  # metadata of the last captured picture may be in flight
        page.screenshot(path=str(artifacts_dir / "viewer-whep.png"))
        samples = page.evaluate("window.framecast.samples")
        for s in samples:
            assert s["drawnSeq"] is not None
            assert s["drawnSeq"] % INDEX_FRAMES == read_index(decode_sample(s)) % INDEX_FRAMES
        assert index_server.webrtcbins() == 1
        page.evaluate("window.framecast.stop()")  # DELETEs the WHEP resource
        assert index_server.wait_webrtcbins(0) == 0
    finally:
        page.close()
