"""Janus JSON API as framecast uses it (pure: builds requests, reads answers; no I/O).

The streaming plugin holds one mountpoint per published mount. Its description names the mount
and the origin (``framecast /cam from rtsp://127.0.0.1:8554``): that is how a restarted
framecast finds and removes what it left behind on an edge, and never touches anyone else's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STREAMING = "janus.plugin.streaming"
DESCRIPTION_PREFIX = "framecast /"
# Janus session timeout is 60 s by default: any request on the session keeps it alive
ERR_NO_SESSION = 458
ERR_NO_HANDLE = 459
ERR_NO_MOUNTPOINT = 455
# The H.264 Chromium accepts (see WEBRTC-NOTES): what an rtp-fed mountpoint announces
RTP_PT = 96
OPUS_PT = 111  # the audio an rtp-fed mountpoint takes: the producer's Opus (as browsers get it)
LIVE_AGE_MS = 3000  # a mountpoint whose last video packet is older is not live


class JanusError(Exception):
    """Janus answered with an error (``code`` from Janus or the streaming plugin)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"janus error {code}: {reason}")
        self.code = code
        self.reason = reason

    @property
    def session_gone(self) -> bool:
        """The session (or handle) is unknown: Janus restarted or timed us out."""
        return self.code in (ERR_NO_SESSION, ERR_NO_HANDLE)


def transaction() -> str:
    return os.urandom(6).hex()


def request(kind: str, *, api_secret: str | None = None, token: str | None = None,
            **fields: Any) -> dict[str, Any]:
    """A top-level Janus request (``create``, ``attach``, ``message``, ``destroy`` …)."""
    body: dict[str, Any] = {"janus": kind, "transaction": transaction(), **fields}
    if api_secret:
        body["apisecret"] = api_secret
    if token:
        body["token"] = token
    return body


def check(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    """``answer`` if it is a success; :class:`JanusError` otherwise (Janus or plugin error)."""
    if not isinstance(answer, Mapping):
        raise JanusError(0, "not a JSON object")
    if answer.get("janus") == "error":
        err = answer.get("error") or {}
        raise JanusError(int(err.get("code", 0)), str(err.get("reason", "unknown")))
    data = (answer.get("plugindata") or {}).get("data") or {}
    if "error_code" in data:
        raise JanusError(int(data["error_code"]), str(data.get("error", "unknown")))
    if answer.get("janus") not in ("success", "ack", "server_info"):
        raise JanusError(0, f"unexpected answer {answer.get('janus')!r}")
    return answer


def new_id(answer: Mapping[str, Any]) -> int:
    """The id in a ``create``/``attach`` success."""
    return int(check(answer)["data"]["id"])


def plugin_data(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    return (check(answer).get("plugindata") or {}).get("data") or {}


def description(mount: str, origin: str) -> str:
    return f"{DESCRIPTION_PREFIX}{mount} from {origin}"


def ours(desc: str, origin: str) -> str | None:
    """The mount a mountpoint description names, if this origin made it; else None."""
    suffix = f" from {origin}"
    if desc.startswith(DESCRIPTION_PREFIX) and desc.endswith(suffix):
        return desc[len(DESCRIPTION_PREFIX):-len(suffix)] or None
    return None


@dataclass(frozen=True)
class Mountpoint:
    id: int
    mount: str
    port: int | None = None  # rtp feed: where Janus listens for our RTP
    audio_port: int | None = None  # ... and for our Opus (a mount with audio)


def listed(answer: Mapping[str, Any], origin: str) -> list[Mountpoint]:
    """Our mountpoints in a streaming ``list`` answer."""
    out = []
    for mp in plugin_data(answer).get("list") or []:
        mount = ours(str(mp.get("description", "")), origin)
        if mount is not None:
            out.append(Mountpoint(int(mp["id"]), mount))
    return out


def create_rtsp(mount: str, origin: str, rtsp_url: str, admin_key: str | None = None,
                audio: bool = False) -> dict[str, Any]:
    """Janus pulls the mount over RTSP (``audio``: its Opus too; other audio browsers could
    not play, so such mounts are fed as RTP instead)."""
    body: dict[str, Any] = {
        "request": "create", "type": "rtsp", "description": description(mount, origin),
        "url": rtsp_url, "video": True, "audio": audio, "data": False,
        "permanent": False,
        # failcheck: Janus connects now (without it, it first waits rtsp_reconnect_delay: the
        # mountpoint had no video for ~5 s); a failure is retried at the next poll
        "rtsp_failcheck": True, "rtsp_reconnect_delay": 5,
    }
    if admin_key:
        body["admin_key"] = admin_key
    return body


def create_rtp(mount: str, origin: str, iface: str, profile_level_id: str = "42e01f",
               admin_key: str | None = None, audio: bool = False) -> dict[str, Any]:
    """Janus listens (ports chosen by Janus) for our RTP H.264, and Opus with ``audio``."""
    media: list[dict[str, Any]] = [
        {"type": "video", "mid": "v", "port": 0, "pt": RTP_PT, "codec": "h264", "iface": iface,
         "fmtp": f"profile-level-id={profile_level_id};packetization-mode=1"}]
    if audio:
        media.append({"type": "audio", "mid": "a", "port": 0, "pt": OPUS_PT, "codec": "opus",
                      "iface": iface})
    body: dict[str, Any] = {
        "request": "create", "type": "rtp", "description": description(mount, origin),
        "permanent": False, "media": media,
    }
    if admin_key:
        body["admin_key"] = admin_key
    return body


def created(answer: Mapping[str, Any], mount: str) -> Mountpoint:
    """The mountpoint a ``create`` made (and, for rtp, the ports Janus listens on)."""
    stream = plugin_data(answer).get("stream") or {}
    ports: dict[str, int] = {}
    for p in stream.get("ports") or []:
        if p.get("type") in ("video", "audio") and p.get("type") not in ports:
            ports[p["type"]] = int(p["port"])
    return Mountpoint(int(stream["id"]), mount, ports.get("video"), ports.get("audio"))


def info(mountpoint_id: int) -> dict[str, Any]:
    return {"request": "info", "id": mountpoint_id}


def live(answer: Mapping[str, Any], max_age_ms: int = LIVE_AGE_MS) -> bool:
    """Whether an ``info`` answer shows video reaching the mountpoint (a viewer joining
    before that is offered no video: an RTSP feed needs a moment to start)."""
    media = (plugin_data(answer).get("info") or {}).get("media") or []
    return any(m.get("type") == "video" and isinstance(m.get("age_ms"), int)
               and m["age_ms"] <= max_age_ms for m in media)


def destroy(mountpoint_id: int, admin_key: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"request": "destroy", "id": mountpoint_id, "permanent": False}
    if admin_key:
        body["admin_key"] = admin_key
    return body
