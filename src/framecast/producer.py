"""The interface between the HTTP side and a mount's WebRTC producer (no GStreamer here).

``framecast.http`` drives producers only through :class:`Producer`; the server module hands it
a factory per mount (:class:`MountSpec`), so HTTP never imports ``framecast.gst``. Every
producer call is made on the GLib thread (through the bridge); events come back through
:class:`ViewerEvents` on the asyncio loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from framecast.config import DEFAULTS
from framecast.errors import SourceUnavailable, TooManyViewers, WebRTCError

__all__ = ["SOURCE_FAILED", "SOURCE_RETRY", "MountSpec", "Producer", "ProducerFactory",
           "ProducerOptions", "SourceUnavailable", "TooManyViewers", "ViewerEvents",
           "WebRTCError"]


SOURCE_FAILED = "source failed"  # how a viewer's end reason starts when its source failed
SOURCE_RETRY = 5.0  # s after a source failure before a new viewer makes it try again


@dataclass
class ViewerEvents:
    """Callbacks for one viewer, each invoked on the asyncio loop (via ``post``)."""

    post: Callable[..., None]  # bridge.to_asyncio
    on_sdp: Callable[[str, str], None] = lambda t, s: None  # (type, sdp) to send to the peer
    on_ice: Callable[[int, str], None] = lambda m, c: None  # (mline index, candidate)
    on_gathered: Callable[[str], None] = lambda sdp: None  # local SDP with all candidates
    on_closed: Callable[[str], None] = lambda reason: None  # ICE failed / pipeline error
    on_connected: Callable[[], None] = lambda: None  # ICE connected: no longer pending


class Producer(Protocol):
    """One mount's WebRTC side (framecast.gst.webrtc.MountProducer); GLib thread only."""

    running: bool
    flowing: bool  # the current run's source has delivered its first frame

    @property
    def sei_injected(self) -> int: ...

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def add_viewer(self, viewer_id: str, events: ViewerEvents,
                   offer_sdp: str | None = None) -> None: ...
    def set_remote(self, viewer_id: str, sdp_type: str, sdp: str) -> None: ...
    def add_ice(self, viewer_id: str, mline: int, candidate: str) -> None: ...
    def remove_viewer(self, viewer_id: str) -> bool: ...
    def describe(self) -> dict[str, Any]: ...
    def webrtcbin_count(self) -> int: ...


@dataclass(frozen=True)
class ProducerOptions:
    """How the HTTP side wants its producers run (from Settings / HttpLimits)."""

    metrics: Any = None
    idle_stop: float | None = DEFAULTS.webrtc_idle_stop  # None: always on
    max_viewers: int = DEFAULTS.webrtc_max_viewers


ProducerFactory = Callable[[ProducerOptions], Producer]
"""Builds a mount's producer on the GLib thread (raises if its source cannot start)."""


@dataclass
class MountSpec:
    """What the HTTP side needs to offer one mount: its name, how to make its producer, and
    what /api/streams says about it."""

    name: str
    make_producer: ProducerFactory
    rtsp_url: str | None = None
    status: Callable[[], Mapping[str, Any]] | None = None  # e.g. {"loops": 3} from the looper
