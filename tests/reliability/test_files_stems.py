"""Two files with one stem (a/clip.mp4 b/clip.mkv): both served, the later one as /clip-2,
with one warning line; the server does not exit."""

from __future__ import annotations

from pathlib import Path

import pytest
from ports import free_port
from relay_helpers import Serve, healthy_plays

from framecast.gst.clips import make_clip

pytestmark = pytest.mark.timeout(60)


def test_same_stem_served_under_distinct_names(tmp_path: Path) -> None:
    a = make_clip(tmp_path / "a" / "clip.mp4", frames=60, gop=15)
    b = make_clip(tmp_path / "b" / "clip.mkv", container="mkv", frames=60, gop=15)
    server = Serve([str(a), str(b), str(a)], free_port(), tmp_path / "serve.log")
    try:
        server.start(expect_urls=2)
        assert server.urls == [server.url("clip"), server.url("clip-2")]
        assert len(server.lines("serving it as /clip-2")) == 1, server.log()
        assert len(server.lines("already served at /clip")) == 1, server.log()
        healthy_plays(server.url("clip"))
        healthy_plays(server.url("clip-2"))
        assert server.alive
    finally:
        assert server.stop() == 0
