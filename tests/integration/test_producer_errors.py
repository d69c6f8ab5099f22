"""Whose error is it: an error from a viewer's webrtcbin (even one already removed, its network
thread still pushing while it is torn down) never ends the mount's stream for everyone; an
error of the source does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from framecast.gst.runtime import init_gst

init_gst()
from gi.repository import GLib, Gst  # noqa: E402

from framecast.gst.clips import make_clip  # noqa: E402
from framecast.gst.webrtc import MountProducer  # noqa: E402
from framecast.gst.webrtcsource import file_source  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def _spin(seconds: float) -> None:
    ctx = GLib.MainContext.default()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.iteration(False)
        time.sleep(0.005)


def _error(src: Gst.Object) -> Gst.Message:
    err = GLib.Error.new_literal(Gst.StreamError.quark(), "Internal data stream error.",
                                 Gst.StreamError.FAILED)
    return Gst.Message.new_error(src, err, "streaming stopped, reason not-negotiated (-4)")


def test_an_error_from_a_gone_viewers_webrtcbin_keeps_the_stream(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=15, fps=30, profile="main")
    source, info, _status = file_source(str(clip), "m")
    prod = MountProducer("m", source, info, idle_stop=None)
    try:
        prod.start()
        _spin(0.5)
        assert prod.running and prod.frames > 0
        # a webrtcbin's element no longer in the pipeline (its viewer was removed)
        gone = Gst.ElementFactory.make("webrtcbin")
        prod.pipeline.get_bus().post(_error(gone))
        _spin(0.5)
        frames = prod.frames
        _spin(0.5)
        assert prod.pipeline is not None and prod.error is None
        assert prod.frames > frames, "the stream stopped"
        # the source's own error still ends it (and says why)
        demux = next(e for e in _walk(prod.pipeline) if e.get_name() == "demux")
        prod.pipeline.get_bus().post(_error(demux))
        _spin(0.5)
        assert prod.pipeline is None and prod.error == "Internal data stream error."
    finally:
        prod.stop()


def _walk(b: Gst.Bin) -> list[Gst.Element]:
    out = []
    it = b.iterate_recurse()
    while True:
        res, el = it.next()
        if res != Gst.IteratorResult.OK:
            return out
        out.append(el)
