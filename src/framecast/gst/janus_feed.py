"""RTP into a Janus rtp mountpoint: the mount's WebRTC producer (transcode once when browsers
cannot play it as it is, SEI kept) with one branch ``queue ─ rtph264pay ─ udpsink``, and for a
mount with audio ``queue ─ rtpopuspay ─ udpsink`` from its Opus (as browsers get it).

The producer is its own always-on instance (idle_stop=None), not the one the HTTP side starts
per viewer: an edge feeds viewers framecast never sees, so nothing here may stop with them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from gi.repository import Gst

from framecast.edge.janus_api import OPUS_PT, RTP_PT
from framecast.gst.element import make_element

log = logging.getLogger("framecast.edge")

STALL = 10.0  # s without a frame (a relay's camera gone past its grace): build it again


class RtpFeed:
    """Created, retargeted and stopped on the GLib thread. One per mount, whatever the number
    of edges: each edge is one destination of the ``multiudpsink`` (one transcode in all)."""

    def __init__(self, make_producer: Callable[[], Any]) -> None:
        self.producer = make_producer()  # a MountProducer, not started yet
        p = self.producer
        self.targets: dict[str, tuple[str, int, int | None]] = {}
        # SPS/PPS are in-band before every IDR already (the producer's parser/encoder)
        self.queue, self.sink = _udp_branch(
            p.pipeline, p.tee, make_element("queue", leaky=2, max_size_buffers=60,
                                            max_size_time=0, max_size_bytes=0),
            make_element("rtph264pay", pt=RTP_PT, config_interval=0,
                         aggregate_mode="zero-latency"))
        self.asink: Gst.Element | None = None
        if p.atee is not None:
            _aqueue, self.asink = _udp_branch(
                p.pipeline, p.atee, make_element("queue", leaky=2, max_size_buffers=0,
                                                 max_size_time=200 * Gst.MSECOND,
                                                 max_size_bytes=0),
                make_element("rtpopuspay", pt=OPUS_PT))
        self.last_frame = time.monotonic()  # start-up counts as a frame
        self.frames = 0
        self.queue.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self._frame)
        p.start()

    def _frame(self, _pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        self.last_frame = time.monotonic()
        self.frames += 1
        return Gst.PadProbeReturn.OK

    @property
    def stalled(self) -> bool:
        """The source failed (pipeline freed) or sends nothing any more."""
        return (self.producer.pipeline is None
                or time.monotonic() - self.last_frame > STALL)

    def target(self, key: str, host: str | None, port: int | None,
               audio_port: int | None = None) -> None:
        """Send to ``host:port`` (audio to ``host:audio_port``) for edge ``key`` (None: that
        edge no longer)."""
        if host is None or port is None:
            self.targets.pop(key, None)
        else:
            self.targets[key] = (host, port, audio_port)
        self.sink.set_property("clients", ",".join(f"{h}:{p}" for h, p, _a in
                                                   self.targets.values()))
        if self.asink is not None:
            self.asink.set_property("clients", ",".join(
                f"{h}:{a}" for h, _p, a in self.targets.values() if a is not None))

    def stop(self) -> None:
        self.producer.stop()


def _udp_branch(pipeline: Gst.Pipeline, tee: Gst.Element, queue: Gst.Element,
                pay: Gst.Element) -> tuple[Gst.Element, Gst.Element]:
    """``tee ─ queue ─ pay ─ multiudpsink`` in ``pipeline``: (queue, sink)."""
    # paced by the producer's clocksync: the sink must not wait on the clock again
    sink = make_element("multiudpsink", sync=False)
    sink.set_property("async", False)
    for el in (queue, pay, sink):
        pipeline.add(el)
    queue.link(pay)
    pay.link(sink)
    tee.request_pad_simple("src_%u").link(queue.get_static_pad("sink"))
    return queue, sink


class SharedRtpFeed:
    """The asyncio side of a mount's :class:`RtpFeed`: each edge gets a handle
    (:class:`framecast.edge.janus.Feed`); the producer stops with the last handle, and is
    built again when it stalled or could not start (at most every STALL s)."""

    def __init__(self, bridge: Any, name: str, make_producer: Callable[[], Any]) -> None:
        self.bridge = bridge
        self.name = name
        self.args = (make_producer,)
        self.feed: RtpFeed | None = None
        self.targets: dict[str, tuple[str, int, int | None]] = {}
        self.handles = 0
        self.lock = asyncio.Lock()
        self._tried = 0.0  # monotonic time of the last start attempt
        self._said = False

    def handle(self) -> _EdgeHandle:
        self.handles += 1
        return _EdgeHandle(self, f"edge-{self.handles}")

    async def target(self, key: str, host: str | None, port: int | None,
                     audio_port: int | None = None) -> None:
        async with self.lock:
            if host is None or port is None:
                self.targets.pop(key, None)
            else:
                self.targets[key] = (host, port, audio_port)
            if not self.targets:
                if self.feed is not None:
                    feed, self.feed = self.feed, None
                    await self.bridge.run(feed.stop)
                return
            if self.feed is not None and self.feed.stalled:
                feed, self.feed = self.feed, None
                if not self._said:  # once per outage
                    log.warning("/%s: RTP feed to Janus stalled; starting it again every "
                                "%.0f s", self.name, STALL)
                    self._said = True
                await self.bridge.run(feed.stop)
            if self.feed is None:
                if time.monotonic() - self._tried < STALL and self._tried:
                    return
                self._tried = time.monotonic()
                try:
                    self.feed = await self.bridge.run(RtpFeed, *self.args)
                except Exception as exc:  # the source is down: retried later
                    if not self._said:
                        log.warning("/%s: RTP feed to Janus cannot start: %s", self.name, exc)
                        self._said = True
                    return
            elif self.feed.frames and not self.feed.stalled:
                self._said = False  # flowing again
            for k, (h, p, a) in self.targets.items():
                await self.bridge.run(self.feed.target, k, h, p, a)
            for k in set(self.feed.targets) - set(self.targets):
                await self.bridge.run(self.feed.target, k, None, None)


class _EdgeHandle:
    def __init__(self, shared: SharedRtpFeed, key: str) -> None:
        self.shared, self.key = shared, key

    async def target(self, host: str, port: int, audio_port: int | None = None) -> None:
        await self.shared.target(self.key, host, port, audio_port)

    async def stop(self) -> None:
        await self.shared.target(self.key, None, None)
