"""framecastinject in real pipelines: demux → parse → inject → mux, read back with PyAV."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sei_helpers import av_frames, write_index_sidecar

from framecast.gst.clips import make_clip
from framecast.gst.inject import FramecastInject, FrameIndexer, add_sei_meta, register
from framecast.gst.probe import probe_file
from framecast.gst.runtime import Gst, init_gst

init_gst()
register()

DEMUX = {"mp4": "qtdemux", "mkv": "matroskademux", "ts": "tsdemux"}
MUX = {"mp4": "mp4mux", "mkv": "matroskamux", "ts": "mpegtsmux"}
X264_UUID = bytes.fromhex("dc45e9bde6d948b7962cd820d923eeef")


def run(desc: str, configure: Any = None, timeout: int = 30) -> Gst.Pipeline:
    pipeline = Gst.parse_launch(desc)
    if configure:
        configure(pipeline.get_by_name("inj"))
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(timeout * Gst.SECOND,
                                                Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    assert msg is not None, "pipeline timed out"
    if msg.type == Gst.MessageType.ERROR:
        raise AssertionError(msg.parse_error()[0].message)
    return pipeline


def inject_file(src: Path, dst: Path, container: str, configure: Any) -> None:
    codec = probe_file(src).video_codec
    run(f'filesrc location="{src}" ! {DEMUX[container]} ! {codec}parse ! '
        f'framecastinject name=inj ! {MUX[container]} ! filesink location="{dst}"', configure)


@pytest.mark.parametrize("codec,container,bframes", [
    ("h264", "mp4", 2), ("h264", "ts", 2), ("h265", "mkv", 2), ("h265", "mp4", 0),
], ids=["h264-mp4-bframes", "h264-ts-bytestream-bframes", "h265-mkv-bframes", "h265-mp4"])
def test_presented_frame_i_carries_sidecar_line_i(tmp_path: Path, codec: str, container: str,
                                                  bframes: int) -> None:
    n = 24
    clip = make_clip(tmp_path / f"in.{container}", codec=codec, container=container, frames=n,
                     bframes=bframes, gop=12)
    info = probe_file(clip)
    side = tmp_path / "side.jsonl"
    write_index_sidecar(side, n)

    def configure(el: FramecastInject) -> None:
        el.configure(video_pts=info.video_pts, period_ns=info.period_ns)
        el.load_sidecar(str(side))

    out = tmp_path / f"out.{container}"
    inject_file(clip, out, container, configure)
    frames = list(av_frames(str(out)))
    assert [f.pixel_index for f in frames] == list(range(n))
    for f in frames:
        assert len(f.metadata) == 1, f"frame {f.pixel_index}: {f.metadata}"
        md = f.metadata[0]
        assert md["index"] == f.pixel_index
        assert md["seq"] == f.pixel_index and md["loop"] == 0
        assert md["pts_ns"] == pytest.approx(f.pixel_index * 1e9 / 30, abs=2e6)


def test_existing_sei_is_kept_once_and_buffer_meta_becomes_sei(tmp_path: Path) -> None:
    """x264's own SEI (which h264parse also attaches as a meta) is not duplicated; a
    GstVideoSEIUserDataUnregisteredMeta put on raw frames (x264enc carries it) is written."""
    from framecast.pixelindex import render_frame

    app_uuid = bytes(range(16))
    out = tmp_path / "meta.mkv"
    pipeline = Gst.parse_launch(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width=160,height=120,"
        "framerate=30/1 ! videoconvert ! video/x-raw,format=I420 ! x264enc bframes=0 "
        "key-int-max=10 ! h264parse ! framecastinject name=inj stamps=false ! "
        f'matroskamux ! filesink location="{out}"')
    src = pipeline.get_by_name("src")
    pipeline.set_state(Gst.State.PLAYING)
    for i in range(10):
        buf = Gst.Buffer.new_wrapped(render_frame(i, 160, 120).tobytes())
        buf.pts = i * Gst.SECOND // 30
        buf.duration = Gst.SECOND // 30
        if i % 2 == 0:
            add_sei_meta(buf, app_uuid, b"frame %d" % i)
        assert src.emit("push-buffer", buf) == Gst.FlowReturn.OK
    src.emit("end-of-stream")
    msg = pipeline.get_bus().timed_pop_filtered(20 * Gst.SECOND,
                                                Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    assert msg is not None and msg.type == Gst.MessageType.EOS
    frames = list(av_frames(str(out)))
    assert [f.pixel_index for f in frames] == list(range(10))
    for f in frames:
        expected = [X264_UUID] if f.pixel_index == 0 else []
        if f.pixel_index % 2 == 0:
            expected.append(app_uuid)
        assert f.other_uuids == expected, f.pixel_index
        assert f.metadata == []  # stamps=false and no user fields: no framecast SEI


def test_bad_metadata_drops_user_fields_keeps_stamps(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    n = 12
    clip = make_clip(tmp_path / "in.mp4", frames=n, gop=6)
    info = probe_file(clip)

    def provider(fi: Any) -> dict[str, Any] | None:
        if fi.index == 3:
            return {"bad": object()}
        if fi.index == 5:
            return {"big": "x" * 70_000}
        if fi.index == 7:
            raise RuntimeError("app bug")
        return {"ok": fi.index}

    def configure(el: FramecastInject) -> None:
        el.configure(video_pts=info.video_pts, period_ns=info.period_ns)
        el.add_provider(provider)

    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger="framecast.inject"):
        inject_file(clip, out, "mp4", configure)
    frames = list(av_frames(str(out)))
    assert [f.pixel_index for f in frames] == list(range(n))
    for f in frames:
        (md,) = f.metadata
        assert md["seq"] == f.pixel_index
        if f.pixel_index in (3, 5, 7):
            assert "ok" not in md and "bad" not in md and "big" not in md
        else:
            assert md["ok"] == f.pixel_index
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "seq 3" in lines[0] and "not serialisable" in lines[0]
    assert "seq 5" in lines[1] and "too large" in lines[1]
    assert "seq 7" in lines[2] and "app bug" in lines[2]


def test_put_by_pts(tmp_path: Path) -> None:
    """The callback API: metadata handed in by buffer PTS, in any order, lands on that frame."""
    n = 10
    clip = make_clip(tmp_path / "in.mkv", container="mkv", frames=n, bframes=2)
    info = probe_file(clip)

    def configure(el: FramecastInject) -> None:
        el.configure(video_pts=info.video_pts, period_ns=info.period_ns, stamps=False)
        for i in reversed(range(n)):
            el.put(info.video_pts[i], {"label": f"f{i}"})

    out = tmp_path / "out.mkv"
    inject_file(clip, out, "mkv", configure)
    frames = list(av_frames(str(out)))
    assert [f.metadata for f in frames] == [[{"label": f"f{i}"}] for i in range(n)]


def test_indexer_loops_by_segment_base_and_by_offset_pts() -> None:
    pts = [10, 40, 20, 30]  # decode order of a B-frame GOP (presented 10, 20, 30, 40)
    ix = FrameIndexer(sorted(pts), period_ns=40)
    seen = [ix.locate(p, 0, 0) for p in pts]
    assert seen == [(0, 0, 0), (3, 0, 3), (1, 0, 1), (2, 0, 2)]
    assert [ix.locate(p, 0, 80) for p in pts] == [(0, 2, 8), (3, 2, 11), (1, 2, 9), (2, 2, 10)]
    # a looper that offsets PTS instead of the segment base
    assert ix.locate(130, 0, 0) == (0, 3, 12)
    assert ix.locate(150, 0, 0) == (2, 3, 14)


def test_indexer_live_by_running_time() -> None:
    ix = FrameIndexer(frame_ns=100)
    assert [ix.locate(0, rt, 0)[2] for rt in (1000, 1300, 1100, 1200)] == [0, 3, 1, 2]
    counter = FrameIndexer()
    assert [counter.locate(0, -1, 0)[2] for _ in range(3)] == [0, 1, 2]


def test_gst_launch_via_python_plugin_loader(tmp_path: Path) -> None:
    """GST_PLUGIN_PATH=<framecast>/gstplugin makes framecastinject usable from gst-launch-1.0."""
    import os
    import subprocess

    import framecast

    n = 15
    clip = make_clip(tmp_path / "in.mp4", frames=n, bframes=2)
    side = tmp_path / "side.jsonl"
    write_index_sidecar(side, n)
    out = tmp_path / "out.mp4"
    env = dict(os.environ, GST_PLUGIN_PATH=str(Path(framecast.__file__).parent / "gstplugin"),
               GST_REGISTRY=str(tmp_path / "registry.bin"))
    proc = subprocess.run(
        ["gst-launch-1.0", "-q", "filesrc", f"location={clip}", "!", "qtdemux", "!", "h264parse",
         "!", "framecastinject", f"sidecar={side}", "format=json", "!", "mp4mux", "!",
         "filesink", f"location={out}"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    frames = list(av_frames(str(out)))
    assert [f.pixel_index for f in frames] == list(range(n))
    assert all(f.metadata[0]["index"] == f.pixel_index == f.metadata[0]["seq"] for f in frames)
