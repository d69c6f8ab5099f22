"""The seam between a mount's media pipeline and the metadata layer.

``make_video_filter`` returns the element to place between a mount's video parser and its
payloader: the SEI injector configured for that mount (stamps + sidecar + format from the mount
config), or None when the mount wants no metadata. The RTSP/WebRTC pipeline builders call it.

Applications add their own per-frame fields to a mount with ``Mount(providers=(fn, …))``
(``fn(FrameInfo) -> dict | None``): every injector made for that mount calls them. They belong
to the mount (so to its server), not to a process-wide registry keyed by name.
"""

from __future__ import annotations

import logging

from gi.repository import Gst

from framecast.config import Mount
from framecast.gst import stamps as native
from framecast.gst.inject import make_injector
from framecast.gst.probe import MediaInfo
from framecast.sei import Codec

log = logging.getLogger("framecast.inject")


def make_video_filter(mount: Mount, info: MediaInfo | None,
                      codec: Codec) -> Gst.Element | None:
    """Element for ``mount``, ``info`` (its probed media info; None for relays) and ``codec``.

    File mounts (``info`` with ``video_pts`` and ``period_ns``) are indexed by the file's
    presented PTS and loop number; relays and app sources by running time and frame rate.
    """
    name = mount.name
    stamps, fmt, sidecar, providers = (mount.stamps, mount.metadata_format, mount.sidecar,
                                       mount.providers)
    if not stamps and not sidecar and not providers and mount.file:
        return None  # a file mount that asked for nothing: plain passthrough
    video_pts = info.video_pts if info is not None else ()
    period_ns = info.period_ns if info is not None else 0
    frame_ns = info.frame_ns if info is not None else 0
    ename = f"inject-{name}" if name else None
    if stamps and not sidecar and not providers and not mount.source and native.enabled():
        # stamps only (the default for files): the compiled element, ~1.4 µs per frame instead
        # of the Python one's ~53 (relays keep Python: an origin's stamps move to "hops")
        fast = native.make_stamps_injector(ename, video_pts=video_pts, period_ns=period_ns,
                                           frame_ns=frame_ns or None, fmt=fmt)
        if fast is not None:
            log.debug("mount %s: compiled stamps injector (%d frames/loop)", name,
                      len(video_pts))
            return fast
    el = make_injector(ename, video_pts=video_pts, period_ns=period_ns,
                       frame_ns=frame_ns or None, stamps=stamps, fmt=fmt)
    if mount.source:
        el.hop = name  # a relay: an origin's stamps stay, ours go to "hops" (framecast.hops)
    if sidecar:
        el.load_sidecar(sidecar)
    for fn in providers:
        el.add_provider(fn)
    log.debug("mount %s: injector (stamps=%s, sidecar=%s, %d frames/loop)", name, stamps,
              sidecar, len(video_pts))
    return el
