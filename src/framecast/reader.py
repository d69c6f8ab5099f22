"""Read frames and their metadata back: ``framecast.open(url)`` and ``framecast watch``.

This module is the typed face and imports no GStreamer: the pipeline
(:class:`framecast.gst.reader.ReadPipeline`) is loaded when the first reader opens, so
``import framecast`` stays fast and a bad URL is refused before GStreamer loads.

    with framecast.open("rtsp://127.0.0.1:8554/cam", decode=True) as frames:
        for frame in frames:            # presentation order
            frame.pts, frame.metadata, frame.image

    with framecast.open(url, audio=True) as items:    # frames and audio, by PTS
        for item in items:
            if isinstance(item, framecast.AudioChunk):
                item.samples                # float32 (n, channels), -1..1, item.rate Hz
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TextIO, TypeVar, overload

from framecast.codecs import Codec
from framecast.errors import InputError, ReaderError, ReaderTimeout

if TYPE_CHECKING:
    import numpy as np

    from framecast.gst.reader import ReadPipeline

__all__ = ["AudioChunk", "Frame", "Reader", "ReaderError", "ReaderTimeout", "open_reader",
           "source_kind", "watch", "SourceKind", "Transport"]

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


@dataclass
class AudioChunk:
    """Decoded audio (``audio=True``): a run of samples starting at ``pts``.

    ``samples`` is float32, shape (n, channels), interleaved, full scale -1..1, at the
    stream's own ``rate`` (not resampled); ``pts`` is on the same timeline as
    :attr:`Frame.pts`, so a chunk and the frame shown at its time have (about) the same pts.
    """

    pts: float  # seconds on the stream's timeline (the first sample's)
    pts_ns: int
    rate: int
    samples: np.ndarray

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate

    def to_json(self) -> dict[str, Any]:
        import numpy as np

        rms = float(np.sqrt(np.mean(np.square(self.samples)))) if self.samples.size else 0.0
        level = round(20 * np.log10(rms), 1) if rms > 0 else None
        return {"audio": True, "pts": round(self.pts, 6), "rate": self.rate,
                "channels": self.channels, "samples": len(self.samples), "level_dbfs": level}


Item = TypeVar("Item", Frame, Frame | AudioChunk)


def source_kind(url: str) -> SourceKind:
    """What ``url`` names; raises :class:`framecast.InputError` for other schemes."""
    if url.startswith(("rtsp://", "rtsps://", "rtspt://")):
        return "rtsp"
    if url.startswith(("webrtc://", "whep://", "janus://")) or "/whep/" in url:
        return "webrtc"
    if "://" in url and not url.startswith("file://"):
        raise InputError(f"{url}: unsupported URL (rtsp://, webrtc://, janus:// or a file path)")
    return "file"


class Reader(Generic[Item]):
    """Frames of ``url`` (``rtsp://``, ``webrtc://``, ``janus://`` or a file) in presentation order.

    An iterator and a context manager. ``decode=True`` adds RGB pixels (``Frame.image``).
    ``audio=True``: :class:`AudioChunk` objects too, interleaved with the frames by pts (a
    stream without audio just yields frames). ``audio=False`` never touches the audio.
    Raises :class:`framecast.ReaderError` (:class:`framecast.ReaderTimeout` when nothing
    arrives within ``timeout`` seconds), :class:`framecast.MediaNotFound` for a missing file.
    """

    def __init__(self, url: str, decode: bool = False, timeout: float = 10.0,
                 transport: Transport = "tcp", codec: Codec = "h264",
                 latency_ms: int = 200, audio: bool = False) -> None:
        kind = source_kind(url)
        if transport not in ("tcp", "udp"):
            raise InputError(f"transport must be tcp or udp, not {transport!r}")
        from framecast.gst.reader import ReadPipeline

        self.url, self.decode, self.timeout = url, decode, float(timeout)
        self.audio = audio
        self._pipe: ReadPipeline = ReadPipeline(url, kind, decode, timeout, transport, codec,
                                                latency_ms, audio)

    @property
    def restarts(self) -> int:
        """RTSP reconnections after a stalled start."""
        return self._pipe.restarts

    @property
    def skipped(self) -> int:
        """decode=True: pictures before the first keyframe, not handed out."""
        return self._pipe.skipped

    def __iter__(self) -> Iterator[Item]:
        return self

    def __next__(self) -> Item:
        return next(self._pipe)  # type: ignore[return-value]  # Item follows ``audio``

    def read(self) -> Item | None:
        """The next frame (or audio chunk), or None at the end of the stream."""
        return next(self._pipe, None)  # type: ignore[return-value]

    def close(self) -> None:
        self._pipe.close()

    def __enter__(self) -> Reader[Item]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@overload
def open_reader(url: str, decode: bool = ..., timeout: float = ...,
                transport: Transport = ..., codec: Codec = ..., latency_ms: int = ...,
                audio: Literal[False] = ...) -> Reader[Frame]: ...
@overload
def open_reader(url: str, decode: bool = ..., timeout: float = ...,
                transport: Transport = ..., codec: Codec = ..., latency_ms: int = ...,
                *, audio: Literal[True]) -> Reader[Frame | AudioChunk]: ...
@overload
def open_reader(url: str, decode: bool = ..., timeout: float = ...,
                transport: Transport = ..., codec: Codec = ..., latency_ms: int = ...,
                *, audio: bool) -> Reader[Any]: ...
def open_reader(url: str, decode: bool = False, timeout: float = 10.0,
                transport: Transport = "tcp", codec: Codec = "h264",
                latency_ms: int = 200, audio: bool = False) -> Reader[Any]:
    """Open ``url`` (``rtsp://``, ``webrtc://``, ``janus://`` or a file); see :class:`Reader`."""
    return Reader(url, decode=decode, timeout=timeout, transport=transport, codec=codec,
                  latency_ms=latency_ms, audio=audio)


def _json_default(o: Any) -> Any:
    if isinstance(o, bytes | bytearray | memoryview):
        return bytes(o).hex()
    return repr(o)


def watch(url: str, count: int = 0, timeout: float = 10.0, transport: Transport = "tcp",
          out: TextIO | None = None, audio: bool = False) -> int:
    """``framecast watch``: one JSON object per frame on ``out`` (stdout); frames written.

    ``audio=True``: also a line per audio chunk (``{"audio": true, "pts": …, "rate": …}``);
    ``count`` still counts frames only."""
    out = out or sys.stdout
    n = 0
    try:
        with open_reader(url, timeout=timeout, transport=transport, audio=audio) as reader:
            for item in reader:
                out.write(json.dumps(item.to_json(), default=_json_default) + "\n")
                out.flush()
                if isinstance(item, Frame):
                    n += 1
                    if count and n >= count:
                        break
    except BrokenPipeError:  # `framecast watch … | head`: the reader went away, not an error
        pass
    return n
