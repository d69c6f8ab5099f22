"""URLs a server announces: built in one place (framecast.urls)."""

import pytest

from framecast.urls import http_url, rtsp_url


@pytest.mark.parametrize(("bind", "tls", "expected"), [
    ("127.0.0.1", False, "rtsp://127.0.0.1:8554/cam"),
    ("0.0.0.0", False, "rtsp://127.0.0.1:8554/cam"),
    ("", False, "rtsp://127.0.0.1:8554/cam"),
    ("::", False, "rtsp://127.0.0.1:8554/cam"),
    ("::1", False, "rtsp://[::1]:8554/cam"),
    ("fe80::1", True, "rtsps://[fe80::1]:8554/cam"),
    ("192.0.2.7", True, "rtsps://192.0.2.7:8554/cam"),
    ("[::1]", False, "rtsp://[::1]:8554/cam"),
])
def test_rtsp_url(bind: str, tls: bool, expected: str) -> None:
    assert rtsp_url(bind, 8554, "cam", tls) == expected


def test_http_url() -> None:
    assert http_url("::1", 8080) == "http://[::1]:8080"
    assert http_url("0.0.0.0", 8443, tls=True) == "https://127.0.0.1:8443"
