"""Browser tests: Debian's Chromium under Playwright against a real ``framecast serve``.

They must run inside ``tools/netns-run`` (Chromium gathers no usable ICE candidate on ``lo``
alone, and no packet may leave the machine): the Makefile runs the whole suite there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Server,
    in_private_netns,
    start_server,
    stop_server,
)
from playwright.sync_api import Browser, sync_playwright


@pytest.fixture(scope="session", autouse=True)
def _require_netns() -> None:
    assert in_private_netns(), (
        "browser tests need the private network namespace: "
        "tools/netns-run .venv/bin/python -m pytest tests/browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # per module: Playwright's sync API runs an asyncio loop on the main thread while it is
    # open, and the other directories' tests (run after these) call asyncio.run()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def clips_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def index_clip(clips_dir: Path) -> Path:
    """2 s, 60 frames, Main profile without B-frames (Chromium decodes it: passthrough)."""
    from framecast.gst.clips import make_clip

    return make_clip(clips_dir / "idx.mp4", codec="h264", frames=60, fps=30, width=320,
                     height=240, profile="main", bframes=0, gop=30)


@pytest.fixture(scope="module")
def index_server(index_clip: Path, artifacts_dir: Path) -> Iterator[Server]:
    server = start_server([index_clip], artifacts_dir)
    yield server
    stop_server(server)
