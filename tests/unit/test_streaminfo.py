"""The one WebRTC profile decision (pure): what browsers here play as it is."""

import pytest

from framecast.streaminfo import StreamInfo, needs_transcode, transcode_reason


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
