"""framecast: video and the data that belongs to each frame, delivered together.

The public API, all importable from ``framecast`` (``import framecast`` loads no GStreamer:
the pipelines load when the first reader, server or publisher starts):

- ``framecast.open(url, decode=False, timeout=...) -> Reader``: iterate :class:`Frame` objects
  with their metadata from ``rtsp://``, ``webrtc://`` URLs and files; ``audio=True`` adds
  :class:`AudioChunk` objects (float32 PCM, same pts timeline) between them, by pts.
- ``framecast.Server(settings, mounts)``: serve files and relayed cameras over RTSP;
  :class:`Settings`, :class:`Mount` (``providers=`` adds per-frame fields), :class:`Config`.
- ``framecast.Publisher``: push numpy frames with a metadata dict each; served at a mount.
- ``framecast.inject_file(input, output, sidecar=..., stamps=...)``: metadata into a file.
- Errors: everything raised on purpose is a :class:`FramecastError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

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
from framecast.reader import AudioChunk, Frame, Reader, Transport
from framecast.server import Server

if TYPE_CHECKING:
    # publisher.py imports numpy at the top (~100 ms): loaded on first use, see __getattr__
    from framecast.publisher import Publisher

__version__ = "0.1.0"

__all__ = [
    "__version__", "open", "Reader", "Frame", "AudioChunk", "Publisher", "Server", "inject_file",
    "Config", "Settings", "Mount", "User", "load_config", "Codec", "Transport",
    "FramecastError", "InputError", "ConfigError", "SidecarError", "MetadataError",
    "MetadataTooLarge", "SEIError", "ProtocolError", "MediaError", "MediaNotFound",
    "MediaUnreadable", "CorruptMedia", "NoVideo", "UnsupportedMedia", "ReaderError",
    "ReaderTimeout", "InjectError", "ClipError", "PortInUse", "WebRTCError", "TooManyViewers",
    "SourceUnavailable",
]


@overload
def open(url: str, decode: bool = ..., timeout: float = ...,  # noqa: A001
         transport: Transport = ..., codec: Codec = ..., latency_ms: int = ...,
         audio: Literal[False] = ...) -> Reader[Frame]: ...
@overload
def open(url: str, decode: bool = ..., timeout: float = ...,  # noqa: A001
         transport: Transport = ..., codec: Codec = ..., latency_ms: int = ...,
         *, audio: Literal[True]) -> Reader[Frame | AudioChunk]: ...
@overload
def open(url: str, decode: bool = ..., timeout: float = ...,  # noqa: A001
         transport: Transport = ..., codec: Codec = ..., latency_ms: int = ...,
         *, audio: bool) -> Reader[Any]: ...
def open(url: str, decode: bool = False, timeout: float = 10.0,  # noqa: A001 - as builtins.open
         transport: Transport = "tcp", codec: Codec = "h264", latency_ms: int = 200,
         audio: bool = False) -> Reader[Any]:
    """Open ``url`` (rtsp://, webrtc://, janus://, or a file path): a frame :class:`Reader`.

    ``decode=True`` adds RGB pixels; ``codec`` is the WebRTC codec to ask for; ``latency_ms``
    the RTSP jitter buffer; ``audio=True`` yields :class:`AudioChunk` objects too (float32
    samples shaped (n, channels), interleaved with the frames by pts)."""
    return Reader(url, decode=decode, timeout=timeout, transport=transport, codec=codec,
                  latency_ms=latency_ms, audio=audio)


def __getattr__(name: str) -> Any:
    if name == "Publisher":  # the one lazy name (typed through the TYPE_CHECKING import)
        from framecast.publisher import Publisher

        return Publisher
    raise AttributeError(f"module 'framecast' has no attribute {name!r}")
