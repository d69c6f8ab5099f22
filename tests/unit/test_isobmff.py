"""framecast.isobmff: finding a fragmented MP4's mfra from the file's tail."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from framecast.isobmff import MFRO_SIZE, mfra_offset, mfra_offset_from_tail


def _mfro(mfra_size: int) -> bytes:
    return struct.pack(">I4sII", MFRO_SIZE, b"mfro", 0, mfra_size)


def test_mfra_found_from_mfro(tmp_path: Path) -> None:
    mfra = struct.pack(">I4s", 8 + 20 + MFRO_SIZE, b"mfra") + b"\0" * 20 + _mfro(44)
    data = b"\0\0\0\x10ftypisom\0\0\0\0" + b"x" * 100 + mfra
    p = tmp_path / "f.mp4"
    p.write_bytes(data)
    assert mfra_offset(p) == len(data) - len(mfra)


def test_no_mfra(tmp_path: Path) -> None:
    p = tmp_path / "f.mp4"
    p.write_bytes(b"\0\0\0\x10ftypisom\0\0\0\0" + b"y" * 64)
    assert mfra_offset(p) is None
    p.write_bytes(b"abc")
    assert mfra_offset(p) is None


def test_mfro_pointing_at_something_else(tmp_path: Path) -> None:
    p = tmp_path / "f.mp4"
    p.write_bytes(b"\0" * 64 + _mfro(32))  # 32 bytes back is not an mfra box
    assert mfra_offset(p) is None


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=1 << 40))
def test_tail_never_raises(tail: bytes, size: int) -> None:
    off = mfra_offset_from_tail(tail, size)
    assert off is None or 0 <= off <= size - MFRO_SIZE


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


IDENTITY = struct.pack(">9i", 65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
ROTATE_90 = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)


def _trak(handler: bytes, matrix: bytes, version: int = 0) -> bytes:
    times = b"\0" * (32 if version else 20)  # creation, modification, id, reserved, duration
    tkhd = _box(b"tkhd", bytes([version, 0, 0, 7]) + times + b"\0" * 16 + matrix + b"\0" * 8)
    hdlr = _box(b"hdlr", b"\0" * 8 + handler + b"\0" * 13)
    return _box(b"trak", tkhd + _box(b"mdia", hdlr))


def test_video_matrix_read_and_written(tmp_path: Path) -> None:
    from framecast.isobmff import set_video_matrix, track_matrix_offsets, video_matrix

    moov = _box(b"moov", _box(b"mvhd", b"\0" * 100) + _trak(b"soun", IDENTITY)
                + _trak(b"vide", ROTATE_90, version=1))
    assert [h for h, _ in track_matrix_offsets(moov)] == [b"soun", b"vide"]
    p = tmp_path / "r.mov"
    p.write_bytes(_box(b"ftyp", b"qt  \0\0\0\0") + moov + _box(b"mdat", b"x" * 10))
    assert video_matrix(p) == ROTATE_90
    assert set_video_matrix(p, IDENTITY)
    assert video_matrix(p) == IDENTITY
    assert len(p.read_bytes()) == 8 + 8 + len(moov) + 18  # patched in place


@given(st.binary(max_size=200))
def test_track_parser_never_raises(data: bytes) -> None:
    from framecast.isobmff import track_matrix_offsets

    for _handler, off in track_matrix_offsets(_box(b"moov", data)):
        assert 0 <= off <= len(data) + 8 - 36
