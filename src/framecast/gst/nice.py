"""libnice and RTP-session settings that webrtcbin 1.22 does not expose as its own properties."""

from __future__ import annotations

import logging
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

log = logging.getLogger("framecast.webrtc")


def no_upnp(webrtc: Gst.Element) -> None:
    """Turn off libnice's UPnP for this webrtcbin's ICE agent.

    By default each agent runs a GUPnP context manager (SSDP discovery, an HTTP server per
    interface): ~15 more fds and a thread per viewer (30 viewers: 886 fds instead of 422),
    multicast traffic, and attempts to open ports on the router — nothing a media server
    wants. With it on, 30 viewers starting at once saw some servers' candidate gathering stall
    past the WHEP timeout ("ICE failed") in about 1 run of 3; with it off, in none so far.
    webrtcbin 1.22's ``ice-agent`` getter steals a reference (``g_value_take_object``), so one
    is given back first, or the agent is freed under webrtcbin at the wrapper's death.
    """
    try:
        ice = webrtc.get_property("ice-agent")
        if ice is None:
            return
        _gobject_ref(ice)
        agent = ice.get_property("agent")
        if agent is not None and agent.find_property("upnp") is not None:
            agent.set_property("upnp", False)
    except Exception as exc:  # an older/newer GStreamer without these: keep the default
        log.debug("cannot turn UPnP off: %s", exc)


_gobject = None


def _gobject_ref(obj: Any) -> None:
    global _gobject
    if _gobject is None:
        import ctypes

        lib = ctypes.CDLL("libgobject-2.0.so.0")
        lib.g_object_ref.argtypes = [ctypes.c_void_p]
        lib.g_object_ref.restype = ctypes.c_void_p
        _gobject = lib
    _gobject.g_object_ref(hash(obj))  # PyGObject hashes a wrapper by its GObject pointer


def on_rtp_sessions(webrtc: Gst.Element, props: dict[str, Any]) -> tuple[Gst.Element, int] | None:
    """Set ``props`` on every RTP session this webrtcbin's rtpbin makes (it makes them while
    negotiating); (rtpbin, handler id) to disconnect later, or None without an rtpbin."""
    rtpbin = webrtc.get_by_name("rtpbin")
    if rtpbin is None:
        return None

    def added(_rtpbin: Gst.Element, el: Gst.Element) -> None:
        factory = el.get_factory()
        if factory is not None and factory.get_name() == "rtpsession":
            for name, value in props.items():
                el.set_property(name, value)

    return rtpbin, rtpbin.connect("element-added", added)
