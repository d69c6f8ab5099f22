"""The compiled stamps injector (framecaststamps, C) against the Python element, byte for byte.

Both run on the same real clips (H.264/H.265; AVC length-prefixed and Annex B; B-frames;
x264/x265's own SEI arriving as a buffer meta from the parser; later loops (segment base);
JSON and msgpack; live indexing) with the same fixed wall clock: every output access unit
must be identical. The pure ``framecast.sei`` parser must also read the C element's SEI.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from framecast import metadata as md
from framecast import sei
from framecast.gst import inject, stamps
from framecast.gst.clips import make_clip
from framecast.gst.probe import probe_file
from framecast.gst.runtime import Gst, init_gst

init_gst()
inject.register()
WALL = 1_790_000_000_123_456_789
DEMUX = {"mp4": "qtdemux", "mkv": "matroskademux", "ts": "tsdemux"}


def test_compiled_plugin_is_built() -> None:
    # scripts/setup.sh builds it: a missing build is a failure here, never a skip
    assert stamps.LIBRARY.exists(), f"{stamps.LIBRARY} missing: run make setup"
    assert stamps.available()


def _run(clip: Path, container: str, codec: str, element: Gst.Element, caps: str,
         offset_ns: int) -> list[tuple[int, bytes]]:
    pipeline = Gst.parse_launch(
        f'filesrc location="{clip}" ! {DEMUX[container]} ! {codec}parse ! {caps} ! '
        f"identity name=shift ! appsink name=sink sync=false")
    shift, sink = pipeline.get_by_name("shift"), pipeline.get_by_name("sink")
    # the looper's way: each loop moves the segment base by one period
    shift.get_static_pad("src").set_offset(offset_ns)
    pipeline.add(element)
    shift.unlink(sink)
    assert shift.link(element) and element.link(sink)
    out: list[tuple[int, bytes]] = []
    pipeline.set_state(Gst.State.PLAYING)
    while True:
        sample = sink.emit("try-pull-sample", 20 * Gst.SECOND)
        if sample is None:
            break
        buf = sample.get_buffer()
        out.append((buf.pts, buf.extract_dup(0, buf.get_size())))
    pipeline.set_state(Gst.State.NULL)
    assert sink.get_property("eos"), "pipeline did not reach EOS"
    return out


CASES = [  # codec, container, bframes, stream-format, fmt, file indexing, loop number
    ("h264", "mp4", 2, "avc", "msgpack", True, 0),
    ("h264", "mp4", 2, "byte-stream", "msgpack", True, 3),
    ("h264", "ts", 0, "byte-stream", "json", False, 0),
    ("h265", "mkv", 2, "hvc1", "msgpack", True, 2),
    ("h265", "mp4", 0, "byte-stream", "json", True, 0),
]


@pytest.mark.parametrize("codec,container,bframes,fmt_caps,fmt,file_mode,loops", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[3]}-{c[4]}-{'file' if c[5] else 'live'}"
                              f"-loop{c[6]}" for c in CASES])
def test_compiled_equals_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str,
                                container: str, bframes: int, fmt_caps: str, fmt: str,
                                file_mode: bool, loops: int) -> None:
    clip = make_clip(tmp_path / f"in.{container}", codec=codec, container=container,
                     frames=20, bframes=bframes, gop=10)
    info = probe_file(clip)
    caps = f"video/x-{codec},stream-format={fmt_caps},alignment=au"
    config = (dict(video_pts=info.video_pts, period_ns=info.period_ns) if file_mode
              else dict(frame_ns=info.frame_ns))
    offset = loops * info.period_ns
    monkeypatch.setattr(inject, "time", types.SimpleNamespace(time_ns=lambda: WALL))
    py = inject.make_injector(None, fmt=fmt, **config)
    expected = _run(clip, container, codec, py, caps, offset)
    c = stamps.make_stamps_injector(None, fmt=fmt, **config)
    assert c is not None
    c.set_property("fixed-wallclock", WALL)
    got = _run(clip, container, codec, c, caps, offset)

    assert len(expected) == 20 and py.frames == 20
    assert stamps.injected_frames(c) == 20
    assert [p for p, _ in got] == [p for p, _ in expected]
    for (pts, a), (_, b) in zip(expected, got, strict=True):
        assert b == a, f"access unit at pts {pts} differs"
    # and the pure reader finds the stamps (seq = presented index + loop × frames)
    ls = None if fmt_caps == "byte-stream" else 4
    seqs = []
    for _pts, au in got:
        msgs = [d for u, d in sei.extract_user_data(au, codec, ls) if u == md.FRAMECAST_UUID]
        assert len(msgs) == 1
        m = md.decode_metadata(msgs[0])
        assert m["wallclock_ns"] == WALL and m["loop"] == (loops if file_mode else 0)
        seqs.append(m["seq"])
    first = loops * 20 if file_mode else 0
    assert sorted(seqs) == list(range(first, first + 20))
    if codec == "h264":  # x264 wrote its own SEI (a parser meta): kept once, not duplicated
        x264 = bytes.fromhex("dc45e9bde6d948b7962cd820d923eeef")
        assert sum(u == x264 for u, _ in sei.extract_user_data(got[0][1], codec, ls)) == 1


def _parsed_aus(clip: Path, caps: str) -> tuple[Gst.Caps, list[Gst.Buffer]]:
    pipeline = Gst.parse_launch(f'filesrc location="{clip}" ! qtdemux ! h264parse ! {caps} ! '
                                "appsink name=sink sync=false")
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    out, got_caps = [], None
    while (sample := sink.emit("try-pull-sample", 20 * Gst.SECOND)) is not None:
        got_caps = sample.get_caps()
        out.append(sample.get_buffer())
    pipeline.set_state(Gst.State.NULL)
    assert got_caps is not None
    return got_caps, out


def _push_through(element: Gst.Element, caps: Gst.Caps, aus: list[Gst.Buffer],
                  metas: dict[int, tuple[bytes, bytes]]) -> list[bytes]:
    pipeline = Gst.Pipeline.new()
    src = Gst.ElementFactory.make("appsrc")
    src.set_property("caps", caps)
    src.set_property("format", Gst.Format.TIME)
    sink = Gst.ElementFactory.make("appsink")
    sink.set_property("sync", False)
    for el in (src, element, sink):
        pipeline.add(el)
    assert src.link(element) and element.link(sink)
    pipeline.set_state(Gst.State.PLAYING)
    for i, au in enumerate(aus):
        buf = au.copy_deep()  # ours, so writable: a meta can be added
        if i in metas:
            inject.add_sei_meta(buf, *metas[i])
        assert src.emit("push-buffer", buf) == Gst.FlowReturn.OK
    src.emit("end-of-stream")
    out = []
    while (sample := sink.emit("try-pull-sample", 20 * Gst.SECOND)) is not None:
        b = sample.get_buffer()
        out.append(b.extract_dup(0, b.get_size()))
    pipeline.set_state(Gst.State.NULL)
    return out


@pytest.mark.parametrize("stream_format", ["avc", "byte-stream"])
def test_compiled_equals_python_with_foreign_sei_metas(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       stream_format: str) -> None:
    """An upstream GstVideoSEIUserDataUnregisteredMeta the AU does not carry yet becomes its own
    SEI message after ours, in both elements (and the parser's x264 SEI meta is not doubled)."""
    clip = make_clip(tmp_path / "in.mp4", frames=12, bframes=2, gop=6)
    info = probe_file(clip)
    caps, aus = _parsed_aus(clip, f"video/x-h264,stream-format={stream_format},alignment=au")
    foreign = bytes(range(16))
    metas = {i: (foreign, f"app {i}".encode() + b"\x00\x00\x01") for i in range(0, 12, 3)}
    monkeypatch.setattr(inject, "time", types.SimpleNamespace(time_ns=lambda: WALL))
    config = dict(video_pts=info.video_pts, period_ns=info.period_ns)
    expected = _push_through(inject.make_injector(None, **config), caps, aus, metas)
    c = stamps.make_stamps_injector(None, **config)
    assert c is not None
    c.set_property("fixed-wallclock", WALL)
    got = _push_through(c, caps, aus, metas)
    assert len(got) == len(expected) == 12
    assert got == expected
    ls = None if stream_format == "byte-stream" else 4
    for i, au in enumerate(got):
        found = [d for u, d in sei.extract_user_data(au, "h264", ls) if u == foreign]
        assert found == ([metas[i][1]] if i in metas else [])
