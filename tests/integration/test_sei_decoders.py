"""framecast.sei against real decoders and parsers, not just our own parser.

Real H.264 (x264enc, B-frames) and H.265 (x265enc, B-frames) streams are made here with
GStreamer; our code inserts one SEI per access unit; then
(a) PyAV decodes them and every frame's SEI_UNREGISTERED side data carries our payload, byte
    for byte (in presentation order, so B-frame reordering is checked too);
(b) GStreamer h264parse attaches GstVideoSEIUserDataUnregisteredMeta with our UUID and bytes to
    every buffer (read with ctypes: GI cannot read that meta). h264parse 1.22 attaches only the
    last user-data-unregistered message of an access unit, so ours must be the last one.
    h265parse 1.22 attaches no meta (GSTREAMER-NOTES): for H.265 we check it passes every SEI
    through intact;
(c) the decoded pictures equal those of the stream without SEI.
Length-prefixed framing (avc / hvc1) goes through the parser and the decoder the same way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from framecast import sei
from framecast.gst.runtime import init_gst
from framecast.metadata import FRAMECAST_UUID, decode_metadata, encode_metadata, stamps

init_gst()
from gi.repository import Gst  # noqa: E402

FRAMES = 30
THIRD_PARTY = b"\x5a" * 16
RAW = "video/x-raw,width=160,height=120,format=I420,framerate=30/1"
ENCODE = {
    "h264": "x264enc bframes=2 key-int-max=15 speed-preset=ultrafast ! h264parse",
    "h265": "x265enc key-int-max=15 speed-preset=ultrafast option-string=bframes=2 ! h265parse",
}
PARSE = {"h264": "h264parse", "h265": "h265parse"}
LENGTH_FORMAT = {"h264": "avc", "h265": "hvc1"}
PYAV_FORMAT = {"h264": "h264", "h265": "hevc"}


@dataclass
class AU:
    pts: int
    dts: int
    data: bytes


def pull_all(pipe: Gst.Pipeline) -> tuple[list[Gst.Buffer], Gst.Caps | None]:
    sink = pipe.get_by_name("sink")
    pipe.set_state(Gst.State.PLAYING)
    buffers, caps = [], None
    while (sample := sink.emit("pull-sample")) is not None:
        buffers.append(sample.get_buffer())
        caps = sample.get_caps()
    bus_error = pipe.get_bus().pop_filtered(Gst.MessageType.ERROR)
    pipe.set_state(Gst.State.NULL)
    assert bus_error is None, bus_error.parse_error()
    return buffers, caps


def encode(codec: str, stream_format: str) -> tuple[list[AU], Gst.Caps]:
    pipe = Gst.parse_launch(
        f"videotestsrc num-buffers={FRAMES} pattern=ball ! {RAW} ! {ENCODE[codec]} ! "
        f"video/x-{codec},stream-format={stream_format},alignment=au ! "
        "appsink name=sink sync=false"
    )
    buffers, caps = pull_all(pipe)
    assert len(buffers) == FRAMES
    return [AU(b.pts, b.dts, b.extract_dup(0, b.get_size())) for b in buffers], caps


def reparse(codec: str, caps: Gst.Caps, aus: list[AU], out_caps: str) -> list[Gst.Buffer]:
    """Push access units through appsrc ! <codec>parse ! out_caps ! appsink."""
    pipe = Gst.parse_launch(
        f"appsrc name=src format=time ! {PARSE[codec]} ! {out_caps} ! appsink name=sink sync=false"
    )
    src = pipe.get_by_name("src")
    src.set_property("caps", caps)
    sink = pipe.get_by_name("sink")
    pipe.set_state(Gst.State.PLAYING)
    for au in aus:
        buf = Gst.Buffer.new_wrapped(au.data)
        buf.pts, buf.dts = au.pts, au.dts
        assert src.emit("push-buffer", buf) == Gst.FlowReturn.OK
    src.emit("end-of-stream")
    buffers = []
    while (sample := sink.emit("pull-sample")) is not None:
        buffers.append(sample.get_buffer())
    bus_error = pipe.get_bus().pop_filtered(Gst.MessageType.ERROR)
    pipe.set_state(Gst.State.NULL)
    assert bus_error is None, bus_error.parse_error()
    return buffers


def payload(i: int) -> bytes:
    """Distinct per AU, full of start-code-like runs; every 10th is long (ff-coded size)."""
    body = b"\x00\x00\x00" + i.to_bytes(2, "big") + b"\x00\x00\x01\x00\x00\x02\x00\x00\x03"
    return body + bytes(range(i % 7)) + (b"\x00" * 300 if i % 10 == 3 else b"")


def messages(i: int) -> list[tuple[bytes, bytes]]:
    msgs = [(FRAMECAST_UUID, payload(i))]
    if i % 5 == 0:  # sometimes a second message first in the same SEI NAL
        msgs.insert(0, (THIRD_PARTY, encode_metadata(stamps(i, 0, i, 1), "json")))
    return msgs


def with_sei(aus: list[AU], codec: str, length_size: int | None = None) -> list[AU]:
    return [
        AU(au.pts, au.dts, sei.insert_sei(au.data, codec, messages(i), length_size))
        for i, au in enumerate(aus)
    ]


def presentation_order(aus: list[AU]) -> list[int]:
    return sorted(range(len(aus)), key=lambda i: aus[i].pts)


def decode(path: Path, codec: str) -> list[tuple[np.ndarray, list[bytes]]]:
    """(picture, SEI_UNREGISTERED side data) per frame, in presentation order."""
    frames = []
    with av.open(str(path), format=PYAV_FORMAT[codec]) as container:
        for frame in container.decode(video=0):
            sd = [bytes(d) for d in frame.side_data if d.type.name == "SEI_UNREGISTERED"]
            frames.append((frame.to_ndarray(format="yuv420p"), sd))
    return frames


# --------------------------------------------------------------------------- ctypes meta reader


class _SEIMeta(ctypes.Structure):
    # GstVideoSEIUserDataUnregisteredMeta (gst-libs/gst/video/video-sei.h):
    # GstMeta meta {flags, info*}; guint8 uuid[16]; guint8 *data; gsize size
    _fields_ = [
        ("flags", ctypes.c_uint),
        ("info", ctypes.c_void_p),
        ("uuid", ctypes.c_uint8 * 16),
        ("data", ctypes.POINTER(ctypes.c_uint8)),
        ("size", ctypes.c_size_t),
    ]


_gst = ctypes.CDLL(ctypes.util.find_library("gstreamer-1.0") or "libgstreamer-1.0.so.0")
_video = ctypes.CDLL(ctypes.util.find_library("gstvideo-1.0") or "libgstvideo-1.0.so.0")
_video.gst_video_sei_user_data_unregistered_meta_api_get_type.restype = ctypes.c_size_t
_gst.gst_buffer_get_size.restype = ctypes.c_size_t
_gst.gst_buffer_get_size.argtypes = [ctypes.c_void_p]
_gst.gst_buffer_iterate_meta_filtered.restype = ctypes.c_void_p
_gst.gst_buffer_iterate_meta_filtered.argtypes = [
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_void_p),
    ctypes.c_size_t,
]


def sei_metas(buf: Gst.Buffer) -> list[tuple[bytes, bytes]]:
    """(uuid, data) of every GstVideoSEIUserDataUnregisteredMeta on ``buf``."""
    ptr = hash(buf)  # PyGObject hashes a boxed value by its C pointer
    assert _gst.gst_buffer_get_size(ptr) == buf.get_size(), "not the GstBuffer pointer"
    api = _video.gst_video_sei_user_data_unregistered_meta_api_get_type()
    state = ctypes.c_void_p(None)
    out = []
    while meta := _gst.gst_buffer_iterate_meta_filtered(ptr, ctypes.byref(state), api):
        m = _SEIMeta.from_address(meta)
        out.append((bytes(m.uuid), ctypes.string_at(m.data, m.size)))
    return out


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", params=["h264", "h265"])
def stream(request, tmp_path_factory):
    codec = request.param
    aus, caps = encode(codec, "byte-stream")
    tmp = tmp_path_factory.mktemp(codec)
    plain = tmp / f"plain.{codec}"
    plain.write_bytes(b"".join(au.data for au in aus))
    marked = with_sei(aus, codec)
    tagged = tmp / f"sei.{codec}"
    tagged.write_bytes(b"".join(au.data for au in marked))
    return codec, aus, marked, plain, tagged, caps


def check_decoded(codec: str, aus: list[AU], plain: Path, tagged: Path) -> None:
    reference = decode(plain, codec)
    frames = decode(tagged, codec)
    assert len(frames) == len(reference) == FRAMES
    order = presentation_order(aus)
    assert order != sorted(order), "expected B-frames (reordering)"
    for k, ((picture, side_data), (ref_picture, ref_side_data)) in enumerate(
        zip(frames, reference, strict=True)
    ):
        i = order[k]
        ours = [d[16:] for d in side_data if d[:16] == FRAMECAST_UUID]
        assert ours == [payload(i)], f"frame {k} (AU {i})"
        others = [d for d in side_data if d[:16] == THIRD_PARTY]
        assert [decode_metadata(d[16:])["seq"] for d in others] == ([i] if i % 5 == 0 else [])
        # (c) the SEI changes nothing in the picture; the encoder's own SEI is still there
        assert np.array_equal(picture, ref_picture), f"frame {k} differs"
        assert [d for d in side_data if d[:16] not in (FRAMECAST_UUID, THIRD_PARTY)] == (
            ref_side_data
        )


# --------------------------------------------------------------------------- tests


def test_pyav_reads_our_sei_on_every_frame_and_pictures_are_unchanged(stream):
    codec, aus, _marked, plain, tagged, _caps = stream
    check_decoded(codec, aus, plain, tagged)


def test_parser_passes_our_sei_on_every_buffer(stream):
    codec, _aus, marked, _plain, _tagged, caps = stream
    out = reparse(codec, caps, marked, f"video/x-{codec},stream-format=byte-stream,alignment=au")
    assert len(out) == FRAMES
    for i, buf in enumerate(out):
        data = buf.extract_dup(0, buf.get_size())
        assert sei.extract_user_data(data, codec)[-len(messages(i)) :] == messages(i)
        if codec == "h264":  # (b) the meta h264parse attaches, byte for byte
            # h264parse 1.22 keeps only the LAST user-data-unregistered message of an AU
            # (one meta per buffer, x264's banner on frame 0 included): ours goes last.
            assert sei_metas(buf) == [(FRAMECAST_UUID, payload(i))], f"buffer {i}"
        # h265parse 1.22 attaches no SEI meta at all (GSTREAMER-NOTES): nothing to compare


def test_length_prefixed_framing_parses_and_decodes(stream, tmp_path):
    codec, _aus, _marked, plain, _tagged, _caps = stream
    aus, caps = encode(codec, LENGTH_FORMAT[codec])
    codec_data = caps.get_structure(0).get_value("codec_data")
    length_size = sei.length_size_from_codec_data(
        codec_data.extract_dup(0, codec_data.get_size()), codec
    )
    marked = with_sei(aus, codec, length_size)
    for i, au in enumerate(marked):
        assert sei.extract_user_data(au.data, codec, length_size)[-len(messages(i)) :] == (
            messages(i)
        )
    # the parser turns our length-prefixed AUs into Annex B; it must keep every SEI
    out = reparse(codec, caps, marked, f"video/x-{codec},stream-format=byte-stream,alignment=au")
    assert len(out) == FRAMES
    if codec == "h264":
        assert [[m for m in sei_metas(b) if m[0] == FRAMECAST_UUID] for b in out] == [
            [(FRAMECAST_UUID, payload(i))] for i in range(FRAMES)
        ]
    annexb = tmp_path / f"from-{LENGTH_FORMAT[codec]}.{codec}"
    annexb.write_bytes(b"".join(b.extract_dup(0, b.get_size()) for b in out))
    check_decoded(codec, aus, plain, annexb)
