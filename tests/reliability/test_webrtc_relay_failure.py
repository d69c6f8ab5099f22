"""A relay mount whose camera cannot be reached refuses WHEP viewers with 503 and the reason
(it used to answer 201 and send nothing), while the other mounts keep serving.
Run under tools/netns-run."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from webrtc_reliability_helpers import (
    OFFER_WITHOUT_CANDIDATES,
    ServerProcess,
    healthy_viewer_plays,
    webrtcbins,
)

pytestmark = pytest.mark.timeout(60)


def post_offer(url: str) -> tuple[int, str, str | None]:
    req = urllib.request.Request(url, data=OFFER_WITHOUT_CANDIDATES.encode(), method="POST",
                                 headers={"Content-Type": "application/sdp"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.read().decode(), r.headers.get("Retry-After")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers.get("Retry-After")


def test_whep_on_a_failed_relay_is_503(tmp_path) -> None:
    with socket.socket() as s:  # a port nobody listens on: the camera is down
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    relays = {"cam": f"rtsp://127.0.0.1:{dead}/stream"}
    with ServerProcess({"webrtc_idle_stop": 0.5}, relays=relays,
                       log_path=tmp_path / "server.log") as srv:
        for _ in range(3):
            status, text, retry = post_offer(f"{srv.url}/whep/cam")
            assert status == 503, (status, text)
            assert "source failed" in text and retry is not None
        assert webrtcbins(srv.url) == 0
        assert srv.alive
        healthy_viewer_plays(srv.url)
