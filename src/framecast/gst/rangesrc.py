"""``framecastrangesrc``: a file source that shows only the first ``size`` bytes of a file.

Used for fragmented MP4s with an ``mfra``: qtdemux 1.22 mis-times the first fragment after
every loop seek when it has one (see :mod:`framecast.isobmff`), and reads the fragments
correctly without it. Random access (pull mode), like filesrc, so qtdemux seeks as usual;
one Python call per pulled sample (~80/s for video + AAC): negligible.
"""

from __future__ import annotations

import logging
import os

from gi.repository import GObject, Gst, GstBase  # noqa: I001 - after runtime's require_version

from framecast.gst.runtime import init_gst

init_gst()

log = logging.getLogger("framecast.rangesrc")
ELEMENT_NAME = "framecastrangesrc"


class RangeFileSrc(GstBase.BaseSrc):
    __gstmetadata__ = ("framecast file range source", "Source/File",
                       "Reads the first `size` bytes of a file, random access",
                       "framecast")
    __gsttemplates__ = (Gst.PadTemplate.new("src", Gst.PadDirection.SRC,
                                            Gst.PadPresence.ALWAYS, Gst.Caps.new_any()),)

    def __init__(self) -> None:
        super().__init__()
        self.location = ""
        self.limit = -1  # bytes shown; -1: the whole file
        self._fd: int | None = None
        self._size = 0  # basesrc's default format is BYTES, as random access wants

    def configure(self, location: str, size: int | None = None) -> RangeFileSrc:
        self.location = location
        self.limit = -1 if size is None else int(size)
        return self

    def do_start(self) -> bool:
        try:
            self._fd = os.open(self.location, os.O_RDONLY)
            real = os.fstat(self._fd).st_size
        except OSError as exc:
            log.warning("%s: %s", self.location, exc.strerror or exc)
            return False  # basesrc posts the error
        self._size = real if self.limit < 0 else min(real, self.limit)
        return True

    def do_stop(self) -> bool:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        return True

    def do_is_seekable(self) -> bool:
        return True

    def do_get_size(self) -> tuple[bool, int]:
        return True, self._size

    def do_create(self, offset: int, length: int,
                  _buf: Gst.Buffer | None = None) -> tuple[Gst.FlowReturn, Gst.Buffer | None]:
        if self._fd is None:
            return Gst.FlowReturn.FLUSHING, None
        if offset >= self._size:
            return Gst.FlowReturn.EOS, None
        data = os.pread(self._fd, min(length, self._size - offset), offset)
        if not data:
            return Gst.FlowReturn.EOS, None
        buf = Gst.Buffer.new_wrapped(data)
        buf.offset = offset
        buf.offset_end = offset + len(data)
        return Gst.FlowReturn.OK, buf


GObject.type_register(RangeFileSrc)
# registered at import (under Python's import lock): two media built at once in two threads
# must not race to register the type
Gst.Element.register(None, ELEMENT_NAME, Gst.Rank.NONE, RangeFileSrc)


def make_range_src(location: str, size: int | None, name: str | None = None) -> Gst.Element:
    """A source showing ``location`` up to byte ``size`` (None: all of it)."""
    el = Gst.ElementFactory.make(ELEMENT_NAME, name)
    if el is None:
        raise RuntimeError(f"cannot create {ELEMENT_NAME}")
    return el.configure(location, size)
