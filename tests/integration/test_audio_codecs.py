"""The audio real files and cameras carry, beyond AAC and Opus: MP3 (MP4, Matroska), MP2 and
AC-3 (broadcast MPEG-TS), G.711 (what most IP cameras send; a MOV here, and a relayed camera
that is a plain gst-rtsp-server). RTSP carries each as it is (FFmpeg names the codec); WebRTC
gets it as Opus, decoded once per mount; both readers hear the file's 440 Hz tone. Audio that
framecast does not carry (Vorbis) leaves the video served and says why (run under netns-run).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import av
import numpy as np
import pytest
from audio_helpers import chunks_peak_hz

import framecast
from framecast import AudioChunk, Frame, Mount, Server, Settings
from framecast.gst.clips import make_clip
from framecast.gst.runtime import init_gst

pytestmark = pytest.mark.timeout(180)

# mount -> (container, make_clip audio, FFmpeg's codec name for what RTSP carries)
FILES = {
    "mp3": ("mp4", "mp3", "mp2"),  # FFmpeg's RTP demuxer names any MPA stream "mp2" ...
    "mp3mkv": ("mkv", "mp3", "mp2"),
    "mp2ts": ("ts", "mp2", "mp2"),
    "ac3ts": ("ts", "ac3", "ac3"),
    "pcmu": ("mov", "pcmu", "pcm_mulaw"),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    d = tmp_path_factory.mktemp("acodecs")
    mounts = [Mount(name=name, file=str(make_clip(d / f"{name}.{cont}", frames=60,
                                                   container=cont, audio=audio)))
              for name, (cont, audio, _ff) in FILES.items()]
    mounts.append(Mount(name="vorbis", file=str(make_clip(d / "vorbis.mkv", frames=60,
                                                          container="mkv", audio="vorbis"))))
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http_port=0), tuple(mounts)).start()
    yield srv
    srv.stop()


def streams(server: Server) -> dict[str, dict]:
    with urllib.request.urlopen(f"{server.http_url}/api/streams", timeout=10) as res:
        return {s["name"]: s for s in json.load(res)["streams"]}


def tone(url: str, chunks_wanted: int = 40) -> list[AudioChunk]:
    """Audio chunks read with framecast.open(audio=True) that carry sound (not the silence a
    decoder fills in at the start)."""
    loud: list[AudioChunk] = []
    frames = 0
    with framecast.open(url, audio=True, timeout=20) as reader:
        for item in reader:
            if isinstance(item, Frame):
                frames += 1
            elif np.abs(item.samples).max() > 0.1:
                loud.append(item)
            if len(loud) >= chunks_wanted or frames > 150:
                break
    return loud


def rtsp_codecs(url: str) -> list[str]:
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=15) as c:
        return [s.codec_context.name for s in c.streams]


def ffmpeg_tone(url: str) -> tuple[float, int]:
    """(strongest frequency, sample rate) of the audio FFmpeg decodes from ``url``: an
    independent client (... and still decodes MP3 in it)."""
    from audio_helpers import peak_hz

    pcm: list[np.ndarray] = []
    rate = 0
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=15) as c:
        (audio,) = c.streams.audio
        for packet in c.demux(audio):
            for frame in packet.decode():
                samples = frame.to_ndarray()
                rate = frame.sample_rate
                mono = samples[0] if samples.ndim == 2 and not frame.format.is_packed \
                    else samples.reshape(-1, len(frame.layout.channels))[:, 0]
                if np.abs(mono.astype(np.float64)).max() > 0:
                    pcm.append(mono.astype(np.float64))
            if sum(len(p) for p in pcm) >= rate * 1.5 > 0:
                break
    return peak_hz(np.concatenate(pcm), rate), rate


@pytest.mark.parametrize("mount", list(FILES))
def test_file_audio_over_rtsp_as_it_is(served: Server, mount: str) -> None:
    assert rtsp_codecs(served.rtsp_url(mount)) == ["h264", FILES[mount][2]]
    hz, _rate = ffmpeg_tone(served.rtsp_url(mount))
    assert abs(hz - 440) < 10, f"FFmpeg hears {hz:.0f} Hz"
    loud = tone(served.rtsp_url(mount))
    assert len(loud) >= 10, f"{len(loud)} loud chunks"
    assert abs(chunks_peak_hz(loud) - 440) < 10


@pytest.mark.parametrize("mount", list(FILES))
def test_file_audio_over_webrtc_as_opus(served: Server, mount: str) -> None:
    s = streams(served)[mount]
    assert s["audio"] == FILES[mount][1].replace("mp2", "mp3"), s
    assert (s["webrtc"]["audio"], s["webrtc"]["audio_codec"]) == ("transcoded", "opus"), s
    assert "Opus is" in s["webrtc"]["audio_reason"]
    loud = tone(f"webrtc://127.0.0.1:{served.http_port}/{mount}")
    assert len(loud) >= 10 and loud[0].rate == 48000, f"{len(loud)} loud chunks"
    assert abs(chunks_peak_hz(loud) - 440) < 10


def test_audio_not_carried_leaves_the_video_and_says_why(served: Server) -> None:
    s = streams(served)["vorbis"]
    assert s["audio"] == "vorbis"
    assert s["webrtc"]["audio"] == "none" and s["webrtc"]["audio_codec"] is None
    assert "vorbis audio is not served" in s["webrtc"]["audio_reason"]
    assert "G.711" in s["webrtc"]["audio_reason"]  # and what is
    assert rtsp_codecs(served.rtsp_url("vorbis")) == ["h264"]
    with framecast.open(served.rtsp_url("vorbis"), audio=True, timeout=20) as reader:
        items = [next(reader) for _ in range(10)]
    assert all(isinstance(i, Frame) for i in items)


# -- a camera that sends G.711 --------------------------------------------------------------------

@pytest.fixture(scope="module")
def g711_camera() -> Iterator[str]:
    """Not framecast: gst-rtsp-server with a launch line, as camera firmware does it."""
    init_gst()
    from gi.repository import GLib, GstRtspServer

    server = GstRtspServer.RTSPServer.new()
    server.set_address("127.0.0.1")
    server.set_service("0")
    factory = GstRtspServer.RTSPMediaFactory.new()
    factory.set_launch(
        "( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=25/1 "
        "! x264enc tune=zerolatency key-int-max=25 ! rtph264pay name=pay0 pt=96 "
        "audiotestsrc is-live=true freq=440 volume=0.5 ! audio/x-raw,rate=8000,channels=1 "
        "! mulawenc ! rtppcmupay name=pay1 pt=0 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    context = GLib.MainContext.new()
    server.attach(context)
    loop = GLib.MainLoop.new(context, False)
    import threading

    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        yield f"rtsp://127.0.0.1:{server.get_bound_port()}/cam"
    finally:
        loop.quit()
        thread.join(5)


def test_relayed_g711_camera_keeps_its_audio(g711_camera: str) -> None:
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http_port=0),
                 (Mount(name="cam", source=g711_camera),)).start()
    try:
        assert rtsp_codecs(srv.rtsp_url("cam")) == ["h264", "pcm_mulaw"]
        loud = tone(srv.rtsp_url("cam"))
        assert len(loud) >= 10 and abs(chunks_peak_hz(loud) - 440) < 10
        s = streams(srv)["cam"]
        assert s["audio"] == "pcmu" and s["webrtc"]["audio"] == "transcoded", s
        loud = tone(f"webrtc://127.0.0.1:{srv.http_port}/cam")
        assert len(loud) >= 10 and loud[0].rate == 48000
        assert abs(chunks_peak_hz(loud) - 440) < 10
    finally:
        srv.stop()
