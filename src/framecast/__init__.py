"""framecast: video and the data that belongs to each frame, delivered together.

The public API, all importable from ``framecast`` (``import framecast`` loads no GStreamer:
the pipelines load when the first reader, server or publisher starts):

- ``framecast.open(url, decode=False, timeout=...) -> Reader``: iterate :class:`Frame` objects
  with their metadata from ``rtsp://``, ``webrtc://`` URLs and files.
- ``framecast.Server(settings, mounts)``: serve files and relayed cameras over RTSP;
  :class:`Settings`, :class:`Mount` (``providers=`` adds per-frame fields), :class:`Config`.
- ``framecast.Publisher``: push numpy frames with a metadata dict each; served at a mount.
- ``framecast.inject_file(input, output, sidecar=..., stamps=...)``: metadata into a file.
- Errors: everything raised on purpose is a :class:`FramecastError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from framecast.codecs import Codec
from framecast.config import Config, ConfigError, Mount, Settings, User, load_config
from framecast.errors import (
    ClipError,
    CorruptMedia,
    FramecastError,
    InjectError,
    InputError,
    MediaError,
    MediaNotFound,
    MediaUnreadable,
    MetadataError,
    MetadataTooLarge,
    NoVideo,
    PortInUse,
    ProtocolError,
    ReaderError,
    ReaderTimeout,
    SEIError,
    SidecarError,
    SourceUnavailable,
    TooManyViewers,
    UnsupportedMedia,
    WebRTCError,
)
from framecast.injectfile import inject_file
from framecast.reader import Frame, Reader, Transport
from framecast.server import Server

if TYPE_CHECKING:
    # publisher.py imports numpy at the top (~100 ms): loaded on first use, see __getattr__
    from framecast.publisher import Publisher

__version__ = "0.1.0"

__all__ = [
    "__version__", "open", "Reader", "Frame", "Publisher", "Server", "inject_file",
    "Config", "Settings", "Mount", "User", "load_config", "Codec", "Transport",
    "FramecastError", "InputError", "ConfigError", "SidecarError", "MetadataError",
    "MetadataTooLarge", "SEIError", "ProtocolError", "MediaError", "MediaNotFound",
    "MediaUnreadable", "CorruptMedia", "NoVideo", "UnsupportedMedia", "ReaderError",
    "ReaderTimeout", "InjectError", "ClipError", "PortInUse", "WebRTCError", "TooManyViewers",
    "SourceUnavailable",
]


def open(url: str, decode: bool = False, timeout: float = 10.0,  # noqa: A001 - as builtins.open
         transport: Transport = "tcp", codec: Codec = "h264", latency_ms: int = 200) -> Reader:
    """Open ``url`` (rtsp://, webrtc://, janus://, or a file path): a frame :class:`Reader`.

    ``decode=True`` adds RGB pixels; ``codec`` is the WebRTC codec to ask for; ``latency_ms``
    the RTSP jitter buffer."""
    return Reader(url, decode=decode, timeout=timeout, transport=transport, codec=codec,
                  latency_ms=latency_ms)


def __getattr__(name: str) -> Any:
    if name == "Publisher":  # the one lazy name (typed through the TYPE_CHECKING import)
        from framecast.publisher import Publisher

        return Publisher
    raise AttributeError(f"module 'framecast' has no attribute {name!r}")
