"""``framecast serve`` ↔ edges: the mount list and the rtp feeds for :class:`EdgeManager`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from framecast.config import JanusEdge
from framecast.edge.janus import EdgeManager, EdgeMount, Feed

log = logging.getLogger("framecast.edge")


async def start_edges(edges: Sequence[JanusEdge], bridge: Any, server: Any,
                      http: Any = None) -> EdgeManager:
    """Start publishing ``server``'s mounts to ``edges``; ``http`` (if any) lists them."""
    from framecast.gst.webrtc import needs_transcode, source_for_mount, transcode_reason

    # the WebRTC source seam (what the HTTP side offers): the same StreamInfo decides whether
    # a browser can play the mount as it is
    sources: dict[str, Any] = {}
    for name, state in server.mounts.items():
        spec = http.mounts[name].spec if http is not None and name in http.mounts else None
        if spec is not None:
            sources[name] = (spec.source, spec.info)
        elif state.mount.file or state.mount.source:
            try:
                src, info, _status = await asyncio.to_thread(source_for_mount, state.mount)
            except Exception as exc:  # a bad mount is already reported by the RTSP side
                log.debug("/%s: no edge source: %s", name, exc)
                continue
            sources[name] = (src, info)
    mounts = []
    for name, (_src, info) in sources.items():
        ok = not needs_transcode(info)
        mounts.append(EdgeMount(name, server.rtsp_url(name), browser_ok=ok,
                                reason="" if ok else transcode_reason(info),
                                profile_level_id="4d001f" if ok and info.profile == "main"
                                else "42e01f"))

    shared: dict[str, Any] = {}  # mount → SharedRtpFeed: one producer whatever the edges

    async def feed(m: EdgeMount) -> Feed:
        from framecast.gst.janus_feed import SharedRtpFeed

        if m.name not in shared:
            src, info = sources[m.name]
            shared[m.name] = SharedRtpFeed(bridge, m.name, src, info)
        return shared[m.name].handle()

    origin = server.rtsp_url("").rstrip("/")
    manager = await EdgeManager(edges, mounts, origin, feed).start()
    if http is not None:
        http.edges = manager.describe
    return manager
