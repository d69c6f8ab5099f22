"""ISO BMFF (MP4/MOV) facts GStreamer gets wrong or drops — pure, no GStreamer.

Where a fragmented MP4's random-access index (``mfra``) starts, and each track's display
matrix (rotation).

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
    size: int
    mfra_size: int
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


# -- track display matrices (rotation) -------------------------------------------------------
# qtmux 1.22 writes the identity matrix whatever the stream's image-orientation tag says: a
# phone video remuxed by GStreamer turns sideways. ``framecast inject`` copies the matrix.

_CONTAINERS = {b"moov", b"trak", b"mdia"}


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, body offset, box end) of the boxes in data[start:end]; stops at a bad size."""
    out = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        hdr = 8
        if size == 1:
            if pos + 16 > end:
                break
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            hdr = 16
        elif size == 0:
            size = end - pos
        if size < hdr or pos + size > end:
            break
        out.append((kind, pos + hdr, pos + size))
        pos += size
    return out


def _find(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, body, box_end in _boxes(data, start, end):
        if k == kind:
            return body, box_end
    return None


def track_matrix_offsets(moov: bytes) -> list[tuple[bytes, int]]:
    """(handler type, offset of the 36-byte matrix in ``moov``) of every track of a ``moov``
    box's bytes (the box itself, header included)."""
    out: list[tuple[bytes, int]] = []
    top = _boxes(moov, 0, len(moov))
    if not top or top[0][0] != b"moov":
        return out
    _, mbody, mend = top[0]
    for kind, tbody, tend in _boxes(moov, mbody, mend):
        if kind != b"trak":
            continue
        tkhd = _find(moov, tbody, tend, b"tkhd")
        mdia = _find(moov, tbody, tend, b"mdia")
        hdlr = _find(moov, mdia[0], mdia[1], b"hdlr") if mdia else None
        if tkhd is None or hdlr is None or hdlr[0] + 12 > hdlr[1]:
            continue
        version = moov[tkhd[0]]
        # version/flags, times, track id, reserved, duration, reserved, layer, group, volume
        off = tkhd[0] + 4 + (32 if version == 1 else 20) + 8 + 8
        if off + 36 > tkhd[1]:
            continue
        out.append((moov[hdlr[0] + 8:hdlr[0] + 12], off))
    return out


def _moov_span(path: str | os.PathLike[str]) -> tuple[int, bytes] | None:
    """(file offset, bytes) of ``path``'s top-level moov box."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            box, kind = struct.unpack(">I4s", head[:8])
            if box == 1:
                box = struct.unpack(">Q", head[8:16])[0]
            elif box == 0:
                box = size - pos
            if box < 8:
                return None
            if kind == b"moov":
                f.seek(pos)
                return pos, f.read(box)
            pos += box
    return None


def video_matrix(path: str | os.PathLike[str]) -> bytes | None:
    """The first video track's display matrix (36 bytes), or None."""
    span = _moov_span(path)
    if span is None:
        return None
    for handler, off in track_matrix_offsets(span[1]):
        if handler == b"vide":
            return span[1][off:off + 36]
    return None


def set_video_matrix(path: str | os.PathLike[str], matrix: bytes) -> bool:
    """Write ``matrix`` into the first video track of ``path`` (in place); False if none."""
    if len(matrix) != 36:
        raise ValueError("a track matrix is 36 bytes")
    span = _moov_span(path)
    if span is None:
        return False
    for handler, off in track_matrix_offsets(span[1]):
        if handler == b"vide":
            with open(path, "r+b") as f:
                f.seek(span[0] + off)
                f.write(matrix)
            return True
    return False
