"""HTTP side with users configured: wrong or missing credentials get 401 and nothing else."""

from __future__ import annotations

import asyncio
import base64

import aiohttp

from framecast.gst import demosources, webrtc
from framecast.gst.runtime import Bridge
from framecast.http.auth import check_basic_auth
from framecast.http.metrics import Registry
from framecast.http.server import HttpServer


def basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_check_basic_auth() -> None:
    users = {"ann": "s3cret"}
    assert check_basic_auth(basic("ann", "s3cret")["Authorization"], users)
    assert not check_basic_auth(basic("ann", "wrong")["Authorization"], users)
    assert not check_basic_auth(basic("bob", "s3cret")["Authorization"], users)
    assert not check_basic_auth("Basic !!!notbase64", users)
    assert not check_basic_auth("Bearer x", users)
    assert not check_basic_auth(None, users)


def test_users_configured_refuse_wrong_credentials() -> None:
    async def main() -> None:
        bridge = Bridge(asyncio.get_running_loop())
        source, info = demosources.test_source(fps=30, stamp=False)
        srv = HttpServer(bridge, [webrtc.mount_spec("demo", source, info)], port=0,
                         metrics=Registry(), users={"ann": "s3cret"})
        await srv.start()
        try:
            async with aiohttp.ClientSession() as s:
                for path in ("/api/streams", "/metrics", "/", "/ws"):
                    async with s.get(srv.url + path) as r:
                        assert r.status == 401, path
                        assert r.headers["WWW-Authenticate"].startswith("Basic")
                    async with s.get(srv.url + path, headers=basic("ann", "nope")) as r:
                        assert r.status == 401, path
                async with s.post(srv.url + "/whep/demo", data="v=0\r\n",
                                  headers={"Content-Type": "application/sdp"}) as r:
                    assert r.status == 401
                async with s.get(srv.url + "/api/streams", headers=basic("ann", "s3cret")) as r:
                    assert r.status == 200
                    assert [st["name"] for st in (await r.json())["streams"]] == ["demo"]
            assert await srv.webrtcbin_count() == 0
        finally:
            await srv.stop()
            bridge.close()

    asyncio.run(main())
