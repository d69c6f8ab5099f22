"""Small pipeline-building helpers shared by the WebRTC modules."""

from __future__ import annotations

from gi.repository import Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.gst.element import make_element


def bin_of(elements: list[Gst.Element], name: str | None = None) -> Gst.Bin:
    """Link ``elements`` in a row inside a bin with ghost ``sink`` (if any) and ``src`` pads."""
    b = Gst.Bin.new(name)
    for el in elements:
        b.add(el)
    for a, z in zip(elements, elements[1:], strict=False):
        if not a.link(z):
            raise RuntimeError(f"cannot link {a.get_name()} to {z.get_name()}")
    first_sink = elements[0].get_static_pad("sink")
    if first_sink is not None:
        b.add_pad(Gst.GhostPad.new("sink", first_sink))
    b.add_pad(Gst.GhostPad.new("src", elements[-1].get_static_pad("src")))
    return b


def caps(text: str) -> Gst.Element:
    return make_element("capsfilter", caps=Gst.Caps.from_string(text))


def walk(b: Gst.Bin) -> list[Gst.Element]:
    """Every element inside ``b``, recursively."""
    out: list[Gst.Element] = []
    it = b.iterate_recurse()
    while True:
        res, el = it.next()
        if res == Gst.IteratorResult.RESYNC:
            it.resync()
            out.clear()
            continue
        if res != Gst.IteratorResult.OK:
            return out
        out.append(el)
