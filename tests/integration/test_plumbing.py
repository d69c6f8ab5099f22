"""gst/plumbing.py: the shared GStreamer helpers on real elements."""

from __future__ import annotations

import pytest

from framecast.gst.element import make_element
from framecast.gst.plumbing import LinkError, add_chain, error_text, wait_bus, walk
from framecast.gst.runtime import Gst, init_gst


def test_chain_runs_to_eos_and_a_bad_link_says_which() -> None:
    init_gst()
    p = Gst.Pipeline.new("t")
    add_chain(p, [make_element("videotestsrc", num_buffers=3), make_element("identity", "mid"),
                  make_element("fakesink")])
    p.set_state(Gst.State.PLAYING)
    try:
        msg = wait_bus(p.get_bus(), 10 * Gst.SECOND)
        assert msg is not None and msg.type == Gst.MessageType.EOS
    finally:
        p.set_state(Gst.State.NULL)
    with pytest.raises(LinkError, match="cannot link a to v"):
        add_chain(Gst.Pipeline.new("u"), [make_element("audiotestsrc", "a"),
                                          make_element("videoconvert", "v")])


def test_error_is_one_line() -> None:
    init_gst()
    p = Gst.Pipeline.new("e")
    add_chain(p, [make_element("filesrc", location="/nonexistent/x.mp4"),
                  make_element("fakesink")])
    p.set_state(Gst.State.PLAYING)
    try:
        msg = wait_bus(p.get_bus(), 10 * Gst.SECOND)
        assert msg is not None and msg.type == Gst.MessageType.ERROR
        text = error_text(msg)
        assert text == "Resource not found."
    finally:
        p.set_state(Gst.State.NULL)


def test_walk_finds_nested_elements() -> None:
    init_gst()
    outer, inner = Gst.Bin.new("outer"), Gst.Bin.new("inner")
    inner.add(make_element("identity", "deep"))
    outer.add(inner)
    outer.add(make_element("identity", "shallow"))
    names = {el.get_name() for el in walk(outer)}
    assert names == {"outer", "inner", "deep", "shallow"}
    assert [el.get_name() for el in walk(make_element("identity", "one"))] == ["one"]
