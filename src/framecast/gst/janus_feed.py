"""RTP into a Janus rtp mountpoint: the mount's WebRTC producer (transcode once when browsers
cannot play it as it is, SEI kept) with one branch ``queue ─ rtph264pay ─ udpsink``.

The producer is its own always-on instance (idle_stop=None), not the one the HTTP side starts
per viewer: an edge feeds viewers framecast never sees, so nothing here may stop with them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from framecast.edge.janus_api import RTP_PT
from framecast.gst.element import make_element
from framecast.gst.webrtc import MountProducer, SourceFactory, StreamInfo

log = logging.getLogger("framecast.edge")


class RtpFeed:
    """Created, retargeted and stopped on the GLib thread. One per mount, whatever the number
    of edges: each edge is one destination of the ``multiudpsink`` (one transcode in all)."""

    def __init__(self, name: str, source: SourceFactory, info: StreamInfo) -> None:
        self.producer = MountProducer(f"{name}-janus", source, info, idle_stop=None)
        p = self.producer
        self.targets: dict[str, tuple[str, int]] = {}
        self.queue = make_element("queue", leaky=2, max_size_buffers=60, max_size_time=0,
                                  max_size_bytes=0)
        # SPS/PPS are in-band before every IDR already (the producer's parser/encoder)
        self.pay = make_element("rtph264pay", pt=RTP_PT, config_interval=0,
                                aggregate_mode="zero-latency")
        # paced by the producer's clocksync: the sink must not wait on the clock again
        self.sink = make_element("multiudpsink", sync=False)
        self.sink.set_property("async", False)
        for el in (self.queue, self.pay, self.sink):
            p.pipeline.add(el)
        self.queue.link(self.pay)
        self.pay.link(self.sink)
        p.tee.request_pad_simple("src_%u").link(self.queue.get_static_pad("sink"))
        p.start()

    def target(self, key: str, host: str | None, port: int | None) -> None:
        """Send to ``host:port`` for edge ``key`` (None: that edge no longer)."""
        if host is None or port is None:
            self.targets.pop(key, None)
        else:
            self.targets[key] = (host, port)
        self.sink.set_property("clients", ",".join(f"{h}:{p}" for h, p in
                                                   self.targets.values()))

    def stop(self) -> None:
        self.producer.stop()


class SharedRtpFeed:
    """The asyncio side of a mount's :class:`RtpFeed`: each edge gets a handle
    (:class:`framecast.edge.janus.Feed`); the producer stops with the last handle."""

    def __init__(self, bridge: Any, name: str, source: SourceFactory, info: StreamInfo) -> None:
        self.bridge = bridge
        self.args = (name, source, info)
        self.feed: RtpFeed | None = None
        self.handles = 0
        self.lock = asyncio.Lock()

    def handle(self) -> _EdgeHandle:
        self.handles += 1
        return _EdgeHandle(self, f"edge-{self.handles}")

    async def target(self, key: str, host: str | None, port: int | None) -> None:
        async with self.lock:
            if self.feed is None and host is not None:
                self.feed = await self.bridge.run(RtpFeed, *self.args)
            if self.feed is not None:
                await self.bridge.run(self.feed.target, key, host, port)
                if not self.feed.targets:
                    feed, self.feed = self.feed, None
                    await self.bridge.run(feed.stop)


class _EdgeHandle:
    def __init__(self, shared: SharedRtpFeed, key: str) -> None:
        self.shared, self.key = shared, key

    async def target(self, host: str, port: int) -> None:
        await self.shared.target(self.key, host, port)

    async def stop(self) -> None:
        await self.shared.target(self.key, None, None)
