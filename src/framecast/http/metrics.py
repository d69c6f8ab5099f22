"""A tiny thread-safe metrics registry rendered as Prometheus text (no dependencies, no aiohttp).

Anyone may bump it, from any thread (streaming threads included)::

    from framecast.http.metrics import REGISTRY
    REGISTRY.inc("framecast_sei_injected_total", mount="demo")
    REGISTRY.set_gauge("framecast_rtsp_clients", 3)

Names ending in ``_total`` are counters, the rest gauges. Known names get a HELP line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

HELP = {
    "framecast_clients": "Connected clients by kind (signalling, webrtc, whep, rtsp).",
    "framecast_webrtc_viewers": "Live WebRTC viewers (webrtcbin elements) per mount.",
    "framecast_webrtc_frames_total": "Access units through each mount's WebRTC producer.",
    "framecast_webrtc_producer_running": "1 while a mount's WebRTC producer pipeline runs.",
    "framecast_webrtc_producer_starts_total": "WebRTC producer pipeline starts per mount.",
    "framecast_webrtc_bytes_sent_total": "Video payload bytes sent to WebRTC viewers.",
    "framecast_frames_total": "Frames served per mount and output.",
    "framecast_bytes_total": "Bytes served per mount and output.",
    "framecast_sei_injected_total": "SEI messages injected into access units.",
    "framecast_errors_total": "Errors by kind.",
    "framecast_signalling_messages_total": "Signalling messages received.",
    "framecast_http_requests_total": "HTTP requests by route and status.",
}

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {}
        self._collectors: list[Callable[[Registry], None]] = []

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self._lock:
            series = self._values.setdefault(name, {})
            series[key] = series.get(key, 0) + amount

    def set_gauge(self, name: str, value: float, **labels: str) -> None:
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self._lock:
            self._values.setdefault(name, {})[key] = value

    def get(self, name: str, **labels: str) -> float:
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self._lock:
            return self._values.get(name, {}).get(key, 0)

    def total(self, name: str) -> float:
        with self._lock:
            return sum(self._values.get(name, {}).values())

    def add_collector(self, fn: Callable[[Registry], None]) -> None:
        """``fn(registry)`` runs before each render (e.g. to set gauges from live state)."""
        self._collectors.append(fn)

    def remove_collector(self, fn: Callable[[Registry], None]) -> None:
        if fn in self._collectors:
            self._collectors.remove(fn)

    def render(self) -> str:
        for fn in list(self._collectors):
            fn(self)
        lines: list[str] = []
        with self._lock:
            snapshot = {name: dict(series) for name, series in sorted(self._values.items())}
        for name, series in snapshot.items():
            if name in HELP:
                lines.append(f"# HELP {name} {HELP[name]}")
            lines.append(f"# TYPE {name} {'counter' if name.endswith('_total') else 'gauge'}")
            for labels, value in sorted(series.items()):
                lab = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                num = int(value) if float(value).is_integer() else value
                lines.append(f"{name}{{{lab}}} {num}" if lab else f"{name} {num}")
        return "\n".join(lines) + "\n"


REGISTRY = Registry()
"""The process-wide registry served at ``GET /metrics``."""
