"""WHEP: ``POST /whep/<mount>`` (SDP offer → answer with every candidate), ``DELETE`` ends it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from aiohttp import web

from framecast.http.metrics import Registry
from framecast.http.pending import PendingViewers
from framecast.http.ratelog import RateLimitedLog, bounded
from framecast.producer import (
    SOURCE_FAILED,
    SourceUnavailable,
    TooManyViewers,
    ViewerEvents,
    WebRTCError,
)

log = logging.getLogger("framecast.http")

GATHER_TIMEOUT = 10.0
FIRST_FRAME_WAIT = 5.0  # s an answer waits for a starting source to deliver (or fail)


class WhepRoutes:
    """Mixin of :class:`~framecast.http.server.HttpServer`: the WHEP endpoints."""

    bridge: Any
    limits: Any
    metrics: Registry
    ratelog: RateLimitedLog
    pending: PendingViewers
    mounts: dict[str, Any]

    async def _whep_post(self, request: web.Request) -> web.Response:
        name = request.match_info["mount"]
        mount = self.mounts.get(name)
        if mount is None:
            return self._whep_error(404, f"unknown mount '{bounded(name, 60)}'")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._whep_error(413, f"offer larger than {self.limits.http_max_body} bytes")
        try:
            offer = body.decode("utf-8")
        except UnicodeDecodeError:
            return self._whep_error(400, "offer is not UTF-8 text")
        if not offer.startswith("v=0") or "\nm=" not in offer:
            return self._whep_error(400, "body is not an SDP offer")
        peer = request.remote or "?"
        if (why := self.pending.refusal(name, peer)) is not None:
            self.ratelog.log(logging.WARNING, f"pending {peer}", "%s: WHEP from %s refused: %s",
                             name, peer, why)
            return self._whep_error(503, why, retry_after=int(self.pending.timeout) + 1)
        rid = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str] = loop.create_future()

        def gathered(sdp: str) -> None:
            if not answer.done():
                answer.set_result(sdp)

        ended: list[str] = []

        def closed(reason: str) -> None:
            ended.append(reason)
            self.pending.done(rid)
            if not answer.done():
                failed = reason.startswith(SOURCE_FAILED)
                answer.set_exception((SourceUnavailable if failed else WebRTCError)(reason))
            if rid in mount.whep:
                mount.whep.discard(rid)
                log.info("%s: WHEP viewer %s ended: %s", name, rid, reason)

        events = ViewerEvents(post=self.bridge.to_asyncio, on_gathered=gathered, on_closed=closed,
                              on_connected=lambda: self.pending.done(rid))
        self.pending.add(rid, name, peer)  # before the viewer exists: counted at once
        try:
            await self.bridge.run(mount.producer.add_viewer, rid, events, offer)
        except (TooManyViewers, SourceUnavailable) as exc:
            self.pending.done(rid)
            return self._whep_error(503, str(exc), retry_after=5)
        except WebRTCError as exc:
            self.pending.done(rid)
            return self._whep_error(400, str(exc))
        except Exception:
            self.pending.done(rid)
            log.exception("%s: WHEP viewer setup failed", name)
            return self._whep_error(500, "viewer setup failed (see the server log)")
        mount.whep.add(rid)
        try:
            sdp = await asyncio.wait_for(answer, GATHER_TIMEOUT)
        except (TimeoutError, WebRTCError) as exc:
            self.pending.done(rid)
            mount.whep.discard(rid)
            await self.bridge.run(mount.producer.remove_viewer, rid)
            reason = str(exc) or "ICE gathering timed out"
            if isinstance(exc, SourceUnavailable):
                return self._whep_error(503, reason, retry_after=5)
            return self._whep_error(400 if isinstance(exc, WebRTCError) else 504, reason)
        # a source that is still starting (a relay dialling its camera) may yet fail: answer
        # once it delivers, so a dead camera is a 503 with its reason, not a 201 and silence
        deadline = loop.time() + FIRST_FRAME_WAIT
        while not mount.producer.flowing and rid in mount.whep and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if rid not in mount.whep:  # failed while we waited
            self.pending.done(rid)
            if ended and ended[-1].startswith(SOURCE_FAILED):
                return self._whep_error(503, ended[-1], retry_after=5)
            return self._whep_error(500, "viewer ended during negotiation")
        location = f"/whep/{name}/{rid}"
        log.info("%s: WHEP viewer %s from %s", name, rid, request.remote)
        return web.Response(status=201, body=sdp.encode(), content_type="application/sdp",
                            headers={"Location": location, "ETag": f'"{rid}"'})

    async def _whep_delete(self, request: web.Request) -> web.Response:
        name, rid = request.match_info["mount"], request.match_info["rid"]
        mount = self.mounts.get(name)
        if mount is None or rid not in mount.whep:
            return self._whep_error(404, f"unknown WHEP session '{rid}'")
        self.pending.done(rid)
        await self.bridge.run(mount.producer.remove_viewer, rid)
        mount.whep.discard(rid)  # after the removal: "gone from whep" means no webrtcbin left
        log.info("%s: WHEP viewer %s deleted", name, rid)
        return web.Response(status=200, text="ended\n")

    def _whep_error(self, status: int, text: str, retry_after: int | None = None) -> web.Response:
        self.metrics.inc("framecast_errors_total", kind=f"whep_{status}")
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return web.Response(status=status, text=text + "\n", headers=headers)

