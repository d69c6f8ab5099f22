"""framecast.config: TOML → frozen dataclasses, errors naming the file and the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from framecast.config import (
    Config,
    ConfigError,
    Mount,
    Settings,
    User,
    load_config,
    merge_cli,
    mount_name_for,
    parse_config,
)

FULL = """
[server]
bind = "0.0.0.0"
rtsp_port = 9554
http_port = 9080
auth = "basic"
tls_cert = "cert.pem"
tls_key = "/etc/key.pem"
webrtc_idle_stop = 0.5

[[server.users]]
name = "alice"
password = "s3cret"

[mounts.cam]
file = "clips/cam.mp4"
loop = false
sidecar = "cam.jsonl"
metadata_format = "json"
stamps = false

[mounts.relay]
source = "rtsp://10.0.0.2/stream"
codec = "h265"
"""


def test_full_config(tmp_path: Path) -> None:
    f = tmp_path / "framecast.toml"
    f.write_text(FULL)
    cfg = load_config(f)
    s = cfg.settings
    assert (s.bind, s.rtsp_port, s.http_port, s.auth) == ("0.0.0.0", 9554, 9080, "basic")
    assert s.users == (User("alice", "s3cret"),)
    assert s.webrtc_idle_stop == 0.5
    assert s.tls and s.tls_cert == str(tmp_path / "cert.pem") and s.tls_key == "/etc/key.pem"
    cam, relay = cfg.mounts
    assert cam == Mount(name="cam", file=str(tmp_path / "clips/cam.mp4"), loop=False,
                        sidecar=str(tmp_path / "cam.jsonl"), metadata_format="json",
                        stamps=False)
    assert relay.is_relay and relay.source == "rtsp://10.0.0.2/stream" and relay.codec == "h265"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cam.loop = True  # type: ignore[misc]


def test_defaults() -> None:
    cfg = parse_config({})
    assert cfg.settings == Settings()
    assert cfg.settings.bind == "127.0.0.1" and cfg.settings.rtsp_port == 8554
    assert cfg.settings.http_port == 8080 and not cfg.settings.tls
    assert cfg.settings.webrtc_idle_stop == 5.0
    assert cfg.mounts == ()
    m = parse_config({"mounts": {"a": {"file": "/x.mp4"}}}).mounts[0]
    assert (m.loop, m.stamps, m.metadata_format, m.sidecar) == (True, True, "msgpack", None)


BAD = [
    ({"mounts": {"cam": {"file": "x.mp4", "loop": "yes"}}}, "mounts.cam.loop: expected a boolean"),
    ({"mounts": {"cam": {"file": "x.mp4", "stamps": 1}}}, "mounts.cam.stamps: expected a boolean"),
    ({"mounts": {"cam": {"file": "x.mp4", "lopo": True}}}, "mounts.cam.lopo: unknown key"),
    ({"mounts": {"cam": {"loop": True}}}, "mounts.cam: set exactly one of file or source"),
    ({"mounts": {"cam": {"file": "a", "source": "rtsp://x"}}},
     "mounts.cam: set exactly one of file or source"),
    ({"mounts": {"cam": {"source": "http://x"}}}, "mounts.cam.source: expected an rtsp://"),
    ({"mounts": {"cam": {"file": 3}}}, "mounts.cam.file: expected a non-empty string"),
    ({"mounts": {"cam": {"file": "x", "metadata_format": "xml"}}},
     "mounts.cam.metadata_format: expected one of 'msgpack', 'json'"),
    ({"mounts": {"c am": {"file": "x"}}}, "mounts.c am: mount names use"),
    ({"mounts": {"cam": "x.mp4"}}, "mounts.cam: expected a table"),
    ({"server": {"rtsp_port": "8554"}}, "server.rtsp_port: expected a port number"),
    ({"server": {"rtsp_port": 70000}}, "server.rtsp_port: expected a port number"),
    ({"server": {"http_port": True}}, "server.http_port: expected a port number"),
    ({"server": {"bind": 127}}, "server.bind: expected a non-empty string"),
    ({"server": {"auth": "ntlm"}}, "server.auth: expected one of 'basic', 'digest'"),
    ({"server": {"tls_cert": "c.pem"}}, "server.tls_key: tls_cert and tls_key go together"),
    ({"server": {"users": {"name": "a"}}}, "server.users: expected an array of tables"),
    ({"server": {"users": [{"name": "a"}]}}, "server.users[0].password: missing"),
    ({"server": {"users": [{"name": "a", "password": "b", "role": "x"}]}},
     "server.users[0].role: unknown key"),
    ({"server": {"port": 1}}, "server.port: unknown key"),
    ({"server": {"webrtc_idle_stop": "5"}}, "server.webrtc_idle_stop: expected a number"),
    ({"server": {"webrtc_idle_stop": True}}, "server.webrtc_idle_stop: expected a number"),
    ({"mount": {}}, "mount: unknown key"),
    # WebRTC / HTTP / signalling limits
    ({"server": {"webrtc_pending_timeout": 0}},
     "server.webrtc_pending_timeout: expected a number of seconds > 0"),
    ({"server": {"webrtc_pending_timeout": "15"}},
     "server.webrtc_pending_timeout: expected a number of seconds"),
    ({"server": {"webrtc_max_pending": 0}}, "server.webrtc_max_pending: expected an integer >= 1"),
    ({"server": {"webrtc_max_pending_per_peer": 2.5}},
     "server.webrtc_max_pending_per_peer: expected an integer >= 1"),
    ({"server": {"webrtc_max_viewers": True}},
     "server.webrtc_max_viewers: expected an integer >= 1"),
    ({"server": {"signalling_max_peers": -1}},
     "server.signalling_max_peers: expected an integer >= 1"),
    ({"server": {"signalling_max_message": 10}},
     "server.signalling_max_message: expected an integer >= 1024"),
    ({"server": {"signalling_send_queue": "1M"}},
     "server.signalling_send_queue: expected an integer >= 1024"),
    ({"server": {"http_max_body": 0}}, "server.http_max_body: expected an integer >= 1024"),
    # relay keys: seconds > 0, and only where there is a camera
    ({"mounts": {"cam": {"file": "x", "relay_grace": 5}}},
     "mounts.cam.relay_grace: only for relay mounts"),
    ({"mounts": {"cam": {"source": "rtsp://x", "relay_grace": "5"}}},
     "mounts.cam.relay_grace: expected a number of seconds"),
    ({"mounts": {"cam": {"source": "rtsp://x", "relay_retry_max": 0}}},
     "mounts.cam.relay_retry_max: expected seconds > 0"),
    ({"mounts": {"cam": {"source": "rtsp://x", "relay_timeout": -1}}},
     "mounts.cam.relay_timeout: expected seconds > 0"),
    ({"mounts": {"cam": {"source": "rtsp://x", "relay_grace": True}}},
     "mounts.cam.relay_grace: expected a number of seconds"),
    ({"mounts": {"cam": {"source": "rtsp://x", "relay_graec": 1}}},
     "mounts.cam.relay_graec: unknown key"),
    # RTSP robustness
    ({"server": {"rtsp_max_lag": -1}}, "server.rtsp_max_lag: expected a number of seconds >= 0"),
    ({"server": {"rtsp_max_lag": "5"}}, "server.rtsp_max_lag: expected a number of seconds"),
    ({"server": {"rtsp_first_request_timeout": float("inf")}},
     "server.rtsp_first_request_timeout: expected a number of seconds >= 0"),
    ({"server": {"auth_failure_window": True}}, "server.auth_failure_window: expected a number"),
    ({"server": {"rtsp_idle_timeout": -3}}, "server.rtsp_idle_timeout: expected a number"),
    ({"server": {"rtsp_backlog": -5}}, "server.rtsp_backlog: expected an integer >= 0"),
    ({"server": {"rtsp_max_clients": 1.5}}, "server.rtsp_max_clients: expected an integer >= 0"),
    ({"server": {"rtsp_max_clients_per_mount": "9"}},
     "server.rtsp_max_clients_per_mount: expected an integer >= 0"),
    ({"server": {"rtsp_max_request_bytes": False}},
     "server.rtsp_max_request_bytes: expected an integer >= 0"),
    ({"server": {"auth_max_failures": -1}}, "server.auth_max_failures: expected an integer >= 0"),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m for _d, m in BAD])
def test_bad_keys_named(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(data, "framecast.toml")
    assert str(exc.value).startswith(f"framecast.toml: {message}"), str(exc.value)
    assert "\n" not in str(exc.value)


def test_limits() -> None:
    limits = {"webrtc_pending_timeout": 2, "webrtc_max_pending": 3,
              "webrtc_max_pending_per_peer": 4, "webrtc_max_viewers": 5,
              "signalling_max_peers": 6, "signalling_max_message": 4096,
              "signalling_send_queue": 8192, "http_max_body": 2048}
    s = parse_config({"server": limits}).settings
    assert {k: getattr(s, k) for k in limits} == limits
    assert isinstance(s.webrtc_pending_timeout, float)
    d = Settings()
    assert (d.webrtc_pending_timeout, d.webrtc_max_pending, d.webrtc_max_pending_per_peer,
            d.webrtc_max_viewers, d.signalling_max_peers) == (15.0, 64, 32, 100, 200)
    assert (d.signalling_max_message, d.signalling_send_queue, d.http_max_body) == (
        1 << 20, 1 << 20, 64 << 10)
    # the HTTP side takes every limit it knows from Settings, under the same names
    from framecast.http.server import HttpLimits

    assert {f.name for f in dataclasses.fields(HttpLimits)} <= set(dataclasses.asdict(d))
    assert all(getattr(HttpLimits(), f.name) == getattr(d, f.name)
               for f in dataclasses.fields(HttpLimits))


def test_rtsp_robustness_keys() -> None:
    d = Settings()
    assert (d.rtsp_max_lag, d.rtsp_backlog, d.rtsp_max_clients, d.rtsp_max_clients_per_mount,
            d.rtsp_first_request_timeout, d.rtsp_max_request_bytes, d.auth_max_failures,
            d.auth_failure_window, d.rtsp_idle_timeout) == (5.0, 128, 1000, 500, 10.0, 65536, 10,
                                                             60.0, 60.0)
    s = parse_config({"server": {
        "rtsp_max_lag": 2, "rtsp_backlog": 512, "rtsp_max_clients": 0,
        "rtsp_max_clients_per_mount": 3, "rtsp_first_request_timeout": 0.5,
        "rtsp_max_request_bytes": 1024, "auth_max_failures": 3, "auth_failure_window": 30,
        "rtsp_idle_timeout": 0,
    }}).settings
    assert s.rtsp_idle_timeout == 0.0
    assert (s.rtsp_max_lag, s.rtsp_backlog, s.rtsp_max_clients, s.rtsp_max_clients_per_mount,
            s.rtsp_first_request_timeout, s.rtsp_max_request_bytes, s.auth_max_failures,
            s.auth_failure_window) == (2.0, 512, 0, 3, 0.5, 1024, 3, 30.0)
    assert isinstance(s.rtsp_max_lag, float)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^nope.toml: no such file$"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match=r"^bad.toml: invalid TOML"):
        load_config(bad)
    typo = tmp_path / "framecast.toml"
    typo.write_text('[mounts.cam]\nfile = "x.mp4"\nloop = "yes"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(typo)
    assert str(exc.value) == "framecast.toml: mounts.cam.loop: expected a boolean"


def test_cli_merges_over_config() -> None:
    cfg = parse_config({"server": {"rtsp_port": 9000, "bind": "0.0.0.0"},
                        "mounts": {"cam": {"file": "/c.mp4"}}})
    out = merge_cli(cfg, files=["/v/a b.mp4", "other.mkv"], rtsp_port=7000, no_http=True,
                    sidecars=["cam=/m.jsonl"])
    assert out.settings.rtsp_port == 7000 and out.settings.bind == "0.0.0.0"
    assert not out.settings.http
    assert [m.name for m in out.mounts] == ["cam", "a_b", "other"]
    assert out.mounts[0].sidecar == "/m.jsonl"
    assert merge_cli(Config()).settings == Settings()


@pytest.mark.parametrize(("kw", "message"), [
    ({"rtsp_port": 99999}, "--rtsp-port: expected a port number"),
    ({"sidecars": ["nomount.jsonl"]}, "expected MOUNT=FILE.jsonl"),
    ({"sidecars": ["cam=m.jsonl"]}, "no mount named 'cam'"),
])
def test_cli_errors(kw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        merge_cli(Config(), **kw)


def test_relay_keys() -> None:
    m = parse_config({"mounts": {"cam": {"source": "rtsp://x", "relay_grace": 2,
                                         "relay_retry_max": 0.5, "relay_timeout": 1.5}}})
    (cam,) = m.mounts
    assert (cam.relay_grace, cam.relay_retry_max, cam.relay_timeout) == (2.0, 0.5, 1.5)
    d = Mount(name="d", source="rtsp://x")
    assert (d.relay_grace, d.relay_retry_max, d.relay_timeout) == (20.0, 10.0, 3.0)


def test_same_stem_gets_a_distinct_name(caplog: pytest.LogCaptureFixture) -> None:
    cfg = parse_config({"mounts": {"clip": {"source": "rtsp://cam/x"}}})
    out = merge_cli(cfg, files=["/a/clip.mp4", "/b/clip.mkv", "/c/clip-2.ts", "/a/clip.mp4"],
                    sidecars=["clip-3=/m.jsonl"])
    assert [(m.name, m.file) for m in out.mounts] == [
        ("clip", None), ("clip-2", "/a/clip.mp4"), ("clip-3", "/b/clip.mkv"),
        ("clip-2-2", "/c/clip-2.ts")]
    assert out.mounts[2].sidecar == "/m.jsonl"
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["/a/clip.mp4: mount /clip is taken (by rtsp://cam/x): serving it as /clip-2",
                     "/b/clip.mkv: mount /clip is taken (by rtsp://cam/x): serving it as /clip-3",
                     "/c/clip-2.ts: mount /clip-2 is taken (by /a/clip.mp4): serving it as "
                     "/clip-2-2",
                     "/a/clip.mp4: already served at /clip-2; ignored"]


def test_mount_names_from_files() -> None:
    assert mount_name_for("/x/clip.mp4") == "clip"
    assert mount_name_for("my clip (1).mkv") == "my_clip__1_"
    assert mount_name_for(".hidden.ts") == "hidden"
