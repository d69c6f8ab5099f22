"""SDP helpers of the WebRTC producer (pure: no GStreamer)."""

import pytest

from framecast.producer import WebRTCError
from framecast.webrtcsdp import (
    choose_h264_payload,
    choose_opus_payload,
    profile_level_id,
    with_candidates,
)


def test_payload_choice_and_candidates_in_answers() -> None:
    offer = ("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102 108 116\r\n"
             "a=rtpmap:102 H264/90000\r\n"
             "a=fmtp:102 packetization-mode=1;profile-level-id=42001f\r\n"
             "a=rtpmap:108 H264/90000\r\n"
             "a=fmtp:108 packetization-mode=1;profile-level-id=42e01f\r\n"
             "a=rtpmap:116 H264/90000\r\n"
             "a=fmtp:116 level-asymmetry-allowed=1;packetization-mode=1;"
             "profile-level-id=4d001f\r\n")
    assert choose_h264_payload(offer, "42e01e") == (108, "42e01f")
    assert choose_h264_payload(offer, "4d0028") == (116, "4d001f")
    with pytest.raises(WebRTCError, match="profile-level-id 640028"):
        choose_h264_payload(offer, "640028")
    no_plid = ("v=0\r\nm=video 9 X 96\r\na=rtpmap:96 H264/90000\r\n"
               "a=fmtp:96 packetization-mode=1\r\n")
    assert choose_h264_payload(no_plid, "4d0028") == (96, "4d0028")
    mode0 = no_plid.replace("packetization-mode=1", "packetization-mode=0")
    with pytest.raises(WebRTCError):
        choose_h264_payload(mode0, "42e01f")
    sdp = "v=0\r\nm=video 9 X 96\r\na=mid:0\r\nm=audio 9 X 111\r\na=mid:1\r\n"
    out = with_candidates(sdp, [(0, "candidate:1 1 UDP 1 10.0.0.1 5 typ host")])
    assert out.split("\r\n")[3] == "a=candidate:1 1 UDP 1 10.0.0.1 5 typ host"
    assert with_candidates(out, [(0, "other")]) == out


# -- WHEP ----------------------------------------------------------------------------------------


def test_profile_level_id_from_caps_names() -> None:
    assert profile_level_id("constrained-baseline", "3.1") == "42e01f"
    assert profile_level_id("main", "4") == "4d0028"
    assert profile_level_id("high", None) == "64001f"
    assert profile_level_id(None, "bogus") == "42e01f"  # unknown: what browsers all take


_VIDEO = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\na=rtpmap:96 H264/90000\r\n"


@pytest.mark.parametrize(("audio", "pt"), [
    # Chromium's recvonly audio: Opus at 111 (among others)
    ("m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n"
     "a=rtpmap:0 PCMU/8000\r\n", 111),
    ("m=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=sendrecv\r\na=rtpmap:109 OPUS/48000/2\r\n", 109),
    ("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=recvonly\r\na=rtpmap:0 PCMU/8000\r\n", None),
    ("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=inactive\r\na=rtpmap:111 opus/48000/2\r\n", None),
    ("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n", None),
    ("m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n", None),
    ("", None),  # video only: that viewer gets no audio
])
def test_opus_payload_from_the_offers_audio_section(audio: str, pt: int | None) -> None:
    assert choose_opus_payload("v=0\r\n" + _VIDEO + audio) == pt
