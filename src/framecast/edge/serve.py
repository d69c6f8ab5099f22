"""``framecast serve`` ↔ edges: the mount list and the rtp feeds for :class:`EdgeManager`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from framecast.config import JanusEdge
from framecast.edge.janus import EdgeManager, EdgeMount, Feed

log = logging.getLogger("framecast.edge")

# not started by the factory (idle_stop=None would): the feed adds its branch first
_QUIET = 1e9


async def start_edges(edges: Sequence[JanusEdge], bridge: Any, server: Any,
                      http: Any = None) -> EdgeManager:
    """Start publishing ``server``'s mounts to ``edges``; ``http`` (if any) lists them."""
    from framecast.producer import ProducerOptions
    from framecast.streaminfo import transcode_reason

    specs = {name: st.webrtc for name, st in server.mounts.items() if st.webrtc is not None}

    def make(name: str) -> Any:
        """A fresh producer for ``name`` (GLib thread), as the WebRTC side makes it."""
        return specs[name].make_producer(ProducerOptions(idle_stop=_QUIET, max_viewers=1))

    def looks() -> dict[str, tuple[bool, str, str | None, str]]:
        """Per mount: (browsers play it as is, why not, profile, what WebRTC gets of its
        audio), from its producer."""
        out = {}
        for name in specs:
            try:
                prod = make(name)
            except Exception as exc:  # a bad mount is already reported by the RTSP side
                log.debug("/%s: no edge source: %s", name, exc)
                continue
            try:
                ok = not prod.transcoded
                out[name] = (ok, "" if ok else transcode_reason(prod.info), prod.info.profile,
                             prod.audio_mode)
            finally:
                prod.stop()
        return out

    mounts = [EdgeMount(name, server.rtsp_url(name), browser_ok=ok, reason=why,
                        profile_level_id="4d001f" if ok and profile == "main" else "42e01f",
                        audio=audio)
              for name, (ok, why, profile, audio) in (await bridge.run(looks)).items()]
    shared: dict[str, Any] = {}  # mount → SharedRtpFeed: one producer whatever the edges

    async def feed(m: EdgeMount) -> Feed:
        from framecast.gst.janus_feed import SharedRtpFeed

        if m.name not in shared:
            name = m.name
            shared[name] = SharedRtpFeed(bridge, name, lambda: make(name))
        return shared[m.name].handle()

    origin = server.rtsp_url("").rstrip("/")
    manager = await EdgeManager(edges, mounts, origin, feed).start()
    if http is not None:
        http.edges = manager.describe
    return manager
