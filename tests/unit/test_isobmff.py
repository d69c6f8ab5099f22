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
