"""``/api/streams`` (what each mount is and how it is offered) and ``/metrics``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from framecast.http.metrics import Registry


class ApiRoutes:
    """Mixin of :class:`~framecast.http.server.HttpServer`: the JSON API and Prometheus text."""

    bridge: Any
    mounts: dict[str, Any]
    sockets: dict[str, Any]
    sessions: dict[str, Any]
    metrics: Registry
    edges: Any  # mount → the edges (e.g. Janus) carrying it, or None (framecast.edge)

    async def _api_streams(self, request: web.Request) -> web.Response:
        def describe() -> dict[str, dict[str, Any]]:
            return {name: m.producer.describe() for name, m in self.mounts.items()}

        described = await self.bridge.run(describe)
        streams = []
        for name, mount in self.mounts.items():
            d = described[name]
            status = dict(mount.spec.status() if mount.spec.status else {})
            streams.append({
                "name": name,
                "mount": name,
                "codec": d["codec"],
                "profile": d["profile"],
                "b_frames": d.get("b_frames", False),
                "audio": d.get("audio"),  # the mount's codec; what WebRTC gets: webrtc.audio
                "transcoded_for_webrtc": d["webrtc"]["transcoded"],
                "webrtc": d["webrtc"],
                "viewers": d["webrtc"]["viewers"],
                "producer_running": d["webrtc"]["producer_running"],
                "loops": status.pop("loops", None),
                "rtsp_url": mount.spec.rtsp_url,
                "whep_url": f"/whep/{name}",
                "producer_id": mount.peer_id,
                "frames": d["frames"],
                "error": d["error"],
                "edges": self.edges(name) if self.edges is not None else [],
                **status,
            })
        return web.json_response({"streams": streams})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics.render(), content_type="text/plain",
                            charset="utf-8", headers={"X-Content-Type-Options": "nosniff"})

    def _collect(self, reg: Registry) -> None:
        reg.set_gauge("framecast_clients", len(self.sockets), kind="signalling")
        reg.set_gauge("framecast_clients", len(self.sessions), kind="webrtc")
        reg.set_gauge("framecast_clients", sum(len(m.whep) for m in self.mounts.values()),
                      kind="whep")
        for name, m in self.mounts.items():
            # a running total kept by the elements themselves (plain ints, no GStreamer call)
            reg.set_gauge("framecast_sei_injected_total", m.producer.sei_injected,
                          mount=name, output="webrtc")
            reg.set_gauge("framecast_webrtc_producer_running", int(m.producer.running),
                          mount=name)
