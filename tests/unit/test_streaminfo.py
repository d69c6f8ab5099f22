"""The one WebRTC profile decision (pure): what browsers here play as it is."""

import pytest

from framecast.streaminfo import StreamInfo, needs_transcode, transcode_reason, webrtc_audio


@pytest.mark.parametrize(("info", "transcode", "reason"), [
    (StreamInfo("h264", "constrained-baseline"), False, "requested"),
    (StreamInfo("h264", "baseline"), False, "requested"),
    (StreamInfo("h264", "main"), False, "requested"),
    (StreamInfo("h264", "high"), True, "profile high is not received by browsers here"),
    (StreamInfo("h264", None), True, "profile unknown is not received by browsers here"),
    (StreamInfo("h264", "main", reordered=True), True,
     "B-frames (WebRTC receivers expect presentation order)"),
    (StreamInfo("h265", "main"), True, "H265 is not received by browsers here"),
], ids=["cb", "baseline", "main", "high", "relay-unknown", "b-frames", "h265"])
def test_needs_transcode(info: StreamInfo, transcode: bool, reason: str) -> None:
    assert needs_transcode(info) is transcode
    assert transcode_reason(info) == reason


@pytest.mark.parametrize(("audio", "mode", "why"), [
    ("opus", "passthrough", None),
    ("aac", "transcoded", "AAC is not received by browsers (Opus is)"),
    (None, "none", None),
    ("mp3", "transcoded", "MP3/MP2 is not received by browsers (Opus is)"),
    ("pcmu", "transcoded", "G.711 mu-law is not received by browsers (Opus is)"),
    ("vorbis", "none", "its vorbis audio is not served (framecast carries AAC, Opus, MP3/MP2, "
                       "AC-3, G.711 mu-law, G.711 A-law)"),
])
def test_what_webrtc_gets_of_the_audio(audio: str | None, mode: str, why: str | None) -> None:
    assert webrtc_audio(StreamInfo("h264", "main", audio=audio)) == (mode, why)
