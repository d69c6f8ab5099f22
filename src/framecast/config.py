"""``framecast serve`` settings: TOML → frozen dataclasses (pure: no GStreamer).

Every unknown or wrong-typed key is a :class:`ConfigError` whose message names the file and the
key, e.g. ``framecast.toml: mounts.cam.loop: expected a boolean``.

    [server]
    bind = "127.0.0.1"
    rtsp_port = 8554
    http_port = 8080
    auth = "digest"                 # basic | digest (when users are set)
    tls_cert = "cert.pem"           # both set: rtsps://
    tls_key = "key.pem"
    # -- WebRTC / HTTP / signalling limits (see Settings) --
    webrtc_pending_timeout = 15     # s a viewer may take to connect ICE, then it is freed
    webrtc_max_pending = 64         # viewers waiting for ICE, per mount
    webrtc_max_pending_per_peer = 32  # ... per client address
    webrtc_max_viewers = 100        # per mount
    signalling_max_peers = 200      # open signalling WebSockets
    signalling_max_message = 1048576  # bytes; a larger frame closes that socket
    signalling_send_queue = 1048576 # bytes queued for a peer; beyond it the peer is dropped
    http_max_body = 65536           # bytes of an HTTP request body (a WHEP offer)
    rtsp_max_lag = 5                # s unsent data may wait before a slow client is dropped
    rtsp_backlog = 128              # listen backlog
    rtsp_max_clients = 1000         # connections in total; rtsp_max_clients_per_mount = 500
    rtsp_first_request_timeout = 10 # s a new connection may stay silent
    rtsp_idle_timeout = 60          # s a connection without a session may stay silent
    rtsp_max_request_bytes = 65536  # request body limit
    auth_max_failures = 10          # failed logins per address within auth_failure_window s

    [[server.users]]
    name = "alice"
    password = "secret"

    [mounts.cam]
    file = "clip.mp4"               # or: source = "rtsp://camera/stream" (relay, no decode)
    # relay mounts only: relay_retry_max = 10 (s between attempts, at most),
    # relay_grace = 20 (s clients wait for a lost camera), relay_timeout = 3 (s without frames)
    loop = true
    sidecar = "clip.jsonl"
    metadata_format = "msgpack"     # or "json"
    stamps = true
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framecast.errors import ConfigError as ConfigError  # re-exported

if TYPE_CHECKING:  # annotations only: config loads neither msgpack nor GStreamer
    from framecast.codecs import Codec
    from framecast.gst.inject import Provider
    from framecast.metadata import Format as MetadataFormat

AUTH_METHODS = ("basic", "digest")
METADATA_FORMATS: tuple[MetadataFormat, ...] = ("msgpack", "json")
RELAY_CODECS: tuple[Codec, ...] = ("h264", "h265")
MOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

log = logging.getLogger("framecast.config")


@dataclass(frozen=True)
class User:
    name: str
    password: str


@dataclass(frozen=True)
class Mount:
    name: str
    file: str | None = None          # a file looped (or played once) without decoding
    source: str | None = None        # rtsp:// URL relayed without decoding
    loop: bool = True
    sidecar: str | None = None       # JSON Lines metadata, used by the metadata layer
    metadata_format: MetadataFormat = "msgpack"
    stamps: bool = True
    codec: Codec = "h264"            # relay mounts only: the camera's codec
    # -- relay mounts only: what happens when the camera goes away --------------------------
    relay_retry_max: float = 10.0    # s: longest wait between reconnection attempts (backoff)
    relay_grace: float = 20.0        # s: clients stay connected this long while it is down
    relay_timeout: float = 3.0       # s: no frame (or no answer) this long = the camera is down
    # -- set from Python, not TOML: ``fn(FrameInfo) -> dict | None`` per served frame; its
    # fields join that frame's metadata (each server's mount has its own, no global registry)
    providers: tuple[Provider, ...] = field(default=(), compare=False, repr=False)

    @property
    def is_relay(self) -> bool:
        return self.source is not None

    def with_provider(self, fn: Provider) -> Mount:
        """This mount with ``fn`` added to its metadata providers."""
        return replace(self, providers=(*self.providers, fn))


@dataclass(frozen=True)
class Settings:
    bind: str = "127.0.0.1"
    rtsp_port: int = 8554
    http_port: int = 8080
    http: bool = True
    users: tuple[User, ...] = ()
    auth: str = "digest"
    tls_cert: str | None = None
    tls_key: str | None = None
    webrtc_idle_stop: float = 5.0  # s a WebRTC producer runs after its last viewer; <0: always
    # -- WebRTC / HTTP / signalling limits (framecast.http.server.HttpLimits) -------------------
    webrtc_pending_timeout: float = 15.0  # s a viewer may take to connect ICE, then freed
    webrtc_max_pending: int = 64  # viewers waiting for ICE per mount (WHEP 503 beyond)
    webrtc_max_pending_per_peer: int = 32  # viewers waiting for ICE per client address
    webrtc_max_viewers: int = 100  # viewers per mount
    signalling_max_peers: int = 200  # open signalling WebSockets (HTTP 503 beyond)
    signalling_max_message: int = 1024 * 1024  # bytes; a larger frame closes the socket (1009)
    signalling_send_queue: int = 1024 * 1024  # bytes queued for a peer before it is dropped
    http_max_body: int = 64 * 1024  # bytes of a request body (a WHEP offer; 413 beyond)
    # -- RTSP robustness (slow, idle and hostile clients); 0 turns a limit off -------------
    rtsp_max_lag: float = 5.0           # s a client's socket may hold unsent data before it
                                        # is dropped (a stalled or too slow reader)
    rtsp_backlog: int = 128             # listen backlog (gst-rtsp-server's default is 5)
    rtsp_max_clients: int = 1000        # RTSP connections in total (more: closed at once)
    rtsp_max_clients_per_mount: int = 500  # clients of one mount (more: 503)
    rtsp_first_request_timeout: float = 10.0  # s a new connection may stay silent
    rtsp_idle_timeout: float = 60.0     # s a connection without a session may stay silent
    rtsp_max_request_bytes: int = 65536  # largest request body (Content-Length) accepted
    auth_max_failures: int = 10         # failed logins from one address within the window …
    auth_failure_window: float = 60.0   # … (s) refuse it until the window has passed
    # ----------------------------------------------------------------------------------------

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)


DEFAULTS = Settings()
"""Every server default in one place (ports 8554/8080, WebRTC idle stop 5 s, limits): other
modules read them from here instead of repeating the numbers."""


@dataclass(frozen=True)
class Config:
    settings: Settings = field(default_factory=Settings)
    mounts: tuple[Mount, ...] = ()
    path: str | None = None


# -- validation helpers -----------------------------------------------------------------

class _Ctx:
    def __init__(self, fname: str) -> None:
        self.fname = fname

    def err(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.fname}: {key}: {msg}")

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.err(key, "expected a table")
        return value

    def check_keys(self, table: Mapping[str, Any], allowed: Sequence[str], prefix: str) -> None:
        for k in table:
            if k not in allowed:
                raise self.err(f"{prefix}{k}", "unknown key (allowed: " + ", ".join(allowed) + ")")

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.err(key, "expected a non-empty string")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.err(key, "expected a boolean")
        return value

    def port(self, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise self.err(key, "expected a port number 0-65535")
        return value

    def count(self, value: Any, key: str, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.err(key, f"expected an integer >= {minimum}")
        return value

    def positive_seconds(self, value: Any, key: str) -> float:
        v = self.seconds(value, key)
        if not 0 < v < float("inf"):
            raise self.err(key, "expected a number of seconds > 0")
        return v

    def seconds(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise self.err(key, "expected a number of seconds")
        return float(value)

    def positive(self, value: Any, key: str) -> float:
        secs = self.seconds(value, key)
        if not 0 < secs <= 86400:
            raise self.err(key, "expected seconds > 0 (at most 86400)")
        return secs

    def duration(self, value: Any, key: str) -> float:
        v = self.seconds(value, key)
        if v < 0 or v == float("inf"):
            raise self.err(key, "expected a number of seconds >= 0")
        return v

    def choice(self, value: Any, key: str, choices: Sequence[str]) -> str:
        if value not in choices:
            raise self.err(key, "expected one of " + ", ".join(repr(c) for c in choices))
        return str(value)

    def path(self, value: Any, key: str, base: Path) -> str:
        p = Path(self.string(value, key))
        return str(p if p.is_absolute() else base / p)


# WebRTC / HTTP / signalling limits: integer keys with their minimum, then the seconds key
LIMIT_COUNTS = {"webrtc_max_pending": 1, "webrtc_max_pending_per_peer": 1,
                "webrtc_max_viewers": 1, "signalling_max_peers": 1,
                "signalling_max_message": 1024, "signalling_send_queue": 1024,
                "http_max_body": 1024}
LIMIT_SECONDS = ("webrtc_pending_timeout",)
# RTSP robustness keys (see Settings); all numbers >= 0, 0 turns the limit off
RTSP_LIMIT_SECONDS = ("rtsp_max_lag", "rtsp_first_request_timeout", "rtsp_idle_timeout",
                      "auth_failure_window")
RTSP_LIMIT_COUNTS = ("rtsp_backlog", "rtsp_max_clients", "rtsp_max_clients_per_mount",
                     "rtsp_max_request_bytes", "auth_max_failures")
SERVER_KEYS = ("bind", "rtsp_port", "http_port", "http", "users", "auth", "tls_cert", "tls_key",
               "webrtc_idle_stop", *LIMIT_SECONDS, *LIMIT_COUNTS, *RTSP_LIMIT_SECONDS,
               *RTSP_LIMIT_COUNTS)
USER_KEYS = ("name", "password")
MOUNT_KEYS = ("file", "source", "loop", "sidecar", "metadata_format", "stamps", "codec",
              # relay mounts only (one block: reconnection and outage handling)
              "relay_retry_max", "relay_grace", "relay_timeout")
RELAY_KEYS = ("relay_retry_max", "relay_grace", "relay_timeout")


def parse_config(data: Mapping[str, Any], fname: str = "<config>",
                 base: Path | None = None) -> Config:
    """Validate a decoded TOML document; relative paths resolve against ``base``."""
    ctx = _Ctx(fname)
    base = base or Path.cwd()
    ctx.check_keys(data, ("server", "mounts"), "")
    server = ctx.table(data.get("server", {}), "server")
    ctx.check_keys(server, SERVER_KEYS, "server.")
    kw: dict[str, Any] = {}
    if "bind" in server:
        kw["bind"] = ctx.string(server["bind"], "server.bind")
    for k in ("rtsp_port", "http_port"):
        if k in server:
            kw[k] = ctx.port(server[k], f"server.{k}")
    if "http" in server:
        kw["http"] = ctx.boolean(server["http"], "server.http")
    if "webrtc_idle_stop" in server:
        kw["webrtc_idle_stop"] = ctx.seconds(server["webrtc_idle_stop"], "server.webrtc_idle_stop")
    for k, minimum in LIMIT_COUNTS.items():
        if k in server:
            kw[k] = ctx.count(server[k], f"server.{k}", minimum)
    for k in LIMIT_SECONDS:
        if k in server:
            kw[k] = ctx.positive_seconds(server[k], f"server.{k}")
    for k in RTSP_LIMIT_SECONDS:
        if k in server:
            kw[k] = ctx.duration(server[k], f"server.{k}")
    for k in RTSP_LIMIT_COUNTS:
        if k in server:
            kw[k] = ctx.count(server[k], f"server.{k}", 0)
    if "auth" in server:
        kw["auth"] = ctx.choice(server["auth"], "server.auth", AUTH_METHODS)
    for k in ("tls_cert", "tls_key"):
        if k in server:
            kw[k] = ctx.path(server[k], f"server.{k}", base)
    if ("tls_cert" in kw) != ("tls_key" in kw):
        raise ctx.err("server.tls_cert" if "tls_key" in kw else "server.tls_key",
                      "tls_cert and tls_key go together")
    if "users" in server:
        users = server["users"]
        if not isinstance(users, list):
            raise ctx.err("server.users", "expected an array of tables ([[server.users]])")
        out = []
        for i, u in enumerate(users):
            key = f"server.users[{i}]"
            u = ctx.table(u, key)
            ctx.check_keys(u, USER_KEYS, key + ".")
            for req in USER_KEYS:
                if req not in u:
                    raise ctx.err(f"{key}.{req}", "missing")
            out.append(User(ctx.string(u["name"], key + ".name"),
                            ctx.string(u["password"], key + ".password")))
        kw["users"] = tuple(out)
    mounts = []
    for name, m in ctx.table(data.get("mounts", {}), "mounts").items():
        mounts.append(_parse_mount(ctx, name, m, base))
    return Config(Settings(**kw), tuple(mounts), fname)


def _parse_mount(ctx: _Ctx, name: str, m: Any, base: Path) -> Mount:
    key = f"mounts.{name}"
    if not MOUNT_NAME.match(name):
        raise ctx.err(key, "mount names use letters, digits, '.', '_' and '-'")
    m = ctx.table(m, key)
    ctx.check_keys(m, MOUNT_KEYS, key + ".")
    if ("file" in m) == ("source" in m):
        raise ctx.err(key, "set exactly one of file or source")
    kw: dict[str, Any] = {"name": name}
    if "file" in m:
        kw["file"] = ctx.path(m["file"], key + ".file", base)
    if "source" in m:
        src = ctx.string(m["source"], key + ".source")
        if not src.startswith(("rtsp://", "rtsps://")):
            raise ctx.err(key + ".source", "expected an rtsp:// or rtsps:// URL")
        kw["source"] = src
    if "loop" in m:
        kw["loop"] = ctx.boolean(m["loop"], key + ".loop")
    if "sidecar" in m:
        kw["sidecar"] = ctx.path(m["sidecar"], key + ".sidecar", base)
    if "metadata_format" in m:
        kw["metadata_format"] = ctx.choice(m["metadata_format"], key + ".metadata_format",
                                           METADATA_FORMATS)
    if "stamps" in m:
        kw["stamps"] = ctx.boolean(m["stamps"], key + ".stamps")
    if "codec" in m:
        kw["codec"] = ctx.choice(m["codec"], key + ".codec", RELAY_CODECS)
    for k in RELAY_KEYS:
        if k in m:
            if "source" not in m:
                raise ctx.err(f"{key}.{k}", "only for relay mounts (source = ...)")
            kw[k] = ctx.positive(m[k], f"{key}.{k}")
    return Mount(**kw)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p.name}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p.name}: cannot read ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p.name}: invalid TOML ({exc})") from None
    return parse_config(data, p.name, p.parent.resolve())


def mount_name_for(path: str | Path) -> str:
    """Mount name for a file: its stem, with characters URLs dislike replaced."""
    stem = Path(path).stem
    name = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip("._-")
    return name or "clip"


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def merge_cli(config: Config, *, files: Sequence[str] = (), bind: str | None = None,
              rtsp_port: int | None = None, http_port: int | None = None,
              no_http: bool = False, sidecars: Sequence[str] = ()) -> Config:
    """Command-line arguments over the config: flags win, files add mounts by stem (a stem
    already taken gets the first free ``-2``, ``-3`` …; a file given twice is served once)."""
    s = config.settings
    if bind is not None:
        s = replace(s, bind=bind)
    if rtsp_port is not None:
        s = replace(s, rtsp_port=_Ctx("command line").port(rtsp_port, "--rtsp-port"))
    if http_port is not None:
        s = replace(s, http_port=_Ctx("command line").port(http_port, "--http-port"))
    if no_http:
        s = replace(s, http=False)
    mounts = {m.name: m for m in config.mounts}
    for f in files:
        name = mount_name_for(f)
        same = [m for m in mounts.values() if m.file is not None and _same_file(m.file, f)]
        if same:  # the same file twice: serving it at two names helps nobody
            log.warning("%s: already served at /%s; ignored", f, same[0].name)
            continue
        if name in mounts:
            # two files with one stem (a/clip.mp4 b/clip.mkv): the later one gets the first
            # free "-N" name, in command-line order, so both are served and the names are stable
            taken = name
            n = 2
            while f"{taken}-{n}" in mounts:
                n += 1
            name = f"{taken}-{n}"
            log.warning("%s: mount /%s is taken (by %s): serving it as /%s", f, taken,
                        mounts[taken].file or mounts[taken].source, name)
        mounts[name] = Mount(name=name, file=str(Path(f)))
    for item in sidecars:
        mname, sep, path = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"command line: --sidecar {item}: expected MOUNT=FILE.jsonl")
        if mname not in mounts:
            raise ConfigError(f"command line: --sidecar {item}: no mount named {mname!r}")
        mounts[mname] = replace(mounts[mname], sidecar=path)
    return replace(config, settings=s, mounts=tuple(mounts.values()))
