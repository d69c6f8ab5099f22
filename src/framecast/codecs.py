"""Tables of the GStreamer pieces each video and audio codec uses, and the encoder recipes
(pure).

Every pipeline builder asks here instead of spelling ``h264parse``, ``rtph264depay`` or
payload type 96 itself, so adding a codec or changing a recipe is one edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from framecast.errors import InputError

__all__ = ["Codec", "VIDEO_PT", "AUDIO_PT", "VideoCodec", "CODECS", "video_codec", "codec_of_caps",
           "encoder_recipe", "AudioCodec", "AUDIO_CODECS", "CARRIED_AUDIO", "audio_codec_of_caps",
           "audio_codec_of_rtp"]

Codec = Literal["h264", "h265"]  # the video codecs framecast carries (sei.Codec too)
VIDEO_PT = 96  # the video stream's dynamic RTP payload type (RTSP, WHEP offers)
AUDIO_PT = 97


@dataclass(frozen=True)
class VideoCodec:
    name: Codec
    caps: str            # media type of the elementary stream
    encoding_name: str   # RTP encoding-name
    parser: str
    payloader: str
    depayloader: str
    decoder: str
    encoder: str
    timestamper: str     # gives DTS to a stream that has none (1.22: codectimestamper)
    mp4_format: str      # stream-format an MP4/Matroska muxer wants (parameter sets out of band)


CODECS: dict[Codec, VideoCodec] = {
    "h264": VideoCodec("h264", "video/x-h264", "H264", "h264parse", "rtph264pay", "rtph264depay",
                       "avdec_h264", "x264enc", "h264timestamper", "avc"),
    "h265": VideoCodec("h265", "video/x-h265", "H265", "h265parse", "rtph265pay", "rtph265depay",
                       "avdec_h265", "x265enc", "h265timestamper", "hvc1"),
}


def video_codec(codec: str) -> VideoCodec:
    """The table row for ``codec``; :class:`framecast.InputError` for one we do not carry."""
    try:
        return CODECS[codec]  # type: ignore[index]
    except KeyError:
        raise InputError(f"codec must be h264 or h265, not {codec!r}") from None


def codec_of_caps(media_type: str, encoding_name: str | None = None) -> Codec | None:
    """The codec of caps named ``media_type`` (``video/x-h264``, or ``application/x-rtp``
    with its ``encoding_name``); None for anything else."""
    for c in CODECS.values():
        if media_type == c.caps or (media_type == "application/x-rtp"
                                    and (encoding_name or "").upper() == c.encoding_name):
            return c.name
    return None


def encoder_recipe(codec: str, *, gop: int, live: bool = True, bitrate_kbps: int | None = None,
                   bframes: int = 0, profile: str | None = None, slices: int = 0,
                   stream_format: str | None = None) -> str:
    """A ``gst-launch`` description: raw 4:2:0 video in, parsed ``codec`` access units out.

    ``live``: low latency (zerolatency tune, ultrafast; the parser repeats the parameter sets
    before every keyframe so joining clients start at once); else a file encode (veryfast,
    ``bframes`` B-frames, a fixed GOP of ``gop`` frames). ``stream_format`` adds caps after
    the parser (``avc``/``hvc1`` for MP4, ``byte-stream`` for MPEG-TS)."""
    c = video_codec(codec)
    zerolatency = live and not bframes  # zerolatency turns B-frames off
    enc = [c.encoder, *(["tune=zerolatency"] if zerolatency else []),
           f"speed-preset={'ultrafast' if live else 'veryfast'}", f"key-int-max={gop}"]
    if bitrate_kbps:
        enc.append(f"bitrate={bitrate_kbps}")
    if c.name == "h264":
        if not zerolatency:
            enc += [f"bframes={bframes}", "b-adapt=false"]
        if slices > 1:
            enc.append(f"option-string=slices={slices}")
        if stream_format:
            enc.append(f"byte-stream={'true' if stream_format == 'byte-stream' else 'false'}")
    elif not zerolatency:
        opts = f"bframes={bframes}:b-adapt=0:keyint={gop}:min-keyint={gop}:scenecut=0"
        enc.append(f"option-string={opts}{f':slices={slices}' if slices > 1 else ''}")
    parts = [" ".join(enc)]
    if profile:
        parts.append(f"{c.caps},profile={profile}")
    parts.append(f"{c.parser} config-interval=-1" if live else c.parser)
    if stream_format:
        parts.append(f"{c.caps},stream-format={stream_format}")
    return " ! ".join(parts)


@dataclass(frozen=True)
class AudioCodec:
    """An audio codec framecast carries as it is over RTSP (files and relays) and decodes
    once per mount for WebRTC (browsers get Opus; Opus itself passes through)."""

    name: str
    label: str               # for people: logs, /api/streams reasons
    caps: str                # media type of the elementary stream
    rtp: dict[str, str]      # RTP encoding-name a camera may send it as -> depayloader
    parser: str              # "identity" where every buffer is whole already (G.711)
    payloader: str
    decoder: str
    pt: int = AUDIO_PT       # G.711 has static payload types (RFC 3551)


AUDIO_CODECS: dict[str, AudioCodec] = {c.name: c for c in (
    AudioCodec("aac", "AAC", "audio/mpeg",
               {"MPEG4-GENERIC": "rtpmp4gdepay", "MP4A-LATM": "rtpmp4adepay"},
               "aacparse", "rtpmp4gpay", "avdec_aac"),
    AudioCodec("opus", "Opus", "audio/x-opus", {"OPUS": "rtpopusdepay"},
               "opusparse", "rtpopuspay", "opusdec"),
    # MPEG-1/2 audio, layers 1-3 (MP3; MP2 in broadcast MPEG-TS)
    AudioCodec("mp3", "MP3/MP2", "audio/mpeg", {"MPA": "rtpmpadepay"},
               "mpegaudioparse", "rtpmpapay", "mpg123audiodec"),
    AudioCodec("ac3", "AC-3", "audio/x-ac3", {"AC3": "rtpac3depay"},
               "ac3parse", "rtpac3pay", "avdec_ac3"),
    # what most IP cameras send (G.711, 8 kHz)
    AudioCodec("pcmu", "G.711 mu-law", "audio/x-mulaw", {"PCMU": "rtppcmudepay"},
               "identity", "rtppcmupay", "mulawdec", pt=0),
    AudioCodec("pcma", "G.711 A-law", "audio/x-alaw", {"PCMA": "rtppcmadepay"},
               "identity", "rtppcmapay", "alawdec", pt=8),
)}

CARRIED_AUDIO = "framecast carries " + ", ".join(c.label for c in AUDIO_CODECS.values())


def audio_codec_of_caps(media_type: str, mpegversion: int | None = None) -> str | None:
    """The audio codec of an elementary stream's caps (``audio/mpeg`` is AAC for MPEG-2/4,
    MP3/MP2 for MPEG-1, any layer); None for one framecast does not carry."""
    if media_type == "audio/mpeg":
        if mpegversion in (2, 4):
            return "aac"
        return "mp3" if mpegversion == 1 else None
    if media_type == "audio/ac3":  # some demuxers' name for it
        return "ac3"
    return next((c.name for c in AUDIO_CODECS.values() if c.caps == media_type), None)


def audio_codec_of_rtp(encoding_name: str | None) -> tuple[str, str] | None:
    """(codec, depayloader) for an RTP audio stream's encoding-name; None if not carried."""
    name = (encoding_name or "").upper()
    for c in AUDIO_CODECS.values():
        if name in c.rtp:
            return c.name, c.rtp[name]
    return None
