"""Failed RTSP logins are logged with the peer address; an address that keeps failing is
refused for a while (``auth_max_failures`` within ``auth_failure_window``)."""

from __future__ import annotations

import base64
import logging
import time

import pytest
from raw_rtsp import RawRtsp
from rtsp_helpers import wait_until

from framecast.config import Mount, Settings, User
from framecast.gst.clips import make_clip
from framecast.server import Server

WINDOW = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    clip = make_clip(tmp_path_factory.mktemp("auth") / "a.mp4", frames=10, fps=30,
                     width=160, height=120)
    settings = Settings(rtsp_port=0, http=False, users=(User("alice", "s3cret"),), auth="basic",
                        auth_max_failures=3, auth_failure_window=WINDOW)
    srv = Server(settings, (Mount(name="a", file=str(clip)),)).start()
    yield srv
    srv.stop()


def _describe(server: Server, password: str) -> int:
    token = base64.b64encode(f"alice:{password}".encode()).decode()
    try:
        raw = RawRtsp(server.port, timeout=5)
        try:
            return raw.request("DESCRIBE", server.rtsp_url("a"),
                               {"Authorization": f"Basic {token}"})[0]
        finally:
            raw.close()
    except (ConnectionError, OSError):
        return 0  # closed: refused


def test_repeated_failures_are_logged_and_refused(server: Server,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="framecast.rtsp")
    assert _describe(server, "s3cret") == 200
    assert [_describe(server, "wrong") for _ in range(3)] == [401, 401, 401]

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records
                if "authentication failed" in r.getMessage()]

    assert wait_until(lambda: len(lines()) == 3, 5), lines()
    assert all("127.0.0.1" in line for line in lines()), lines()
    assert "refusing it for a while" in lines()[-1]
    # now even the right password is refused from this address …
    assert _describe(server, "s3cret") in (0, 503)
    assert _describe(server, "wrong") in (0, 401, 503)
    # … until the window has passed
    time.sleep(WINDOW + 0.3)
    assert _describe(server, "s3cret") == 200
