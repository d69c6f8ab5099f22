"""Many viewers join and leave; bad signalling from a page never takes the server down."""

from __future__ import annotations

import json

import pytest
from browser_helpers import Server, open_viewer
from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

VIEWERS = 20


def test_twenty_viewers_join_and_leave_and_webrtcbins_return_to_zero(
        browser: Browser, index_server: Server) -> None:
    mount = index_server.mounts[0]
    context = browser.new_context()
    try:
        pages = []
        for _ in range(VIEWERS):
            page = context.new_page()
            page.goto(f"{index_server.base}/?stream={mount}")
            pages.append(page)
        for page in pages:
            page.wait_for_function("window.framecast.presented.length >= 10", timeout=60000)
        assert index_server.wait_webrtcbins(VIEWERS) == VIEWERS
        for page in pages:
            assert page.evaluate("window.framecast.presented.some(p => p.matched)")

        # Half leave politely (endSession), half just vanish (socket drops).
        for page in pages[: VIEWERS // 2]:
            page.evaluate("window.framecast.stop()")
        assert index_server.wait_webrtcbins(VIEWERS - VIEWERS // 2) == VIEWERS - VIEWERS // 2
        for page in pages[VIEWERS // 2:]:
            page.close()
        assert index_server.wait_webrtcbins(0) == 0
    finally:
        context.close()
    assert index_server.alive()
    assert index_server.wait_webrtcbins(0) == 0


# Opens its own signalling socket from the page, sends one raw text frame, and collects what
# comes back for a moment (the welcome first), or how the socket closed.
WS_JS = """
async ([text, waitMs]) => {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  const got = [];
  let closed = null;
  ws.onmessage = e => got.push(JSON.parse(e.data));
  ws.onclose = e => { closed = e.code; };
  await new Promise((ok, ko) => { ws.onopen = ok; ws.onerror = ko; });
  await new Promise(r => setTimeout(r, 300));
  ws.send(text);
  await new Promise(r => setTimeout(r, waitMs));
  ws.close();
  return {got, closed};
}
"""

BAD_MESSAGES = {
    "not-json": "{this is not json",
    "json-array": "[1, 2, 3]",
    "no-type": json.dumps({"peerId": "x"}),
    "unknown-type": json.dumps({"type": "launchMissiles"}),
    "unknown-producer": json.dumps({"type": "startSession", "peerId": "no-such-peer"}),
    "unknown-session-peer": json.dumps({"type": "peer", "sessionId": "no-such-session",
                                        "sdp": {"type": "answer", "sdp": "v=0\r\n"}}),
    "unknown-session-ice": json.dumps({"type": "peer", "sessionId": "nope",
                                       "ice": {"candidate": "x", "sdpMLineIndex": 0}}),
    "unknown-session-end": json.dumps({"type": "endSession", "sessionId": "nope"}),
    "wrong-field-types": json.dumps({"type": "setPeerStatus", "roles": "listener"}),
    "big-600k": json.dumps({"type": "peer", "sessionId": "nope",
                            "sdp": {"type": "answer", "sdp": "x" * 600_000}}),
}


@pytest.mark.parametrize("text", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_bad_signalling_gets_an_error_message_and_the_server_keeps_serving(
        browser: Browser, index_server: Server, text: str) -> None:
    page = browser.new_page()
    try:
        page.goto(index_server.base + "/")
        res = page.evaluate(WS_JS, [text, 700])
        types = [m.get("type") for m in res["got"]]
        assert types[0] == "welcome", res
        errors = [m for m in res["got"] if m.get("type") == "error"]
        assert errors, f"no error message for {text[:60]!r}: {types}"
        assert all(isinstance(e.get("details"), str) and e["details"] for e in errors)
        assert index_server.alive()
        assert page.evaluate(WS_JS, ['{"type": "list"}', 300])["got"][1]["type"] == "list"
    finally:
        page.close()


def test_huge_signalling_message_is_refused_without_a_crash(
        browser: Browser, index_server: Server) -> None:
    page = browser.new_page()
    try:
        page.goto(index_server.base + "/")
        res = page.evaluate(WS_JS, ["x" * (4 * 1024 * 1024), 1000])
        # Refused: an error message, or the socket closed with 1009 (message too big).
        assert res["closed"] == 1009 or any(m.get("type") == "error" for m in res["got"]), res
    finally:
        page.close()
    assert index_server.alive()
    page = open_viewer(browser, index_server, index_server.mounts[0], frames=10)
    page.close()
    assert index_server.wait_webrtcbins(0) == 0
