"""A tiny Python element that rewrites whole access units."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gi.repository import Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.gst.element import AccessUnitElement
from framecast.gst.runtime import init_gst

init_gst()  # the element class needs an initialised GStreamer

log = logging.getLogger("framecast.webrtc")


class AUFilter(AccessUnitElement, Gst.Element):
    """Calls ``fn(au_bytes, pts) -> bytes | None`` per buffer; None passes the buffer unchanged.

    A pad probe cannot replace a buffer (GSTREAMER-NOTES), an element with a chain function can.
    """

    __gtype_name__ = "FramecastAUFilter"
    __gstmetadata__ = ("framecast AU filter", "Filter", "Rewrites access units", "framecast")
    __gsttemplates__ = (
        Gst.PadTemplate.new("sink", Gst.PadDirection.SINK, Gst.PadPresence.ALWAYS,
                            Gst.Caps.new_any()),
        Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS,
                            Gst.Caps.new_any()),
    )

    def __init__(self, fn: Callable[[bytes, int], bytes | None] | None = None) -> None:
        super().__init__()
        self.fn = fn
        self.failures = 0
        self.init_pads()

    def chain(self, pad: Gst.Pad, parent: Any, buf: Gst.Buffer) -> Gst.FlowReturn:
        fn = self.fn
        if fn is None:
            return self.srcpad.push(buf)
        ok, info = buf.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.FlowReturn.ERROR
        try:
            data = bytes(info.data)
        finally:
            buf.unmap(info)
        try:
            new = fn(data, buf.pts)
        except Exception as exc:  # a bad AU must not stop the stream
            self.failures += 1
            if self.failures <= 3 or self.failures % 1000 == 0:
                log.warning("%s: AU filter failed (%d so far), AU passed unchanged: %s",
                            self.get_name(), self.failures, exc)
            new = None
        if new is None:
            return self.srcpad.push(buf)
        out = Gst.Buffer.new_wrapped(new)
        Gst.Buffer.copy_into(out, buf, Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.TIMESTAMPS
                             | Gst.BufferCopyFlags.META, 0, 0)
        return self.srcpad.push(out)
