"""One table of the GStreamer pieces each video codec uses, and the encoder recipes (pure).

Every pipeline builder asks here instead of spelling ``h264parse``, ``rtph264depay`` or
payload type 96 itself, so adding a codec or changing a recipe is one edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from framecast.errors import InputError

__all__ = ["Codec", "VIDEO_PT", "AUDIO_PT", "VideoCodec", "CODECS", "video_codec", "codec_of_caps",
           "encoder_recipe"]

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
