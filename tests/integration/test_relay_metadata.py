"""A relayed RTSP camera gets framecast SEI added without decoding; its own SEI — third-party
and malformed — passes through untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest
from sei_helpers import sei_of

import framecast
from framecast import sei
from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.gst.media import build_media_bin, codec_elements
from framecast.gst.runtime import Gst, init_gst
from framecast.pixelindex import read_index
from framecast.server import Server

N = 30
CAM_UUID = bytes.fromhex("a1a2a3a4b1b2c1c2d1d2e1e2e3e4e5e6")
# payloadType 5, payloadSize 200, but only 16 bytes follow: a broken SEI message
BROKEN_SEI = b"\x06\x05\xc8" + b"\x11" * 16 + b"\x80"


def camera_clip(tmp: Path) -> Path:
    """An H.264 'camera' whose every AU has its own SEI (valid 3rd-party + a broken one)."""
    init_gst()
    clip = make_clip(tmp / "plain.ts", container="ts", frames=N, gop=10)
    src = Gst.parse_launch(f'filesrc location="{clip}" ! tsdemux ! h264parse ! '
                           "video/x-h264,stream-format=byte-stream,alignment=au ! "
                           "appsink name=s sync=false")
    sink = src.get_by_name("s")
    src.set_state(Gst.State.PLAYING)
    aus = []
    while (sample := sink.emit("pull-sample")) is not None:
        buf = sample.get_buffer()
        with buf.map(Gst.MapFlags.READ) as info:
            au = sei.insert_sei(bytes(info.data), "h264",
                                [(CAM_UUID, b"cam frame %d" % len(aus))])
        offset = sei.find_first_vcl_offset(au, "h264")
        aus.append((au[:offset] + b"\x00\x00\x00\x01" + BROKEN_SEI + au[offset:], buf.pts,
                    buf.dts, buf.has_flags(Gst.BufferFlags.DELTA_UNIT)))
    src.set_state(Gst.State.NULL)
    out = tmp / "camera.ts"
    dst = Gst.parse_launch("appsrc name=a format=time caps=video/x-h264,stream-format=byte-stream,"
                           "alignment=au ! h264parse ! mpegtsmux ! "
                           f'filesink location="{out}"')
    appsrc = dst.get_by_name("a")
    dst.set_state(Gst.State.PLAYING)
    for data, pts, dts, delta in aus:
        b = Gst.Buffer.new_wrapped(data)
        b.pts, b.dts = pts, dts
        if delta:
            b.set_flags(Gst.BufferFlags.DELTA_UNIT)
        appsrc.emit("push-buffer", b)
    appsrc.emit("end-of-stream")
    dst.get_bus().timed_pop_filtered(20 * Gst.SECOND, Gst.MessageType.EOS)
    dst.set_state(Gst.State.NULL)
    return out


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("relay")
    cam_file = camera_clip(tmp)
    # the "camera": a plain file mount, no framecast metadata of its own
    camera = Server(Settings(bind="127.0.0.1", rtsp_port=0, http=False),
                    (Mount(name="cam", file=str(cam_file), stamps=False),)).start()
    relay_mount = Mount(name="relayed", source=camera.rtsp_url("cam"))
    relayer = Server(Settings(bind="127.0.0.1", rtsp_port=0, http=False),
                     (relay_mount,)).start()
    try:
        yield camera, relayer, relay_mount
    finally:
        relayer.stop()
        camera.stop()


def test_relay_bin_has_no_decoder(relay: Any) -> None:
    _camera, _relayer, mount = relay
    b = build_media_bin(mount, None)
    assert codec_elements(b) == []
    assert b.get_by_name("inject-relayed") is not None  # our injector sits in the relay path


def test_relayed_stream_gets_metadata_and_keeps_camera_sei(relay: Any) -> None:
    camera, relayer, _mount = relay
    # the camera itself carries no framecast metadata
    with framecast.open(camera.rtsp_url("cam"), timeout=10) as r:
        first = [f for _, f in zip(range(5), r, strict=False)]
    assert all(f.metadata == [] for f in first)

    with framecast.open(relayer.rtsp_url("relayed"), decode=True, timeout=15) as reader:
        frames = []
        for frame in reader:
            if frames or (frame.keyframe and frame.metadata):
                frames.append(frame)
            if len(frames) >= 2 * N:
                break
    seqs = [f.metadata[0]["seq"] for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one per presented frame
    for f in frames:
        (md,) = f.metadata
        assert {"seq", "loop", "pts_ns", "wallclock_ns"} <= set(md)
        cam = [p for u, p in f.raw_sei if u == CAM_UUID]
        # the camera's own SEI, byte for byte, on the picture it was written for
        assert cam == [b"cam frame %d" % read_index(f.image)], (cam, read_index(f.image))


def test_relayed_broken_sei_passes_through_untouched(relay: Any) -> None:
    _camera, relayer, _mount = relay
    src = Gst.parse_launch(f'rtspsrc location="{relayer.rtsp_url("relayed")}" protocols=tcp '
                           "! rtph264depay ! h264parse ! video/x-h264,stream-format=byte-stream,"
                           "alignment=au ! appsink name=s sync=false")
    sink = src.get_by_name("s")
    src.set_state(Gst.State.PLAYING)
    seen = 0
    try:
        for _ in range(20):
            sample = sink.emit("try-pull-sample", 10 * Gst.SECOND)
            assert sample is not None
            with sample.get_buffer().map(Gst.MapFlags.READ) as info:
                au = bytes(info.data)
            if BROKEN_SEI[:3] in au:
                nals = sei.split_annexb(au)
                assert BROKEN_SEI in nals  # byte for byte
                vcl = next(i for i, n in enumerate(nals) if sei.is_vcl(n, "h264"))
                assert all(nals.index(n) < vcl for n in nals if n[0] & 0x1F == 6)
                seen += 1
    finally:
        src.set_state(Gst.State.NULL)
    assert seen >= 15


def test_pyav_reads_relayed_metadata(relay: Any) -> None:
    _camera, relayer, _mount = relay
    got = []
    with av.open(relayer.rtsp_url("relayed"), options={"rtsp_transport": "tcp"},
                 timeout=10) as c:
        for frame in c.decode(video=0):
            ours, others = sei_of(frame)
            if ours and frame.key_frame or got:
                got.append((ours, others))
            if len(got) >= N:
                break
    assert all(len(ours) == 1 and CAM_UUID in others for ours, others in got)
