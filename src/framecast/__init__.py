"""framecast: video and the data that belongs to each frame, delivered together.

Public API (filled in by the modules that implement it, imported lazily so that the pure layers
and ``framecast --help`` never load GStreamer):

- ``framecast.open(url, decode=False, timeout=...)``: iterate frames with their metadata from
  ``rtsp://``, ``webrtc://`` URLs and files.
- ``framecast.Publisher``: push numpy frames with a metadata dict each; served at a mount.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "open", "Publisher"]


def open(url: str, **kwargs: Any) -> Any:  # noqa: A001 - mirrors builtins.open on purpose
    """Open ``url`` (rtsp://, webrtc://, janus://, or a file path) and return a frame reader."""
    from framecast.reader import open_reader

    return open_reader(url, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "Publisher":
        from framecast.publisher import Publisher

        return Publisher
    raise AttributeError(name)
