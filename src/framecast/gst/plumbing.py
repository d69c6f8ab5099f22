"""Shared GStreamer plumbing, written once: link a chain, drain a pad, walk a bin, wait on
the bus."""

from __future__ import annotations

from collections.abc import Sequence

from gi.repository import Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.gst.element import make_element

BUS_STOP = Gst.MessageType.EOS | Gst.MessageType.ERROR


class LinkError(RuntimeError):
    """Two elements that should link do not (a missing caps feature, a wrong recipe)."""


def add_chain(parent: Gst.Bin, elements: Sequence[Gst.Element], *,
              start: bool = False) -> None:
    """Add ``elements`` to ``parent`` and link them in order; ``start``: bring them to the
    parent's state (last first, so nothing pushes into an element that is not ready)."""
    for el in elements:
        parent.add(el)
    for a, z in zip(elements, elements[1:], strict=False):
        if not a.link(z):
            raise LinkError(f"cannot link {a.get_name()} to {z.get_name()}")
    if start:
        for el in reversed(elements):
            el.sync_state_with_parent()


def link_pad(pad: Gst.Pad, element: Gst.Element) -> None:
    """Link ``pad`` to ``element``'s sink pad; raises :class:`LinkError` with the reason."""
    res = pad.link(element.get_static_pad("sink"))
    if res != Gst.PadLinkReturn.OK:
        raise LinkError(f"cannot link {pad.get_name()} to {element.get_name()} "
                        f"({res.value_nick})")


def drain(parent: Gst.Bin, pad: Gst.Pad) -> None:
    """Send a stream nobody wants to a fakesink (an unlinked pad would stop its demuxer)."""
    sink = make_element("fakesink", sync=False)
    sink.set_property("async", False)
    parent.add(sink)
    sink.sync_state_with_parent()
    pad.link(sink.get_static_pad("sink"))


def walk(element: Gst.Element) -> list[Gst.Element]:
    """``element`` and, for a bin, every element inside it at any depth. Safe while the bin
    changes (an iterator RESYNC restarts the walk)."""
    if not isinstance(element, Gst.Bin):
        return [element]
    while True:
        found: list[Gst.Element] = [element]
        it = element.iterate_recurse()
        while True:
            res, el = it.next()
            if res == Gst.IteratorResult.OK:
                found.append(el)
            elif res == Gst.IteratorResult.RESYNC:
                break
            else:  # DONE or ERROR
                return found


def wait_bus(bus: Gst.Bus, timeout_ns: int,
             types: Gst.MessageType = BUS_STOP) -> Gst.Message | None:
    """The first message of ``types`` within ``timeout_ns`` (None if none came)."""
    return bus.timed_pop_filtered(timeout_ns, types)


def error_text(msg: Gst.Message) -> str:
    """An ERROR message's text, one line."""
    err, _dbg = msg.parse_error()
    return " ".join(str(err.message).split())
