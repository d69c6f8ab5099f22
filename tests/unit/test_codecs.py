"""The one codec table and its encoder recipes (pure: the strings the pipelines are built from;
tests/integration/test_clips.py encodes with them)."""

from __future__ import annotations

import pytest

from framecast.codecs import (
    AUDIO_CODECS,
    AUDIO_PT,
    CODECS,
    VIDEO_PT,
    audio_codec_of_caps,
    audio_codec_of_rtp,
    codec_of_caps,
    encoder_recipe,
    video_codec,
)
from framecast.errors import InputError


def test_table_rows() -> None:
    h264, h265 = CODECS["h264"], CODECS["h265"]
    assert (h264.parser, h264.payloader, h264.depayloader, h264.decoder, h264.encoder) == (
        "h264parse", "rtph264pay", "rtph264depay", "avdec_h264", "x264enc")
    assert (h265.caps, h265.encoding_name, h265.mp4_format) == ("video/x-h265", "H265", "hvc1")
    assert VIDEO_PT == 96


def test_codec_of_caps() -> None:
    assert codec_of_caps("video/x-h264") == "h264"
    assert codec_of_caps("application/x-rtp", "h265") == "h265"
    assert codec_of_caps("application/x-rtp", "VP8") is None
    assert codec_of_caps("video/x-vp9") is None


def test_audio_of_caps_and_of_rtp() -> None:
    assert audio_codec_of_caps("audio/mpeg", 4) == "aac"
    assert audio_codec_of_caps("audio/mpeg", 2) == "aac"  # MPEG-2 AAC (ADTS in TS)
    assert audio_codec_of_caps("audio/mpeg", 1) == "mp3"  # MP3, and MP2 in broadcast TS
    assert audio_codec_of_caps("audio/x-ac3") == audio_codec_of_caps("audio/ac3") == "ac3"
    assert audio_codec_of_caps("audio/x-mulaw") == "pcmu"
    assert audio_codec_of_caps("audio/x-vorbis") is None
    assert audio_codec_of_rtp("mpeg4-generic") == ("aac", "rtpmp4gdepay")
    assert audio_codec_of_rtp("MP4A-LATM") == ("aac", "rtpmp4adepay")
    assert audio_codec_of_rtp("PCMA") == ("pcma", "rtppcmadepay")
    assert audio_codec_of_rtp("G726-32") is None and audio_codec_of_rtp(None) is None
    # G.711 keeps its static payload types (RFC 3551); the rest use the dynamic one
    assert (AUDIO_CODECS["pcmu"].pt, AUDIO_CODECS["pcma"].pt) == (0, 8)
    assert AUDIO_CODECS["aac"].pt == AUDIO_CODECS["opus"].pt == AUDIO_PT != VIDEO_PT


def test_unknown_codec_is_one_line() -> None:
    with pytest.raises(InputError, match="codec must be h264 or h265, not 'vp8'"):
        video_codec("vp8")


def test_live_recipes_are_the_publishers() -> None:
    """What framecast.Publisher has written inline so far, to the byte."""
    assert encoder_recipe("h264", gop=30, bitrate_kbps=2048, profile="constrained-baseline") == (
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=2048 "
        "! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1")
    assert encoder_recipe("h265", gop=30, bitrate_kbps=2048) == (
        "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=2048 "
        "! h265parse config-interval=-1")


def test_file_recipes() -> None:
    assert encoder_recipe("h264", gop=12, live=False, bframes=2, slices=4, profile="high",
                          stream_format="avc") == (
        "x264enc speed-preset=veryfast key-int-max=12 bframes=2 b-adapt=false "
        "option-string=slices=4 byte-stream=false ! video/x-h264,profile=high ! h264parse "
        "! video/x-h264,stream-format=avc")
    assert encoder_recipe("h265", gop=30, live=False, stream_format="byte-stream") == (
        "x265enc speed-preset=veryfast key-int-max=30 option-string=bframes=0:b-adapt=0:"
        "keyint=30:min-keyint=30:scenecut=0 ! h265parse ! video/x-h265,stream-format=byte-stream")
    # live with B-frames: no zerolatency (it would turn them off)
    assert encoder_recipe("h264", gop=30, bframes=2).startswith(
        "x264enc speed-preset=ultrafast key-int-max=30 bframes=2 b-adapt=false")
