"""The seam between a mount's media pipeline and the metadata layer.

``make_video_filter`` returns the element to place between a mount's video parser and its
payloader (the SEI injector configured for that mount), or None for no filter. The RTSP/WebRTC
pipeline builders call it; the metadata layer implements it.
"""

from __future__ import annotations

from typing import Any

from gi.repository import Gst


def make_video_filter(mount: Any, info: Any, codec: str) -> Gst.Element | None:
    """Element for ``mount`` (a config mount), ``info`` (its probed media info) and ``codec``."""
    return None
