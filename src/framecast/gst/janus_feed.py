"""RTP into a Janus rtp mountpoint: the mount's WebRTC producer (transcode once when browsers
cannot play it as it is, SEI kept) with one branch ``queue ─ rtph264pay ─ udpsink``.

The producer is its own always-on instance (idle_stop=None), not the one the HTTP side starts
per viewer: an edge feeds viewers framecast never sees, so nothing here may stop with them.
"""

from __future__ import annotations

import logging
from typing import Any

from framecast.edge.janus_api import RTP_PT
from framecast.gst.element import make_element
from framecast.gst.webrtc import MountProducer, SourceFactory, StreamInfo

log = logging.getLogger("framecast.edge")


class RtpFeed:
    """Created, retargeted and stopped on the GLib thread."""

    def __init__(self, name: str, source: SourceFactory, info: StreamInfo, host: str,
                 port: int) -> None:
        self.producer = MountProducer(f"{name}-janus", source, info, idle_stop=None)
        p = self.producer
        self.queue = make_element("queue", leaky=2, max_size_buffers=60, max_size_time=0,
                                  max_size_bytes=0)
        # SPS/PPS are in-band before every IDR already (the producer's parser/encoder)
        self.pay = make_element("rtph264pay", pt=RTP_PT, config_interval=0,
                                aggregate_mode="zero-latency")
        # paced by the producer's clocksync: the sink must not wait on the clock again
        self.sink = make_element("udpsink", host=host, port=port, sync=False)
        self.sink.set_property("async", False)
        for el in (self.queue, self.pay, self.sink):
            p.pipeline.add(el)
        self.queue.link(self.pay)
        self.pay.link(self.sink)
        p.tee.request_pad_simple("src_%u").link(self.queue.get_static_pad("sink"))
        p.start()

    def target(self, host: str, port: int) -> None:
        self.sink.set_property("host", host)
        self.sink.set_property("port", port)

    def stop(self) -> None:
        self.producer.stop()


class AsyncRtpFeed:
    """The :class:`framecast.edge.janus.Feed` face of an :class:`RtpFeed` (asyncio side)."""

    def __init__(self, bridge: Any, name: str, source: SourceFactory, info: StreamInfo) -> None:
        self.bridge = bridge
        self.args = (name, source, info)
        self.feed: RtpFeed | None = None

    async def target(self, host: str, port: int) -> None:
        if self.feed is None:
            self.feed = await self.bridge.run(RtpFeed, *self.args, host, port)
        else:
            await self.bridge.run(self.feed.target, host, port)

    async def stop(self) -> None:
        if self.feed is not None:
            feed, self.feed = self.feed, None
            await self.bridge.run(feed.stop)
