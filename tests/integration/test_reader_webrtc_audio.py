"""framecast.open("webrtc://…", audio=True): the mount's audio arrives as Opus over WebRTC
and is decoded to the file's tone (run under netns-run).

Needs the WebRTC producer's audio (branch audio-webrtc: AAC mounts → Opus, Opus passed
through): until it is merged, /api/streams has no ``webrtc.audio_codec`` and the tone test
xfails (it passed on a scratch merge of both branches); the other tests hold either way."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest
from audio_helpers import chunks_peak_hz
from test_publisher_audio import RECEIVER_SLACK, beep_offset, check_sync, publish_and_read

import framecast
from framecast import AudioChunk, Frame, Mount, Server, Settings
from framecast.gst.clips import make_clip

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    clip = make_clip(tmp_path_factory.mktemp("wa") / "tone.mp4", frames=90, audio="aac")
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http_port=0),
                 (Mount(name="tone", file=str(clip)),)).start()
    yield srv
    srv.stop()


def read(server: Server, audio: bool, frames: int = 45) -> list[Frame | AudioChunk]:
    url = f"webrtc://127.0.0.1:{server.http_port}/tone"
    items: list[Frame | AudioChunk] = []
    with framecast.open(url, audio=audio, timeout=20) as reader:
        for item in reader:
            items.append(item)
            if sum(isinstance(i, Frame) for i in items) >= frames:
                break
    return items


def server_sends_audio(server: Server) -> bool:
    with urllib.request.urlopen(f"{server.http_url}/api/streams", timeout=10) as res:
        (stream,) = json.load(res)["streams"]
    return bool(stream["webrtc"].get("audio_codec"))


def test_webrtc_audio_is_the_files_tone(server: Server) -> None:
    if not server_sends_audio(server):  # the WebRTC producer's audio (branch audio-webrtc)
        pytest.xfail("this server carries no audio over WebRTC yet (merge audio-webrtc)")
    items = read(server, audio=True, frames=60)
    chunks = [i for i in items if isinstance(i, AudioChunk)]
    assert chunks, "no audio over WebRTC (does the server carry mount audio yet?)"
    assert chunks[0].rate == 48000
    # the tone, not the silence a decoder may fill in while the stream starts or at a loss
    loud = [c for c in chunks if np.abs(c.samples).max() > 0.1]
    assert len(loud) >= 25  # of ~100 (2 s of 20 ms Opus frames)
    assert abs(chunks_peak_hz(loud) - 440) < 5
    frames = [i for i in items if isinstance(i, Frame)]
    assert abs(chunks[0].pts - frames[0].pts) < 0.5  # one timeline (RTCP aligns it finer)


def test_publisher_opus_over_webrtc_lands_on_its_frame(server: Server) -> None:
    if not server_sends_audio(server):
        pytest.xfail("this server carries no audio over WebRTC yet (merge audio-webrtc)")
    sent = publish_and_read(server, "opus", webrtc=True)
    offset, beeping = beep_offset(sent.items)
    assert abs(chunks_peak_hz(beeping) - 440) < 10
    added = check_sync(sent, "webrtc opus", offset)
    assert abs(added) <= 0.020 + RECEIVER_SLACK, f"beep {offset * 1000:.1f} ms from its frame"


def test_webrtc_audio_false_is_video_only(server: Server) -> None:
    items = read(server, audio=False, frames=15)
    assert len(items) == 15 and all(isinstance(i, Frame) for i in items)


def test_offer_sections_look_like_a_browsers() -> None:
    """webrtcbin's bundle-only port 0 reads as a rejected section to WHEP servers."""
    from framecast.gst.whep_client import unbundle_only

    offer = ("v=0\r\na=group:BUNDLE video0 audio1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
             "a=mid:video0\r\nm=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=bundle-only\r\n"
             "a=mid:audio1\r\n")
    out = unbundle_only(offer)
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" in out and "bundle-only" not in out
    assert out.replace("m=audio 9", "m=audio 0").count("\r\n") == offer.count("\r\n") - 1
    assert unbundle_only(out) == out
