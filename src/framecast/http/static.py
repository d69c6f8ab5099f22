"""The viewer's files (built by vite into framecast/web), the favicon, a plain fallback page."""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

FAVICON_SVG = (b"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
               b"<rect width='16' height='16' rx='3' fill='#222'/><rect x='3' y='4' width='10' "
               b"height='8' fill='none' stroke='#3f3' stroke-width='2'/></svg>")


def web_dir() -> Path:
    return Path(str(resources.files("framecast") / "web"))


class StaticRoutes:
    """Mixin of :class:`~framecast.http.server.HttpServer`: ``/``, ``/favicon.ico``, files."""

    static_dir: Path
    mounts: dict[str, Any]
    _ws: Any

    async def _index(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._ws(request)  # gstwebrtc-api's default URL has no path
        index = self.static_dir / "index.html"
        if index.is_file():
            return web.FileResponse(index)
        return web.Response(text=self._fallback_page(), content_type="text/html")

    async def _favicon(self, request: web.Request) -> web.Response:
        # browsers ask for it on any page (the fallback page, /api in a tab): no 404 lines
        return web.Response(body=FAVICON_SVG, content_type="image/svg+xml",
                            headers={"Cache-Control": "max-age=86400"})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        root = self.static_dir.resolve()
        try:
            target = (root / request.match_info["path"]).resolve()
        except (OSError, ValueError):
            raise web.HTTPNotFound() from None
        if not target.is_relative_to(root) or not target.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(target)

    def _fallback_page(self) -> str:
        items = "".join(
            f"<li>{html.escape(n)}: WHEP <code>/whep/{html.escape(n)}</code></li>"
            for n in self.mounts)
        return ("<!doctype html><title>framecast</title><h1>framecast</h1>"
                "<p>The viewer is not built (run <code>make setup</code>).</p>"
                f"<ul>{items}</ul><p><a href='/api/streams'>/api/streams</a> · "
                "<a href='/metrics'>/metrics</a></p>")
