"""What a mount's source produces, and whether browsers here can play it as it is.

The one place where a stream's WebRTC fate is decided (:func:`needs_transcode`): a relay's
profile, once known from its SPS, goes through here like a file's probed one.
"""

from __future__ import annotations

from dataclasses import dataclass

from framecast.codecs import AUDIO_CODECS, CARRIED_AUDIO

# Profiles Chromium's H.264 receiver accepts (WEBRTC-NOTES: 42001f, 42e01f, 4d001f, f4001f).
BROWSER_SAFE_PROFILES = {"constrained-baseline", "baseline", "main"}


@dataclass
class StreamInfo:
    """What a mount's source produces (parsed access units, byte-stream)."""

    codec: str = "h264"  # "h264" | "h265"
    profile: str | None = None  # as h264parse/h265parse name it, e.g. "high"
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    reordered: bool = False  # B-frames (decode order ≠ presentation order)
    # the mount's audio codec (codecs.AUDIO_CODECS; another name, e.g. "vorbis", for audio
    # the file has but framecast does not serve), None without audio
    audio: str | None = None


def needs_transcode(info: StreamInfo) -> bool:
    """True when browsers here cannot play the mount's stream as it is: not H.264, a profile
    Chromium rejects (High), or B-frames (WebRTC receivers expect presentation order; with
    reordering Chromium showed ~2 of 30 frames per second)."""
    return (info.codec != "h264" or info.reordered
            or (info.profile or "high") not in BROWSER_SAFE_PROFILES)


def transcode_reason(info: StreamInfo) -> str:
    if info.codec != "h264":
        return f"{info.codec.upper()} is not received by browsers here"
    if (info.profile or "high") not in BROWSER_SAFE_PROFILES:
        return f"profile {info.profile or 'unknown'} is not received by browsers here"
    if info.reordered:
        return "B-frames (WebRTC receivers expect presentation order)"
    return "requested"



# What WebRTC gets of a mount's audio: browsers receive Opus only.
AUDIO_PASSTHROUGH, AUDIO_TRANSCODED, AUDIO_NONE = "passthrough", "transcoded", "none"


def webrtc_audio(info: StreamInfo) -> tuple[str, str | None]:
    """(how WebRTC carries the mount's audio, why): Opus as it is, another carried codec
    (AAC, MP3, AC-3, G.711) transcoded to Opus once per mount, or none (with the reason, or
    None when the mount has no audio)."""
    if info.audio is None:
        return AUDIO_NONE, None
    if info.audio == "opus":
        return AUDIO_PASSTHROUGH, None
    codec = AUDIO_CODECS.get(info.audio)
    if codec is not None:
        return AUDIO_TRANSCODED, f"{codec.label} is not received by browsers (Opus is)"
    return AUDIO_NONE, f"its {info.audio} audio is not served ({CARRIED_AUDIO})"
