"""Audio over WebRTC in real Chromium: AAC (transcoded once per mount) and Opus (as it is)
mounts are heard, WHEP offers with audio get it, viewers share one encoder, lip sync holds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import browser_audio
import pytest
from browser_audio import WHEP_AUDIO_JS
from browser_helpers import Server, open_viewer, start_server, stop_server
from playwright.sync_api import Browser, Page

from framecast.gst.clips import make_clip

pytestmark = pytest.mark.browser

# ITU-R BT.1359: A/V offsets within +-45 ms are not detectable. Chromium holds that from the
# first frame and after 20 loops with two things: the viewer's alignment (alignAudio in
# web/src/main.ts: Chromium's audio starts ~80 ms behind its video, and its own sync stops
# 30-50 ms short) and sender reports that stay exact across loop points
# (timestamps.single_segment: one report a loop off threw Chromium's sync by up to 500 ms).
# What the server sends is checked to one Opus frame (20 ms) by an RTP receiver that follows
# the sender reports (tests/integration/test_reader_webrtc_audio.py).
SYNC_MS = 45
LIP_FPS = 30  # the lip-sync clip: 1 s loops, one flash + beep per loop (frame 15)


@pytest.fixture(scope="module")
def audio_server(clips_dir: Path, artifacts_dir: Path) -> Iterator[Server]:
    clips = [make_clip(clips_dir / f"{a}tone.mp4", frames=60, profile="main", audio=a)
             for a in ("aac", "opus")]
    clips.append(make_clip(clips_dir / "lipsync.mp4", frames=LIP_FPS, fps=LIP_FPS,
                           profile="main", audio="aac", flash_every=LIP_FPS))
    server = start_server(clips, artifacts_dir)
    yield server
    stop_server(server)


def _heard(page: Page, energy: float = 0.05, timeout: float = 20) -> dict | None:
    """The viewer's inbound audio stats once its energy passed ``energy`` (or at timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = page.evaluate("window.framecast.audioStats()")
        if (stats and stats["energy"] > energy and stats["packets"] > 50) \
                or time.monotonic() > deadline:
            return stats
        time.sleep(0.5)


def _stream(server: Server, name: str) -> dict:
    return next(s for s in server.streams() if s["name"] == name)


@pytest.mark.parametrize(("mount", "mode", "query"), [
    ("aactone", "transcoded", "muted=0"),  # gstwebrtc-api session (signalling)
    ("opustone", "passthrough", "muted=0"),
    ("aactone", "transcoded", "muted=0&whep=1"),  # the viewer's WHEP mode
])
def test_viewer_plays_the_mounts_audio(browser: Browser, audio_server: Server, mount: str,
                                       mode: str, query: str) -> None:
    s = _stream(audio_server, mount)
    assert s["webrtc"]["audio"] == mode and s["webrtc"]["audio_codec"] == "opus", s
    page = open_viewer(browser, audio_server, mount, query=query)
    try:
        page.wait_for_function("window.framecast.audio.tracks >= 1", timeout=15000)
        # real sound: energy grows (a 440 Hz tone at -2 dBFS), not just packets of silence
        stats = _heard(page)
        assert stats and stats["energy"] > 0.05 and stats["packets"] > 50, stats
        assert stats["level"] > 0.1, stats
        assert page.evaluate("window.framecast.audio.muted") is False
        assert page.is_visible("#unmute")
        assert page.text_content("#audio").startswith("Opus")
    finally:
        page.close()


def test_viewer_starts_muted_with_an_unmute_button(browser: Browser,
                                                   audio_server: Server) -> None:
    page = open_viewer(browser, audio_server, "opustone")
    try:
        page.wait_for_function("window.framecast.audio.tracks >= 1", timeout=15000)
        assert page.evaluate("document.getElementById('video').muted") is True
        page.click("#unmute")
        assert page.evaluate("document.getElementById('video').muted") is False
        assert "mute" in page.text_content("#unmute")
    finally:
        page.close()


def _audio_section(answer: str) -> str:
    return answer[answer.index("m=audio"):] if "m=audio" in answer else ""


def test_whep_offer_with_audio_gets_opus(browser: Browser, audio_server: Server) -> None:
    page = browser.new_page()
    try:
        page.goto(audio_server.base + "/")
        [got] = page.evaluate(WHEP_AUDIO_JS, ["aactone", 1])
        assert got["status"] == 201, got
        audio = _audio_section(got["answer"])
        assert "OPUS/48000/2" in audio.upper() and "a=sendonly" in audio, got["answer"]
        assert got["audio"] and got["audio"]["energy"] > 0.02, got["audio"]
    finally:
        page.close()
    assert audio_server.wait_webrtcbins(0, timeout=40) == 0


def test_twenty_viewers_share_one_audio_transcode(browser: Browser,
                                                  audio_server: Server) -> None:
    n = 20
    page = browser.new_page()
    try:
        page.goto(audio_server.base + "/")
        got = page.evaluate(WHEP_AUDIO_JS, ["aactone", n])
        assert [g["status"] for g in got] == [201] * n
        silent = [g["audio"] for g in got if not (g["audio"] and g["audio"]["energy"] > 0.02)]
        assert not silent, f"{len(silent)} of {n} viewers heard nothing: {silent[:3]}"
        w = _stream(audio_server, "aactone")["webrtc"]
        assert (w["audio_viewers"], w["viewers"]) == (n, n)
        assert w["audio_encoders"] == 1, w  # AAC → Opus once for the mount, not per viewer
    finally:
        page.close()
    assert audio_server.wait_webrtcbins(0, timeout=60) == 0


def test_lip_sync_at_start_and_after_twenty_loops(browser: Browser, audio_server: Server) -> None:
    """A white frame and a beep of the same instant (AAC, transcoded) are presented by Chromium
    together, as the viewer plays them: the first flash, and the median over loops 21-27."""
    page = browser.new_page()
    try:
        page.goto(audio_server.base + "/")
        got = browser_audio.measure(page, "lipsync", 28)
    finally:
        page.close()
    offs = browser_audio.offsets(got)
    late = [o for t, o in offs if t >= 21]
    report = f"offsets (s, ms) {[(round(t), round(o)) for t, o in offs]}, {got['stats']}"
    print(report)
    assert len(offs) >= 20 and len(late) >= 4, f"flashes/beeps not found: {report}"
    first_t, first = offs[0]
    assert first_t < 3 and abs(first) <= SYNC_MS, f"at start: {report}"
    assert abs(statistics.median(late)) <= SYNC_MS, f"after 20 loops: {report}"
