"""framecast.open / framecast watch on files, and the error paths (no hangs, clear errors)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import av
import pytest
from sei_helpers import write_index_sidecar

import framecast
from framecast.gst.clips import make_clip
from framecast.gst.inject import register
from framecast.gst.probe import probe_file
from framecast.gst.runtime import Gst
from framecast.pixelindex import read_index
from framecast.reader import ReaderError, ReaderTimeout

N = 20


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """h264/mp4 and h265/ts clips with B-frames, injected with {"index": i} + stamps."""
    register()  # framecastinject for parse_launch
    base = tmp_path_factory.mktemp("reader")
    side = base / "side.jsonl"
    write_index_sidecar(side, N)
    out = {}
    for codec, container, demux, mux in (("h264", "mp4", "qtdemux", "mp4mux"),
                                         ("h265", "ts", "tsdemux", "mpegtsmux")):
        clip = make_clip(base / f"in-{codec}.{container}", codec=codec, container=container,
                         frames=N, bframes=2, gop=10)
        info = probe_file(clip)
        dst = base / f"tagged-{codec}.{container}"
        p = Gst.parse_launch(f'filesrc location="{clip}" ! {demux} ! {codec}parse ! '
                             f'framecastinject name=inj ! {mux} ! filesink location="{dst}"')
        inj = p.get_by_name("inj")
        inj.configure(video_pts=info.video_pts, period_ns=info.period_ns)
        inj.load_sidecar(str(side))
        p.set_state(Gst.State.PLAYING)
        msg = p.get_bus().timed_pop_filtered(30 * Gst.SECOND,
                                             Gst.MessageType.EOS | Gst.MessageType.ERROR)
        p.set_state(Gst.State.NULL)
        assert msg is not None and msg.type == Gst.MessageType.EOS
        out[codec] = dst
    return out




@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_encoded_frames_in_presentation_order_with_metadata(tagged: dict[str, Path],
                                                            codec: str) -> None:
    with framecast.open(str(tagged[codec])) as reader:
        frames = list(reader)
    assert [f.metadata[0]["index"] for f in frames] == list(range(N))
    assert [f.metadata[0]["seq"] for f in frames] == list(range(N))
    pts = [f.pts for f in frames]
    assert [p - pts[0] for p in pts] == pytest.approx([i / 30 for i in range(N)], abs=1e-3)
    if codec == "h264":  # MP4 starts at 0; MPEG-TS keeps its own start offset
        assert pts[0] == pytest.approx(0, abs=1e-6)
    assert [f.pts_ns for f in frames] == [round(f.pts * 1e9) for f in frames]
    assert [f.keyframe for f in frames] == [i % 10 == 0 for i in range(N)]
    assert all(f.image is None for f in frames)
    if codec == "h264":
        assert frames[0].raw_sei and frames[0].raw_sei[0][0] == bytes.fromhex(
            "dc45e9bde6d948b7962cd820d923eeef")  # x264's own SEI, passed on raw


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_decoded_pictures_paired_by_pts(tagged: dict[str, Path], codec: str) -> None:
    with framecast.open(str(tagged[codec]), decode=True) as reader:
        frames = list(reader)
    assert len(frames) == N
    for f in frames:
        assert f.image is not None and f.image.shape == (240, 320, 3)
        assert read_index(f.image) == f.metadata[0]["index"]


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        framecast.open(str(tmp_path / "nope.mp4"))


def test_not_a_video_is_a_reader_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(ReaderError), framecast.open(str(junk), timeout=5) as reader:
        next(reader)


def test_unsupported_url() -> None:
    with pytest.raises(ValueError, match="unsupported URL"):
        framecast.open("ftp://example/x.mp4")


def test_refused_connection_raises_quickly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    t0 = time.monotonic()
    with pytest.raises(ReaderError), framecast.open(f"rtsp://127.0.0.1:{port}/x",
                                                    timeout=5) as reader:
        next(reader)
    assert time.monotonic() - t0 < 5


def test_silent_server_times_out_and_closes() -> None:
    with socket.socket() as s:  # accepts, never answers
        s.bind(("127.0.0.1", 0))
        s.listen()
        t0 = time.monotonic()
        reader = framecast.open(f"rtsp://127.0.0.1:{s.getsockname()[1]}/x", timeout=1)
        with pytest.raises(ReaderTimeout) as exc:
            next(reader)
        assert isinstance(exc.value, TimeoutError)
        reader.close()
        assert time.monotonic() - t0 < 4


def test_rtsp_start_that_never_flows_reconnects() -> None:
    """rtspsrc 1.22 can hold every packet after a racy TCP start (see reader._START_STALL_S):
    a reader that gets no RTP out of it reconnects instead of waiting out its timeout."""
    conns: list[socket.socket] = []
    with socket.socket() as s:  # accepts, never answers: nothing ever flows
        s.bind(("127.0.0.1", 0))
        s.listen()
        s.settimeout(0.2)
        done = threading.Event()

        def accept() -> None:
            while not done.is_set():
                try:
                    conns.append(s.accept()[0])
                except TimeoutError:
                    pass

        acceptor = threading.Thread(target=accept)
        acceptor.start()
        try:
            reader = framecast.open(f"rtsp://127.0.0.1:{s.getsockname()[1]}/x", timeout=7)
            with pytest.raises(ReaderTimeout):
                next(reader)
            reader.close()
        finally:
            done.set()
            acceptor.join()
            for c in conns:
                c.close()
    assert reader.restarts >= 1
    assert len(conns) == reader.restarts + 1


def test_watch_prints_one_json_object_per_frame(tagged: dict[str, Path],
                                                framecast_bin: str) -> None:
    proc = subprocess.run([framecast_bin, "watch", str(tagged["h264"]), "--count", "5"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 5
    for i, line in enumerate(lines):
        obj = json.loads(line)
        assert set(obj) == {"pts", "keyframe", "metadata"}
        assert obj["pts"] == pytest.approx(i / 30, abs=1e-3)
        assert obj["keyframe"] is (i == 0)
        assert obj["metadata"][0]["index"] == i and obj["metadata"][0]["seq"] == i


def test_watch_missing_file_is_one_line(tmp_path: Path, framecast_bin: str) -> None:
    proc = subprocess.run([framecast_bin, "watch", str(tmp_path / "nope.mp4")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"framecast: error: {tmp_path / 'nope.mp4'}: no such file"


def test_decoded_pictures_paired_when_two_aus_share_a_pts(tmp_path: Path) -> None:
    """rtpjitterbuffer clamps a timestamp that would go backwards to the previous one, so
    after a burst two AUs can carry the same PTS (and tsdemux gives the repeat none): each
    picture must still get its own SEI."""
    from framecast import sei
    from framecast.metadata import FRAMECAST_UUID, encode_metadata

    clip = make_clip(tmp_path / "in.mp4", codec="h264", frames=N, bframes=0, gop=10)
    src = Gst.parse_launch(f'filesrc location="{clip}" ! qtdemux ! h264parse ! '
                           'video/x-h264,stream-format=byte-stream,alignment=au ! '
                           'appsink name=s sync=false')
    sink = src.get_by_name("s")
    src.set_state(Gst.State.PLAYING)
    aus = []
    while (sample := sink.emit("try-pull-sample", 5 * Gst.SECOND)) is not None:
        buf = sample.get_buffer()
        aus.append((buf.extract_dup(0, buf.get_size()), buf.pts, buf.duration,
                    buf.has_flags(Gst.BufferFlags.DELTA_UNIT)))
    caps = sink.get_static_pad("sink").get_current_caps()
    src.set_state(Gst.State.NULL)
    assert len(aus) == N and caps is not None

    dst = tmp_path / "dup.ts"
    out = Gst.parse_launch('appsrc name=a format=time ! mpegtsmux ! '
                           f'filesink location="{dst}"')
    appsrc = out.get_by_name("a")
    appsrc.set_property("caps", caps)
    out.set_state(Gst.State.PLAYING)
    dup = {5, 6, 13, 14}  # AU i+1 gets AU i's PTS, twice, away from keyframes
    for i, (au, pts, dur, delta) in enumerate(aus):
        payload = encode_metadata({"index": i})
        buf = Gst.Buffer.new_wrapped(sei.insert_sei(au, "h264", [(FRAMECAST_UUID, payload)]))
        buf.pts = buf.dts = aus[i - 1][1] if i in (6, 14) else pts
        buf.duration = dur
        if delta:
            buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
        assert appsrc.emit("push-buffer", buf) == Gst.FlowReturn.OK
    appsrc.emit("end-of-stream")
    msg = out.get_bus().timed_pop_filtered(10 * Gst.SECOND,
                                           Gst.MessageType.EOS | Gst.MessageType.ERROR)
    out.set_state(Gst.State.NULL)
    assert msg is not None and msg.type == Gst.MessageType.EOS

    with av.open(str(dst)) as container:  # the file really repeats two PTS
        pts = [p.pts for p in container.demux(video=0) if p.size]
    assert len(pts) == N and len(set(pts)) == N - len(dup) // 2

    with framecast.open(str(dst), decode=True) as reader:
        frames = list(reader)
    assert len(frames) == N
    for f in frames:
        assert f.image is not None
        assert [m["index"] for m in f.metadata] == [read_index(f.image)]
