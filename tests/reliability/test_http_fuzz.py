"""WHEP and plain HTTP under hostile input: mutated offers, oversized bodies, unknown
resources, malformed requests, wrong credentials.

Every request gets a 4xx (never a 500 or a dropped server), each malformed request is one
bounded log line without a traceback or the attacker's bytes, accepted-but-broken offers are
freed by the pending timeout, and a viewer still plays afterwards. Run under tools/netns-run."""

from __future__ import annotations

import asyncio
import base64
import random
import socket
import subprocess

import aiohttp
import pytest
from webrtc_reliability_helpers import (
    OFFER_WITHOUT_CANDIDATES,
    ServerProcess,
    healthy_viewer_plays,
    wait_until,
    webrtcbins,
)

pytestmark = pytest.mark.timeout(120)

SDP = {"Content-Type": "application/sdp"}


def mutated_offers(rng: random.Random, n: int) -> list[bytes]:
    lines = OFFER_WITHOUT_CANDIDATES.split("\r\n")
    junk = ["a=rtpmap:102 H264/90000/9/9", "m=video -1 RTP 102", "a=fmtp:102 " + "x;" * 500,
            "a=fingerprint:sha-256 zz", "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP6 ::",
            "a=candidate:1 1 udp 1 999.1.1.1 70000 typ host", "a=ice-ufrag:", "\x00\xff",
            "a=mid:" + "m" * 3000, "b=AS:-1", "a=setup:banana", "a=rtcp-mux" * 100]
    out = []
    for _ in range(n):
        ls = list(lines)
        for _ in range(rng.randrange(1, 4)):
            op = rng.randrange(3)
            i = rng.randrange(len(ls))
            if op == 0:
                del ls[i]
            elif op == 1:
                ls.insert(i, rng.choice(junk))
            else:
                ls[i] = ls[i][: rng.randrange(len(ls[i]) + 1)]
        out.append("\r\n".join(ls).encode("utf-8", "surrogateescape"))
    return out


RAW = [
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),  # a TLS hello
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\x01" + b"A" * 20_000 + b"\r\n\r\n",
    b"GET /" + b"x" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"y" * 100_000 + b"\r\n\r\n",
    b"POST /whep/demo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
    b"POST /whep/demo HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /whep/demo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /\x1b[31mred HTTP/1.1\r\n\r\n",
]


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data)
            return s.recv(200)
        except (ConnectionResetError, BrokenPipeError):
            return b""


async def hostile(url: str) -> list[int]:
    statuses: list[int] = []
    async with aiohttp.ClientSession() as s:
        async def post(body: bytes, path: str = "/whep/demo", **kw: object) -> int:
            async with s.post(url + path, data=body, headers=kw.pop("headers", SDP)) as r:
                await r.read()
                statuses.append(r.status)
                return r.status

        rng = random.Random(5)
        for body in mutated_offers(rng, 120):
            assert await post(body) in (201, 400, 503), body[:200]
        for body in (b"", b"v=0", bytes(rng.randrange(256) for _ in range(5000)), b"\xff\xfe"):
            assert await post(body) == 400
        assert await post(b"v=0\r\n" + b"a=x\r\n" * 2_000_000) == 413  # 10 MB
        assert await post(OFFER_WITHOUT_CANDIDATES.encode(), "/whep/" + "n" * 5000) == 404
        assert await post(OFFER_WITHOUT_CANDIDATES.encode(), "/whep/%00%ff..%2f") == 404
        for path in ("/whep/demo/" + "0" * 32, "/whep/demo/../../x", "/whep/nope/1"):
            async with s.delete(url + path) as r:
                assert r.status in (404, 405)  # "../" is resolved by the client: DELETE /x
        async with s.put(url + "/whep/demo", data=b"x") as r:
            assert r.status == 405
    return statuses


def test_whep_and_http_fuzz(tmp_path) -> None:
    log_path = tmp_path / "server.log"
    settings = {"webrtc_pending_timeout": 2.0, "webrtc_idle_stop": 0.5}
    with ServerProcess(settings, log_path=log_path) as srv:
        statuses = asyncio.run(hostile(srv.url))
        assert 500 not in statuses
        for data in RAW:
            reply = raw_request(srv.port, data)
            assert reply == b"" or reply.startswith((b"HTTP/1.0 4", b"HTTP/1.1 4")), reply
        assert srv.alive
        # offers that were accepted but can never connect are freed by the pending timeout
        wait_until(lambda: webrtcbins(srv.url) == 0, 15, "fuzzed viewers freed")
        healthy_viewer_plays(srv.url)
        text = log_path.read_text()
        assert "Traceback" not in text, text[:3000]
        assert max(map(len, text.splitlines())) < 400
        assert "AAAAAAAAAA" not in text and "yyyyyyyyyy" not in text
        assert "[31mred" not in text  # the client's escape sequence
        assert 1 <= text.count("HTTP: bad request from 127.0.0.1") <= 2  # rate-limited


def test_auth_failures_logged_with_the_address_over_tls(tmp_path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    log_path = tmp_path / "server.log"
    settings = {"users": {"alice": "s3cret"}, "tls_cert": str(tmp_path / "cert.pem"),
                "tls_key": str(tmp_path / "key.pem")}
    with ServerProcess(settings, log_path=log_path) as srv:
        url = srv.url.replace("http://", "https://")

        async def main() -> None:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as s:
                for i in range(30):
                    auth = base64.b64encode(f"alice:guess{i}".encode()).decode()
                    async with s.get(url + "/api/streams",
                                     headers={"Authorization": f"Basic {auth}"}) as r:
                        assert r.status == 401
                good = base64.b64encode(b"alice:s3cret").decode()
                async with s.get(url + "/api/streams",
                                 headers={"Authorization": f"Basic {good}"}) as r:
                    assert r.status == 200

        asyncio.run(main())
        text = log_path.read_text()
        assert f"HTTP on https://127.0.0.1:{srv.port} " in text  # it said http:// with TLS on
        lines = [x for x in text.splitlines() if "authentication failed" in x]
        assert lines == ["WARNING framecast.http: HTTP: authentication failed from 127.0.0.1 "
                         "(GET /api/streams)"], lines
