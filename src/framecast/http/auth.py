"""HTTP Basic authentication for every route (when users are configured)."""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from framecast.http.metrics import Registry
from framecast.http.ratelog import RateLimitedLog, bounded

log = logging.getLogger("framecast.http")


def check_basic_auth(header: str | None, users: Mapping[str, str]) -> bool:
    """True when ``header`` (an Authorization value) names a configured user and password."""
    if not header or not header.startswith("Basic "):
        return False
    try:
        name, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    expected = users.get(name)
    # compare in constant time, and compare something even for unknown names
    return hmac.compare_digest((expected or "\0").encode(), password.encode()) and \
        expected is not None


class AuthRoutes:
    """Mixin of :class:`~framecast.http.server.HttpServer`: the auth middleware."""

    users: dict[str, str]
    metrics: Registry
    ratelog: RateLimitedLog

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # Users configured → every route but CORS preflight needs them (Basic; use TLS).
        if self.users and request.method != "OPTIONS" and \
                not check_basic_auth(request.headers.get("Authorization"), self.users):
            self.metrics.inc("framecast_errors_total", kind="http_401")
            # one line per address and interval (the lead wires throttling in later)
            self.ratelog.log(logging.WARNING, f"401 {request.remote}",
                             "HTTP: authentication failed from %s (%s %s)", request.remote,
                             request.method, bounded(request.path, 80))
            return web.Response(status=401, text="authentication required\n",
                                headers={"WWW-Authenticate": 'Basic realm="framecast"'})
        return await handler(request)
