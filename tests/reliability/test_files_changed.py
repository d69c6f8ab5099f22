"""A served file truncated, deleted, replaced or chmod 000 while a client plays it.

Truncated in place: the playing media ends cleanly (EOS) with one log line, the next request
is refused (503) with one line. Deleted, replaced by rename, chmod 000: the playing media goes
on from its open descriptor; once it is gone, the next request reports the problem (or, for a
replacement, serves the new file). Other mounts are never touched.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ports import free_port
from relay_helpers import RtspsrcClient, Serve, describe_status, healthy_plays, wait_until

from framecast.gst.clips import make_clip

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("files-src")
    return (make_clip(tmp / "four.mp4", frames=120, gop=15, audio="aac"),
            make_clip(tmp / "two.mp4", frames=60, gop=15))


@pytest.fixture
def served(tmp_path: Path, sources: tuple[Path, Path]) -> Iterator[tuple[Serve, Path]]:
    clip = tmp_path / "clip.mp4"
    shutil.copy(sources[0], clip)
    other = tmp_path / "other.mp4"
    shutil.copy(sources[1], other)
    server = Serve([str(clip), str(other)], free_port(), tmp_path / "serve.log")
    try:
        server.start(expect_urls=2)
        yield server, clip
    finally:
        os.chmod(clip, 0o644) if clip.exists() else None
        server.stop()


def _playing(server: Serve) -> RtspsrcClient:
    c = RtspsrcClient(server.url("clip")).start()
    assert wait_until(lambda: len(c.video) >= 20, 15), \
        f"clip never played: {len(c.video)} frames, errors {c.poll_errors()}\n" \
        f"{server.log()[-3000:]}"
    return c


def _frames_in(c: RtspsrcClient, seconds: float) -> int:
    before = len(c.video)
    time.sleep(seconds)
    return len(c.video) - before


def _after_leaving(server: Serve, c: RtspsrcClient) -> None:
    c.stop()  # the shared media goes with its last client: the next request builds afresh
    assert wait_until(lambda: len(server.lines("disconnected from /clip")) >= 1, 5)
    time.sleep(0.3)


def test_truncated_in_place_ends_cleanly(served: tuple[Serve, Path]) -> None:
    server, clip = served
    c = _playing(server)
    os.truncate(clip, clip.stat().st_size // 2)
    t0 = time.monotonic()
    assert wait_until(lambda: bool(c.poll_errors()), 5), "the client was left hanging"
    assert c.errors == ["EOS"], c.errors
    ended_after = time.monotonic() - t0
    assert ended_after < 3.0, ended_after
    assert len(server.lines("truncated from")) == 1, server.log()[-1500:]
    c.stop()
    # the next request: refused at once, one line naming the file
    before = len(server.lines("/clip: clip.mp4"))
    assert describe_status(server.url("clip")) == 503
    assert wait_until(lambda: len(server.lines("/clip: clip.mp4")) == before + 1, 3), \
        server.log()[-1500:]
    assert server.alive
    healthy_plays(server.url("other"))


def test_deleted_keeps_playing_then_reported(served: tuple[Serve, Path]) -> None:
    server, clip = served
    c = _playing(server)
    clip.unlink()
    assert _frames_in(c, 1.5) >= 35 and not c.poll_errors()
    _after_leaving(server, c)
    assert describe_status(server.url("clip")) == 503
    assert wait_until(lambda: len(server.lines("clip.mp4: no such file")) == 1, 3), \
        server.log()[-1500:]
    assert server.alive
    healthy_plays(server.url("other"))


def test_replaced_keeps_playing_then_serves_the_new_file(served: tuple[Serve, Path],
                                                          sources: tuple[Path, Path]) -> None:
    server, clip = served
    c = _playing(server)
    tmp = clip.with_suffix(".new.mp4")
    shutil.copy(sources[1], tmp)
    os.replace(tmp, clip)  # a new inode at the old path
    assert _frames_in(c, 1.5) >= 35 and not c.poll_errors()
    _after_leaving(server, c)
    # re-probed: the new 2 s clip, looped with its own period (60 frames per loop)
    healthy_plays(server.url("clip"))
    assert not server.lines("/clip: clip.mp4"), server.log()[-1500:]
    assert server.alive
    healthy_plays(server.url("other"))


def test_chmod_000_keeps_playing_then_reported(served: tuple[Serve, Path]) -> None:
    server, clip = served
    c = _playing(server)
    os.chmod(clip, 0)
    assert _frames_in(c, 1.5) >= 35 and not c.poll_errors()
    _after_leaving(server, c)
    if os.geteuid() == 0:  # root reads it anyway: it must still be served
        healthy_plays(server.url("clip"))
    else:
        assert describe_status(server.url("clip")) == 503
        assert wait_until(lambda: len(server.lines("clip.mp4: cannot read")) == 1, 3)
    assert server.alive
    healthy_plays(server.url("other"))
