"""The base of framecast's Python elements that take one access unit and push one.

A pad probe cannot replace a buffer in 1.22; an element with its own chain function can. It
also needs its own event function: ``event_default`` drops CAPS unless the pad has PROXY_CAPS,
which Python cannot set — so CAPS are forwarded here, and caps queries are proxied so upstream
negotiates with what is downstream of us.
"""

from __future__ import annotations

from typing import Any

from gi.repository import Gst


def make_element(factory: str, name: str | None = None, **props: Any) -> Gst.Element:
    """``Gst.ElementFactory.make`` with properties (``key_name`` → ``key-name``) and a clear
    error when the element's plugin is not installed."""
    el = Gst.ElementFactory.make(factory, name)
    if el is None:
        raise RuntimeError(f"GStreamer element '{factory}' is not installed")
    for key, value in props.items():
        el.set_property(key.replace("_", "-"), value)
    return el


def _chain(pad: Gst.Pad, parent: Gst.Object, buf: Gst.Buffer) -> Gst.FlowReturn:
    return parent.chain(pad, parent, buf)


def _sink_event(pad: Gst.Pad, parent: Gst.Object, event: Gst.Event) -> bool:
    return parent._sink_event(pad, parent, event)


class AccessUnitElement:
    """Mixin: ``class X(AccessUnitElement, Gst.Element)`` with ``__gstmetadata__`` and
    ``__gsttemplates__`` (pads "sink" and "src"); call :meth:`init_pads` in ``__init__`` and
    override :meth:`chain` (and :meth:`on_sink_event`). A mixin, not a Gst.Element subclass:
    gst-python installs pad templates only on classes deriving from Gst.Element directly.
    """

    sinkpad: Gst.Pad
    srcpad: Gst.Pad

    get_pad_template: Any
    add_pad: Any

    def init_pads(self) -> None:
        self.sinkpad = Gst.Pad.new_from_template(self.get_pad_template("sink"), "sink")
        self.srcpad = Gst.Pad.new_from_template(self.get_pad_template("src"), "src")
        # Static functions that reach the element through ``parent``: a bound method held by
        # the (C) pad would keep the element alive through its own pad, a cycle Python's GC
        # cannot see (every RTSP media start leaked one injector with its pads and state).
        self.sinkpad.set_chain_function_full(_chain)
        self.sinkpad.set_event_function_full(_sink_event)
        self.sinkpad.set_query_function_full(self._query)
        self.srcpad.set_query_function_full(self._query)
        self.add_pad(self.sinkpad)
        self.add_pad(self.srcpad)

    def chain(self, pad: Gst.Pad, parent: Gst.Object, buf: Gst.Buffer) -> Gst.FlowReturn:
        return self.srcpad.push(buf)

    def on_sink_event(self, event: Gst.Event) -> None:
        """Look at a downstream event before it is forwarded (caps, segment, flush …)."""

    def _sink_event(self, pad: Gst.Pad, parent: Gst.Object, event: Gst.Event) -> bool:
        self.on_sink_event(event)
        if event.type == Gst.EventType.CAPS:
            return self.srcpad.push_event(event)
        return pad.event_default(parent, event)

    @staticmethod
    def _query(pad: Gst.Pad, parent: Gst.Object, query: Gst.Query) -> bool:
        if query.type == Gst.QueryType.CAPS:
            return Gst.Pad.proxy_query_caps(pad, query)
        if query.type == Gst.QueryType.ACCEPT_CAPS:
            return Gst.Pad.proxy_query_accept_caps(pad, query)
        return pad.query_default(parent, query)
