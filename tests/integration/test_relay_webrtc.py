"""A relay learns its camera's profile from the stream's SPS: /api/streams reports it, and a
constrained-baseline camera goes to browsers as it is (no encoder in the WebRTC producer, its
frames and the origin's metadata arrive over WHEP), while a High one is still transcoded.
Before, a relay's profile was ``null`` and every relay was transcoded ("profile unknown").
Run under tools/netns-run."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest

import framecast
from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.gst.runtime import Gst
from framecast.server import Server

pytestmark = pytest.mark.timeout(120)


def video_coders(pipeline: Gst.Pipeline) -> list[str]:
    """Video decoders/encoders in ``pipeline`` (webrtcbin's DTLS "encoders" are not)."""
    it, out = pipeline.iterate_recurse(), []
    while (item := it.next())[0] == Gst.IteratorResult.OK:
        f = item[1].get_factory()
        klass = f.get_metadata("klass") if f else ""
        if "Video" in klass and ("Encoder" in klass or "Decoder" in klass):
            out.append(f.get_name())
    return out


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    d = tmp_path_factory.mktemp("relay-webrtc")
    base = make_clip(d / "base.mp4", frames=60, gop=30, profile="constrained-baseline")
    high = make_clip(d / "high.mp4", frames=60, gop=30, profile="high")
    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http=False),
                 (Mount(name="base", file=str(base)), Mount(name="high", file=str(high)))).start()
    yield srv
    srv.stop()


def test_relayed_baseline_is_passed_through(camera: Server) -> None:
    mounts = [Mount(name="rbase", source=camera.rtsp_url("base")),
              Mount(name="rhigh", source=camera.rtsp_url("high"))]

    srv = Server(Settings(bind="127.0.0.1", rtsp_port=0, http_port=0), tuple(mounts)).start()
    try:
        # the relays learn their cameras' profiles in the background once added
        deadline = time.monotonic() + 15
        while True:
            with urllib.request.urlopen(f"{srv.http_url}/api/streams") as r:
                streams = {s["name"]: s for s in json.load(r)["streams"]}
            if all(streams[m]["profile"] for m in ("rbase", "rhigh")) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        url = f"webrtc://127.0.0.1:{srv.http_port}/rbase"
        with framecast.open(url, decode=True, timeout=20) as reader:
            frames = [f for _, f in zip(range(30), reader, strict=False)]
            coders = video_coders(srv.http.mounts["rbase"].producer.pipeline)
    finally:
        srv.stop()
    base, high = streams["rbase"], streams["rhigh"]
    assert base["profile"] == "constrained-baseline"
    assert base["transcoded_for_webrtc"] is False, base
    assert base["webrtc"]["profile"] == "constrained-baseline"
    assert coders == []  # the producer that served the viewer neither decodes nor encodes
    assert high["profile"] == "high" and high["transcoded_for_webrtc"] is True
    assert "profile high" in high["webrtc"]["transcode_reason"]
    with_md = [f for f in frames if f.metadata]
    assert len(frames) == 30 and len(with_md) >= 25
    # the origin's stamps and the relay's hop made it through to the browser side
    assert all([h["via"] for h in f.metadata[0]["hops"]] == ["rbase"] for f in with_md)
