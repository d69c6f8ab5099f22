"""Where a fragmented MP4's random-access index (``mfra``) starts — pure, no GStreamer.

Why framecast cares: qtdemux 1.22, seeking in a fragmented MP4 that has an ``mfra``, takes the
``tfra`` entry's time — the *presentation* time of the fragment's first sync sample, as FFmpeg
writes it — as the fragment's *decode* time. Every loop's first fragment then comes out shifted
by the keyframe's composition offset (+2 frames with B-frames): repeated and missing PTS, and
metadata two lines ahead. Without an ``mfra`` qtdemux reads the fragments' own ``tfdt`` and
loops exactly; so the server shows it the file up to the ``mfra`` (see ``gst/rangesrc.py``).
"""

from __future__ import annotations

import os
import struct

MFRO_SIZE = 16  # size(4) "mfro"(4) version+flags(4) mfra size(4): the file's last box


def mfra_offset_from_tail(tail: bytes, file_size: int) -> int | None:
    """Offset of the ``mfra`` box given the file's last 16 bytes, or None if there is none.

    The ``mfro`` box closing the file says how large the ``mfra`` is (ISO/IEC 14496-12 8.8.11).
    """
    if len(tail) < MFRO_SIZE or file_size < MFRO_SIZE:
        return None
    size, kind, _vflags, mfra_size = struct.unpack(">I4sII", tail[-MFRO_SIZE:])
    if kind != b"mfro" or size != MFRO_SIZE or not MFRO_SIZE <= mfra_size <= file_size:
        return None
    return file_size - mfra_size


def mfra_offset(path: str | os.PathLike[str]) -> int | None:
    """Offset of ``path``'s ``mfra`` box (checked to be one), or None."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size < MFRO_SIZE:
            return None
        f.seek(size - MFRO_SIZE)
        off = mfra_offset_from_tail(f.read(MFRO_SIZE), size)
        if off is None:
            return None
        f.seek(off)
        head = f.read(8)
    if len(head) < 8 or head[4:8] != b"mfra":
        return None
    return off
