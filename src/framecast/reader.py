"""Read frames and their metadata back: ``framecast.open(url)`` and ``framecast watch``.

This module is the typed face and imports no GStreamer: the pipeline
(:class:`framecast.gst.reader.ReadPipeline`) is loaded when the first reader opens, so
``import framecast`` stays fast and a bad URL is refused before GStreamer loads.

    with framecast.open("rtsp://127.0.0.1:8554/cam", decode=True) as frames:
        for frame in frames:            # presentation order
            frame.pts, frame.metadata, frame.image
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TextIO

from framecast.codecs import Codec
from framecast.errors import InputError, ReaderError, ReaderTimeout

if TYPE_CHECKING:
    import numpy as np

    from framecast.gst.reader import ReadPipeline

__all__ = ["Frame", "Reader", "ReaderError", "ReaderTimeout", "open_reader", "source_kind",
           "watch", "SourceKind", "Transport"]

SourceKind = Literal["file", "rtsp", "webrtc"]
Transport = Literal["tcp", "udp"]


@dataclass
class Frame:
    """One presented frame: timing, framecast metadata, other SEI, and (decode=True) pixels."""

    pts: float  # seconds on the stream's timeline
    pts_ns: int
    keyframe: bool
    metadata: list[dict[str, Any]] = field(default_factory=list)
    raw_sei: list[tuple[bytes, bytes]] = field(default_factory=list)  # third-party (uuid, data)
    image: np.ndarray | None = None  # H×W×3 RGB, only with decode=True

    def to_json(self) -> dict[str, Any]:
        return {"pts": round(self.pts, 6), "keyframe": self.keyframe, "metadata": self.metadata}


def source_kind(url: str) -> SourceKind:
    """What ``url`` names; raises :class:`framecast.InputError` for other schemes."""
    if url.startswith(("rtsp://", "rtsps://", "rtspt://")):
        return "rtsp"
    if url.startswith(("webrtc://", "whep://")) or "/whep/" in url:
        return "webrtc"
    if "://" in url and not url.startswith("file://"):
        raise InputError(f"{url}: unsupported URL (rtsp://, webrtc:// or a file path)")
    return "file"


class Reader:
    """Frames of ``url`` (``rtsp://``, ``webrtc://`` or a file) in presentation order.

    An iterator and a context manager. ``decode=True`` adds RGB pixels (``Frame.image``).
    Raises :class:`framecast.ReaderError` (:class:`framecast.ReaderTimeout` when nothing
    arrives within ``timeout`` seconds), :class:`framecast.MediaNotFound` for a missing file.
    """

    def __init__(self, url: str, decode: bool = False, timeout: float = 10.0,
                 transport: Transport = "tcp", codec: Codec = "h264",
                 latency_ms: int = 200) -> None:
        kind = source_kind(url)
        if transport not in ("tcp", "udp"):
            raise InputError(f"transport must be tcp or udp, not {transport!r}")
        from framecast.gst.reader import ReadPipeline

        self.url, self.decode, self.timeout = url, decode, float(timeout)
        self._pipe: ReadPipeline = ReadPipeline(url, kind, decode, timeout, transport, codec,
                                                latency_ms)

    @property
    def restarts(self) -> int:
        """RTSP reconnections after a stalled start."""
        return self._pipe.restarts

    @property
    def skipped(self) -> int:
        """decode=True: pictures before the first keyframe, not handed out."""
        return self._pipe.skipped

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        return next(self._pipe)

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the stream."""
        return next(self._pipe, None)

    def close(self) -> None:
        self._pipe.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_reader(url: str, decode: bool = False, timeout: float = 10.0,
                transport: Transport = "tcp", codec: Codec = "h264",
                latency_ms: int = 200) -> Reader:
    """Open ``url`` (``rtsp://``, ``webrtc://`` or a file); see :class:`Reader`."""
    return Reader(url, decode=decode, timeout=timeout, transport=transport, codec=codec,
                  latency_ms=latency_ms)


def _json_default(o: Any) -> Any:
    if isinstance(o, bytes | bytearray | memoryview):
        return bytes(o).hex()
    return repr(o)


def watch(url: str, count: int = 0, timeout: float = 10.0, transport: Transport = "tcp",
          out: TextIO | None = None) -> int:
    """``framecast watch``: one JSON object per frame on ``out`` (stdout); frames written."""
    out = out or sys.stdout
    n = 0
    try:
        with open_reader(url, timeout=timeout, transport=transport) as reader:
            for n, frame in enumerate(reader, start=1):
                out.write(json.dumps(frame.to_json(), default=_json_default) + "\n")
                out.flush()
                if count and n >= count:
                    break
    except BrokenPipeError:  # `framecast watch … | head`: the reader went away, not an error
        pass
    return n
