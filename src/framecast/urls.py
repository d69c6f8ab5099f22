"""The URLs a server announces, built in one place (scheme under TLS, IPv6 brackets)."""

from __future__ import annotations

ANY_ADDRESS = ("0.0.0.0", "::", "")


def host_for_url(bind: str) -> str:
    """The host a local client reaches a server bound to ``bind`` at: a wildcard bind becomes
    loopback, an IPv6 literal gets its brackets."""
    host = "127.0.0.1" if bind in ANY_ADDRESS else bind
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def rtsp_url(bind: str, port: int, mount: str, tls: bool = False) -> str:
    """``rtsp://`` (``rtsps://`` under TLS) URL of ``mount``."""
    return f"{'rtsps' if tls else 'rtsp'}://{host_for_url(bind)}:{port}/{mount}"


def http_url(bind: str, port: int, tls: bool = False) -> str:
    """The base URL of the HTTP side (viewer, WHEP, /api/streams)."""
    return f"{'https' if tls else 'http'}://{host_for_url(bind)}:{port}"
