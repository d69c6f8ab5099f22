"""The Janus protocol helpers and the [edge.janus] config (pure: no Janus, no GStreamer)."""

from __future__ import annotations

import pytest

from framecast.config import ConfigError, JanusEdge, merge_cli, parse_config
from framecast.edge import janus_api as api

ORIGIN = "rtsp://127.0.0.1:8554"


def test_descriptions_name_the_mount_and_only_ours_are_recognised() -> None:
    d = api.description("cam-1", ORIGIN)
    assert d == "framecast /cam-1 from rtsp://127.0.0.1:8554"
    assert api.ours(d, ORIGIN) == "cam-1"
    assert api.ours(d, "rtsp://127.0.0.1:9554") is None        # another framecast's
    assert api.ours("Opus/VP8 live stream", ORIGIN) is None     # someone else's


def test_list_answer_keeps_our_mountpoints() -> None:
    answer = {"janus": "success", "plugindata": {"plugin": api.STREAMING, "data": {
        "streaming": "list", "list": [
            {"id": 1, "description": "Opus/VP8 live stream"},
            {"id": 7, "description": api.description("a", ORIGIN)},
            {"id": 8, "description": api.description("b", "rtsp://10.0.0.1:8554")}]}}}
    assert api.listed(answer, ORIGIN) == [api.Mountpoint(7, "a")]


def test_errors_are_raised_with_their_code() -> None:
    with pytest.raises(api.JanusError) as e:
        api.check({"janus": "error", "error": {"code": 458, "reason": "No such session 9"}})
    assert e.value.session_gone
    with pytest.raises(api.JanusError) as e:
        api.check({"janus": "success", "plugindata": {"data": {
            "error_code": 455, "error": "No such mountpoint/stream 3"}}})
    assert e.value.code == api.ERR_NO_MOUNTPOINT and not e.value.session_gone


def test_create_bodies_and_created_port() -> None:
    rtsp = api.create_rtsp("cam", ORIGIN, ORIGIN + "/cam", admin_key="k")
    assert rtsp["type"] == "rtsp" and rtsp["url"] == ORIGIN + "/cam" and rtsp["admin_key"] == "k"
    assert rtsp["audio"] is False and rtsp["permanent"] is False and rtsp["rtsp_failcheck"] is True
    rtp = api.create_rtp("cam", ORIGIN, "127.0.0.1", "4d001f")
    media = rtp["media"][0]
    assert media["port"] == 0 and media["codec"] == "h264" and "4d001f" in media["fmtp"]
    answer = {"janus": "success", "plugindata": {"data": {"streaming": "created", "stream": {
        "id": 42, "ports": [{"type": "video", "mid": "v", "port": 40002}]}}}}
    assert api.created(answer, "cam") == api.Mountpoint(42, "cam", 40002)
    # with audio: Opus on a port of its own, both ports read back
    rtp = api.create_rtp("cam", ORIGIN, "127.0.0.1", audio=True)
    assert [m["type"] for m in rtp["media"]] == ["video", "audio"]
    assert rtp["media"][1]["codec"] == "opus" and rtp["media"][1]["pt"] == api.OPUS_PT
    assert api.create_rtsp("cam", ORIGIN, ORIGIN + "/cam", audio=True)["audio"] is True
    answer["plugindata"]["data"]["stream"]["ports"].append(
        {"type": "audio", "mid": "a", "port": 40004})
    assert api.created(answer, "cam") == api.Mountpoint(42, "cam", 40002, 40004)
    req = api.request("message", api_secret="s", token="t", body={})
    assert req["apisecret"] == "s" and req["token"] == "t" and req["transaction"]


def test_config_edge_table_and_array() -> None:
    mounts = {"cam": {"file": "/x.mp4"}, "b": {"file": "/y.mp4"}}
    c = parse_config({"mounts": mounts, "edge": {"janus": {
        "url": "http://127.0.0.1:8088/janus/", "feed": "rtp", "mounts": ["cam"],
        "api_secret": "s"}}})
    assert c.edges == (JanusEdge(url="http://127.0.0.1:8088/janus", feed="rtp",
                                 mounts=("cam",), api_secret="s"),)
    c = parse_config({"mounts": mounts, "edge": {"janus": [
        {"url": "http://a:8088/janus"}, {"url": "http://b:8088/janus",
                                         "public_url": "https://edge-b.example/janus"}]}})
    assert [e.browser_url for e in c.edges] == ["http://a:8088/janus",
                                                "https://edge-b.example/janus"]


@pytest.mark.parametrize(("edge", "message"), [
    ({"janus": {}}, "edge.janus.url: missing"),
    ({"janus": {"url": "janus.example:8088"}}, "edge.janus.url: expected a Janus API URL"),
    ({"janus": {"url": "http://x", "feed": "udp"}}, "edge.janus.feed: expected one of"),
    ({"janus": {"url": "http://x", "mounts": ["nope"]}}, "no mount named 'nope'"),
    ({"janus": {"url": "http://x", "colour": 1}}, "edge.janus.colour: unknown key"),
    ({"janus": [{"url": "http://x"}, {"url": "http://x"}]}, "the same url twice"),
    ({"wowza": {}}, "edge.wowza: unknown key"),
])
def test_config_edge_errors_name_the_key(edge: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_config({"mounts": {"cam": {"file": "/x.mp4"}}, "edge": edge}, "f.toml")


def test_cli_adds_edges_and_feed() -> None:
    c = merge_cli(parse_config({}), janus=["http://127.0.0.1:8088/janus"], janus_feed="rtp")
    assert c.edges == (JanusEdge(url="http://127.0.0.1:8088/janus", feed="rtp"),)
    assert merge_cli(parse_config({}), janus=["http://x/janus"]).edges[0].feed == "auto"
    with pytest.raises(ConfigError, match="--janus"):
        merge_cli(parse_config({}), janus=["janus.example"])
