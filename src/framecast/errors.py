"""Every error framecast raises on purpose, under one root (pure: imports nothing).

``except framecast.FramecastError`` catches them all; each also keeps the built-in base an
application would expect (``MediaNotFound`` is a ``FileNotFoundError``, ``ConfigError`` a
``ValueError``, ``ReaderTimeout`` a ``TimeoutError`` …). ``str(exc)`` is one line that names
the thing at fault; the library only raises, and ``framecast.cli`` prints and exits.
"""

from __future__ import annotations

__all__ = [
    "FramecastError",
    "InputError",
    "ConfigError",
    "SidecarError",
    "MetadataError",
    "MetadataTooLarge",
    "SEIError",
    "ProtocolError",
    "MediaError",
    "MediaNotFound",
    "MediaUnreadable",
    "CorruptMedia",
    "NoVideo",
    "UnsupportedMedia",
    "ReaderError",
    "ReaderTimeout",
    "InjectError",
    "ClipError",
    "PortInUse",
]


class FramecastError(Exception):
    """The root: anything framecast raises on purpose (bad input, unusable media, failures)."""


class InputError(FramecastError, ValueError):
    """A bad argument: an unsupported URL, an option that makes no sense, a wrong file name."""


class ConfigError(FramecastError, ValueError):
    """A bad config file or flag: one line naming the file and the key."""


class SidecarError(FramecastError, ValueError):
    """The sidecar file cannot be used at all (missing, unreadable)."""


class MetadataError(FramecastError, ValueError):
    """Metadata that cannot be encoded or decoded."""


class MetadataTooLarge(MetadataError):
    """Encoded metadata over the per-frame size limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"metadata for frame is {size} bytes, over the {limit}-byte limit")
        self.size = size
        self.limit = limit


class SEIError(FramecastError, ValueError):
    """Malformed NAL / SEI data, or a request that cannot be encoded."""


class ProtocolError(FramecastError, ValueError):
    """A message that is not valid signalling; ``str(exc)`` is the reply's ``details``."""


class MediaError(FramecastError):
    """A file cannot be served; ``str()`` is one line naming the file and the reason."""


class MediaNotFound(MediaError, FileNotFoundError):
    pass


class MediaUnreadable(MediaError, PermissionError):
    pass


class CorruptMedia(MediaError):
    """Truncated, corrupt or not a media file at all."""


class NoVideo(MediaError):
    pass


class UnsupportedMedia(MediaError):
    """A readable file whose container or video codec framecast does not serve."""


class ReaderError(FramecastError, RuntimeError):
    """The stream cannot be read (connection refused, not a video, decoder error …)."""


class ReaderTimeout(ReaderError, TimeoutError):
    """No frame arrived within the timeout."""


class InjectError(FramecastError, RuntimeError):
    """Writing a file with metadata failed (pipeline error, a stall)."""


class ClipError(FramecastError, RuntimeError):
    """Making a clip failed (encoder/muxer error)."""


class PortInUse(FramecastError, OSError):
    """A server cannot listen on its port."""


class WebRTCError(FramecastError, RuntimeError):
    """A viewer could not be set up (bad offer, no common codec): one line for the client."""


class TooManyViewers(WebRTCError):
    """The mount already has ``max_viewers`` viewers."""


class SourceUnavailable(WebRTCError):
    """The mount's source pipeline failed (e.g. a relay's camera is unreachable)."""
