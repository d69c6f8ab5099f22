"""EdgeLink.reconcile against a scripted streaming plugin (the HTTP side is tested with a real
Janus in tests/integration/test_janus_edge.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from framecast.config import JanusEdge
from framecast.edge import janus_api as api
from framecast.edge.janus import EdgeLink, EdgeMount

ORIGIN = "rtsp://127.0.0.1:8554"


class FakeStreaming:
    """The streaming plugin's list/create/destroy/info, in memory."""

    def __init__(self, mountpoints: dict[int, str], refuse: set[str] = frozenset()) -> None:
        self.mps = dict(mountpoints)
        self.refuse = refuse
        self.next_id = 100
        self.session = 1

    async def message(self, body: dict[str, Any]) -> dict[str, Any]:
        req = body["request"]
        if req == "list":
            data: dict[str, Any] = {"list": [{"id": i, "description": d}
                                             for i, d in self.mps.items()]}
        elif req == "create":
            if any(f"/{m} " in body["description"] for m in self.refuse):
                data = {"error_code": 456, "error": "cannot connect to RTSP"}
            else:
                self.next_id += 1
                self.mps[self.next_id] = body["description"]
                data = {"stream": {"id": self.next_id}}
        elif req == "destroy":
            data = {} if self.mps.pop(body["id"], None) else {"error_code": 455, "error": "x"}
        else:  # info: video flowing
            data = {"info": {"media": [{"type": "video", "age_ms": 10}]}}
        return api.check({"janus": "success", "plugindata": {"data": data}})


def link(fake: FakeStreaming, mounts: list[str], feed: str = "rtsp") -> EdgeLink:
    ms = [EdgeMount(m, f"{ORIGIN}/{m}") for m in mounts]
    return EdgeLink(JanusEdge(url="http://j/janus", feed=feed), fake, ORIGIN, ms)  # type: ignore[arg-type]


def test_leftovers_replaced_others_untouched_missing_made() -> None:
    fake = FakeStreaming({1: api.description("a", ORIGIN),            # a crashed run's
                          2: "someone else's stream",
                          3: api.description("a", "rtsp://10.0.0.9:8554")})  # another origin
    lk = link(fake, ["a", "b"])
    asyncio.run(lk.reconcile())
    ours = {i: d for i, d in fake.mps.items() if api.ours(d, ORIGIN)}
    assert sorted(api.ours(d, ORIGIN) for d in ours.values()) == ["a", "b"]
    assert 1 not in fake.mps and 2 in fake.mps and 3 in fake.mps
    assert lk.live == {"a", "b"}
    made = dict(fake.mps)
    asyncio.run(lk.reconcile())  # a second poll changes nothing
    assert fake.mps == made


def test_a_refused_mount_is_retried_and_the_others_served() -> None:
    fake = FakeStreaming({}, refuse={"bad"})
    lk = link(fake, ["good", "bad"])
    asyncio.run(lk.reconcile())
    assert set(lk.mountpoints) == {"good"} and lk.failing == {"bad"}
    fake.refuse = set()
    asyncio.run(lk.reconcile())
    assert set(lk.mountpoints) == {"good", "bad"} and not lk.failing


def test_feed_auto_pulls_rtsp_only_where_browsers_play_it_as_is() -> None:
    lk = link(FakeStreaming({}), [], feed="auto")
    assert lk.feed_for(EdgeMount("m", "u", browser_ok=True)) == "rtsp"
    assert lk.feed_for(EdgeMount("h", "u", browser_ok=False)) == "rtp"
    lk = link(FakeStreaming({}), [], feed="rtp")
    assert lk.feed_for(EdgeMount("m", "u", browser_ok=True)) == "rtp"
