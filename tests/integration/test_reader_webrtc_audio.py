"""framecast.open("webrtc://…", audio=True): the mount's audio arrives as Opus over WebRTC
and is decoded to the file's tone, lined up with its video by the sender reports (run under
netns-run)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest
from audio_helpers import chunks_peak_hz
from test_publisher_audio import beep_offset, check_sync, publish_and_read

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


@pytest.fixture(scope="module")
def lipsync(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A 1 s loop whose frame 15 is white and has a 1 kHz beep (AAC, transcoded to Opus)."""
    clip = make_clip(tmp_path_factory.mktemp("lip") / "lip.mp4", frames=30, fps=30,
                     profile="main", audio="aac", flash_every=30)
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http_port=0),
                 (Mount(name="lip", file=str(clip)),)).start()
    yield srv
    srv.stop()


OPUS_FRAME_S = 0.020


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
    assert server_sends_audio(server)
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


def test_publisher_opus_over_webrtc_lands_on_its_frame(server: Server,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The beep at 3 s, not 1 s: the reader lines audio up with video by arrival until both
    # streams' first sender reports, which go out 0.5-1.5 s after connect; at 1 s that
    # measured the reader's start (8-136 ms, the encoders' latencies apart), not the server
    import test_publisher_audio

    monkeypatch.setattr(test_publisher_audio, "BEEP", 90)
    monkeypatch.setattr(test_publisher_audio, "N", 120)
    sent = publish_and_read(server, "opus", webrtc=True)
    offset, beeping = beep_offset(sent.items)
    assert abs(chunks_peak_hz(beeping) - 440) < 10
    added = check_sync(sent, "webrtc opus", offset)
    # synced by then: -1.6...-0.3 ms measured; one Opus frame plus 10 ms for a loaded machine
    assert abs(added) <= OPUS_FRAME_S + 0.010, f"beep {offset * 1000:.1f} ms from its frame"


def flash_beep_offsets(url: str, seconds: float) -> list[tuple[float, float]]:
    """(flash PTS, beep onset − flash PTS) in seconds for each flash of a lip-sync clip read
    from ``url`` with pixels and audio, as the reader's RTP receiver lines them up."""
    flashes: list[float] = []
    beeps: list[float] = []
    bright, quiet = False, 10**9
    with framecast.open(url, audio=True, decode=True, timeout=20) as reader:
        for item in reader:
            if isinstance(item, Frame):
                assert item.image is not None
                white = float(item.image.mean()) > 200
                if white and not bright:
                    flashes.append(item.pts)
                bright = white
                if item.pts - (flashes[0] if flashes else item.pts) > seconds:
                    break
                continue
            for i, level in enumerate(np.abs(item.samples[:, 0])):
                loud = level > 0.2
                if loud and quiet > item.rate // 20:  # an onset after >= 50 ms of quiet
                    beeps.append(item.pts + i / item.rate)
                quiet = 0 if loud else quiet + 1
    out = []
    for f in flashes:
        near = min(beeps, key=lambda b: abs(b - f), default=None)
        if near is not None and abs(near - f) < 0.25:
            out.append((f, near - f))
    return out


@pytest.mark.parametrize("scheme", ["rtsp", "webrtc"])
def test_flash_and_beep_of_one_instant_arrive_together(lipsync: Server, scheme: str) -> None:
    """The sender reports map audio and video by capture time: an RTP receiver that follows
    them (rtpbin) presents the white frame and its beep together, over RTSP and WebRTC.
    (WebRTC was 88 ms audio-late while webrtcbin's rtpbin stamped reports with send time: the
    file's audio reaches the sender later than its video.)"""
    url = (lipsync.rtsp_url("lip") if scheme == "rtsp"
           else f"webrtc://127.0.0.1:{lipsync.http_port}/lip")
    got = flash_beep_offsets(url, 6.0)
    # the receiver aligns by arrival until the first sender report (~1 s in)
    settled = [o for t, o in got if t - got[0][0] >= 1.5] if got else []
    report = [(round(t, 2), round(o * 1000, 1)) for t, o in got]
    assert len(settled) >= 3, f"flashes/beeps not found: {report}"
    # Opus adds its 6.5 ms look-ahead; one Opus frame (20 ms) is the bound
    assert all(abs(o) <= OPUS_FRAME_S for o in settled), report


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


def sender_reports(url: str, seconds: float) -> dict[int, list[tuple[float, int, int]]]:
    """Every RTCP sender report a WebRTC reader of ``url`` receives in ``seconds``, by SSRC:
    (NTP seconds, RTP timestamp, clock rate), read from its RTP sessions' sources."""
    from gi.repository import Gst

    got: dict[int, list[tuple[float, int, int]]] = {}
    with framecast.open(url, audio=True, timeout=20) as reader:
        pipeline = reader._pipe.pipeline
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            next(reader)  # keeps the reader flowing
            for el in pipeline.iterate_recurse():
                factory = el.get_factory()
                if factory is None or factory.get_name() != "rtpsession":
                    continue
                for src in el.get_property("internal-session").get_property("sources"):
                    st: Gst.Structure = src.get_property("stats")
                    if st.get_value("is-sender") and st.get_value("have-sr") \
                            and not st.get_value("internal"):
                        sr = (st.get_value("sr-ntptime") / 2**32, st.get_value("sr-rtptime"),
                              st.get_value("clock-rate"))
                        reports = got.setdefault(st.get_value("ssrc"), [])
                        if not reports or reports[-1] != sr:
                            reports.append(sr)
    return got


def test_sender_reports_hold_across_loop_points(lipsync: Server) -> None:
    """Every sender report maps RTP time to the same clock, loop after loop (1 s loops).
    Before, the first packet of a loop sometimes reached the RTP session still in the previous
    loop's segment, and the next report was one loop (1000 ms) off: Chromium, which fits a line
    through the last reports, then misplaced its video by 30-150 ms for ~15 s."""
    got = sender_reports(f"webrtc://127.0.0.1:{lipsync.http_port}/lip", 12.0)
    assert len(got) == 2, got  # the video and the audio sender (RTX sends no reports here)
    for ssrc, reports in got.items():
        assert len(reports) >= 5, (ssrc, reports)
        ntp0, rtp0, rate = reports[0]
        # RTP time minus NTP time, from the first report: constant for an exact sender
        off_ms = [round(((rtp - rtp0) % 2**32 / rate - (ntp - ntp0)) * 1000, 1)
                  for ntp, rtp, _ in reports]
        assert max(map(abs, off_ms)) <= 5, f"SSRC {ssrc} (clock {rate}): {off_ms}"
