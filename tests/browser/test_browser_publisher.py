"""framecast.Publisher → the browser viewer (Chromium), with no second process: the overlay
shows, for each presented frame, the metadata pushed with that very frame."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from browser_helpers import decode_sample, open_viewer
from playwright.sync_api import Browser

import framecast
from framecast.config import Settings
from framecast.pixelindex import read_index, render_frame

pytestmark = pytest.mark.timeout(180)
W, H, FPS = 320, 240, 30


@dataclass
class _InProcess:
    """What open_viewer needs of a server: its base URL and a log for failures."""

    base: str

    def log(self) -> str:
        return "(in-process Publisher server: see the captured log)"


@pytest.fixture
def publishing() -> Iterator[tuple[Any, _InProcess]]:
    pub = framecast.Publisher("cv", W, H, FPS, gop=15,
                              settings=Settings(rtsp_port=0, http_port=0))
    stop = threading.Event()

    def run() -> None:
        i = 0
        while not stop.wait(1 / FPS):
            pub.push(render_frame(i, W, H), {"boxes": [[8 + i % 200, 30, 60, 40, f"f{i}"]]})
            i += 1

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield pub, _InProcess(pub.server.http_url)
    finally:
        stop.set()
        t.join(5)
        pub.close()


def test_publisher_frames_play_in_the_viewer_with_their_own_boxes(
        browser: Browser, publishing: tuple[Any, _InProcess]) -> None:
    """Sampled pictures (read back from the page) show index i in their pixels; the overlay's
    boxes for that picture are the ones pushed with frame i, and its seq moves with i."""
    pub, server = publishing
    page = open_viewer(browser, server, "cv", query="sample=5&samples=30", frames=10)
    try:
        page.wait_for_function("window.framecast.samples.length >= 30", timeout=40000)
        samples = page.evaluate("window.framecast.samples")
    finally:
        page.close()
    rows = []
    for s in samples:
        px = read_index(decode_sample(s))
        boxes = s["drawnBoxes"] or []
        rows.append((px, boxes[0][4] if boxes else None, s["drawnSeq"]))
    good = [(px, seq) for px, label, seq in rows if label == f"f{px}"]
    assert len(good) >= 0.95 * len(rows), f"boxes of another frame: {rows[:10]}"
    # the stamp seq counts frames from the stream's start: a constant offset from the index
    assert len({seq - px for px, seq in good if seq is not None}) == 1, good[:10]
    assert len({px for px, _ in good}) >= 20  # many frames, not one frozen picture
    # the overlay's boxes are what the frame carried (same RTP timestamp as the callback's)
    same = [s for s in samples if s["drawnRtp"] == s["rtp"]]
    assert all(s["boxes"] == s["drawnBoxes"] for s in same if s["boxes"] is not None)
    assert pub.pushed > 0
