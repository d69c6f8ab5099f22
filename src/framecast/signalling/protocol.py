"""GStreamer webrtcsink's signalling protocol, as the npm client ``gstwebrtc-api`` 3.0 speaks it.

Pure: JSON text in, frozen dataclasses out (and back). One class per ``type``; the few types that
travel both ways (``list``, ``listConsumers``, ``startSession``) carry their server-side fields as
optional ones. Every malformed input raises :class:`ProtocolError` with a short, exact message
that the server sends back to the peer in an ``error`` message.

Wire shapes (camelCase keys)::

    welcome           {peerId}                              server -> peer
    setProtocolVersion{version}                             peer -> server (accepted, ignored)
    setPeerStatus     {roles: [producer|listener|consumer], meta?, peerId?}
    peerStatusChanged {peerId, roles, meta}                 server -> listeners
    list              {} | {producers: [{id, meta}]}
    listConsumers     {} | {consumers: [{id, meta}]}
    startSession      {peerId, offer?} | {peerId, sessionId, offer?}
    sessionStarted    {peerId, sessionId}                   server -> consumer
    peer              {sessionId, sdp: {type, sdp}}
                      | {sessionId, ice: {candidate, sdpMLineIndex, sdpMid?, usernameFragment?}}
    endSession        {sessionId}
    error             {details}
"""

from __future__ import annotations

import builtins  # _Fields has methods named str, int, list
import json
from dataclasses import dataclass, field
from typing import Any

from framecast.errors import ProtocolError as ProtocolError  # re-exported

MAX_MESSAGE_BYTES = 64 * 1024
ROLES = ("producer", "listener", "consumer")
SDP_TYPES = ("offer", "answer")

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class PeerInfo:
    id: str
    meta: JsonObject | None = None


@dataclass(frozen=True)
class Welcome:
    peer_id: str
    type = "welcome"


@dataclass(frozen=True)
class SetProtocolVersion:
    version: str
    type = "setProtocolVersion"


@dataclass(frozen=True)
class SetPeerStatus:
    roles: tuple[str, ...]
    meta: JsonObject | None = None
    type = "setPeerStatus"


@dataclass(frozen=True)
class PeerStatusChanged:
    peer_id: str
    roles: tuple[str, ...]
    meta: JsonObject | None = None
    type = "peerStatusChanged"


@dataclass(frozen=True)
class List:
    producers: tuple[PeerInfo, ...] | None = None  # None: a request
    type = "list"


@dataclass(frozen=True)
class ListConsumers:
    consumers: tuple[PeerInfo, ...] | None = None  # None: a request
    type = "listConsumers"


@dataclass(frozen=True)
class StartSession:
    peer_id: str
    session_id: str | None = None  # set only server -> producer
    offer: str | None = None  # a consumer's own offer: the producer answers instead
    type = "startSession"


@dataclass(frozen=True)
class SessionStarted:
    peer_id: str
    session_id: str
    type = "sessionStarted"


@dataclass(frozen=True)
class Sdp:
    sdp_type: str  # "offer" | "answer"
    sdp: str


@dataclass(frozen=True)
class Ice:
    candidate: str
    sdp_mline_index: int
    sdp_mid: str | None = None
    username_fragment: str | None = None


@dataclass(frozen=True)
class Peer:
    session_id: str
    sdp: Sdp | None = None
    ice: Ice | None = None
    type = "peer"


@dataclass(frozen=True)
class EndSession:
    session_id: str
    type = "endSession"


@dataclass(frozen=True)
class Error:
    details: str
    type = "error"


Message = (
    Welcome | SetProtocolVersion | SetPeerStatus | PeerStatusChanged | List | ListConsumers
    | StartSession | SessionStarted | Peer | EndSession | Error
)


# -- parsing -------------------------------------------------------------------------------------

@dataclass
class _Fields:
    """Typed access to one message's fields; errors name the message type and the key."""

    kind: str
    obj: JsonObject = field(repr=False)

    def _get(self, key: str, types: type | tuple[type, ...], what: str, required: bool) -> Any:
        if key not in self.obj or (self.obj[key] is None and not required):
            if required:
                raise ProtocolError(f"{self.kind}: missing field '{key}'")
            return None
        value = self.obj[key]
        # bool is an int in Python; JSON true is never a valid index or string here
        if not isinstance(value, types) or isinstance(value, bool):
            raise ProtocolError(f"{self.kind}: field '{key}' must be {what}")
        return value

    def str(self, key: str, required: bool = True) -> Any:
        return self._get(key, str, "a string", required)

    def int(self, key: builtins.str, required: bool = True) -> Any:
        return self._get(key, int, "an integer", required)

    def obj_(self, key: builtins.str, required: bool = True) -> Any:
        return self._get(key, dict, "an object", required)

    def list(self, key: builtins.str, required: bool = True) -> Any:
        return self._get(key, list, "an array", required)


def _roles(f: _Fields) -> tuple[str, ...]:
    roles = f.list("roles")
    for role in roles:
        if role not in ROLES:
            raise ProtocolError(f"{f.kind}: unknown role {json.dumps(role)[:40]}")
    return tuple(dict.fromkeys(roles))  # keep order, drop duplicates


def _peers(f: _Fields, key: str) -> tuple[PeerInfo, ...] | None:
    items = f.list(key, required=False)
    if items is None:
        return None
    out = []
    for item in items:
        sub = _Fields(f"{f.kind}.{key}[]", item if isinstance(item, dict) else {})
        if not isinstance(item, dict):
            raise ProtocolError(f"{f.kind}: field '{key}' must hold objects")
        out.append(PeerInfo(sub.str("id"), sub.obj_("meta", required=False)))
    return tuple(out)


def _peer(f: _Fields) -> Peer:
    session_id = f.str("sessionId")
    sdp_obj = f.obj_("sdp", required=False)
    ice_obj = f.obj_("ice", required=False)
    if (sdp_obj is None) == (ice_obj is None):
        raise ProtocolError("peer: needs exactly one of 'sdp' or 'ice'")
    if sdp_obj is not None:
        s = _Fields("peer.sdp", sdp_obj)
        sdp_type = s.str("type")
        if sdp_type not in SDP_TYPES:
            raise ProtocolError("peer.sdp: field 'type' must be 'offer' or 'answer'")
        return Peer(session_id, sdp=Sdp(sdp_type, s.str("sdp")))
    i = _Fields("peer.ice", ice_obj)
    mline = i.int("sdpMLineIndex", required=False)
    mid = i.str("sdpMid", required=False)
    if mline is None and mid is None:
        raise ProtocolError("peer.ice: missing field 'sdpMLineIndex'")
    if mline is not None and mline < 0:
        raise ProtocolError("peer.ice: field 'sdpMLineIndex' must be >= 0")
    ice = Ice(i.str("candidate"), mline if mline is not None else 0, mid,
              i.str("usernameFragment", required=False))
    return Peer(session_id, ice=ice)


def _build(kind: str, f: _Fields) -> Message:
    match kind:
        case "welcome":
            return Welcome(f.str("peerId"))
        case "setProtocolVersion":
            return SetProtocolVersion(f.str("version"))
        case "setPeerStatus":
            if "producer" in (roles := _roles(f)) and "consumer" in roles:
                raise ProtocolError("setPeerStatus: a peer cannot be producer and consumer")
            return SetPeerStatus(roles, f.obj_("meta", required=False))
        case "peerStatusChanged":
            return PeerStatusChanged(f.str("peerId"), _roles(f), f.obj_("meta", required=False))
        case "list":
            return List(_peers(f, "producers"))
        case "listConsumers":
            return ListConsumers(_peers(f, "consumers"))
        case "startSession":
            return StartSession(f.str("peerId"), f.str("sessionId", required=False),
                                f.str("offer", required=False))
        case "sessionStarted":
            return SessionStarted(f.str("peerId"), f.str("sessionId"))
        case "peer":
            return _peer(f)
        case "endSession":
            return EndSession(f.str("sessionId"))
        case "error":
            return Error(f.str("details"))
    raise ProtocolError(f"unknown message type {json.dumps(kind)[:60]}")


def parse(text: str | bytes) -> Message:
    """Parse one signalling message; raises :class:`ProtocolError` naming what is wrong."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message too large: {size} bytes > {MAX_MESSAGE_BYTES}")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise ProtocolError("malformed JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("message must be a JSON object")
    kind = obj.get("type")
    if kind is None:
        raise ProtocolError("message has no 'type'")
    if not isinstance(kind, str):
        raise ProtocolError("field 'type' must be a string")
    return _build(kind, _Fields(kind, obj))


# -- dumping -------------------------------------------------------------------------------------

def _peer_info(p: PeerInfo) -> JsonObject:
    return {"id": p.id, "meta": p.meta}


def to_json_obj(msg: Message) -> JsonObject:
    """The wire object for ``msg`` (camelCase keys, optional fields left out when unset)."""
    out: JsonObject = {"type": msg.type}
    match msg:
        case Welcome(peer_id=peer_id):
            out["peerId"] = peer_id
        case SetProtocolVersion(version=version):
            out["version"] = version
        case SetPeerStatus(roles=roles, meta=meta):
            out.update(roles=list(roles), meta=meta)
        case PeerStatusChanged(peer_id=peer_id, roles=roles, meta=meta):
            out.update(peerId=peer_id, roles=list(roles), meta=meta)
        case List(producers=producers):
            if producers is not None:
                out["producers"] = [_peer_info(p) for p in producers]
        case ListConsumers(consumers=consumers):
            if consumers is not None:
                out["consumers"] = [_peer_info(p) for p in consumers]
        case StartSession(peer_id=peer_id, session_id=session_id, offer=offer):
            out["peerId"] = peer_id
            if session_id is not None:
                out["sessionId"] = session_id
            if offer is not None:
                out["offer"] = offer
        case SessionStarted(peer_id=peer_id, session_id=session_id):
            out.update(peerId=peer_id, sessionId=session_id)
        case Peer(session_id=session_id, sdp=sdp, ice=ice):
            out["sessionId"] = session_id
            if sdp is not None:
                out["sdp"] = {"type": sdp.sdp_type, "sdp": sdp.sdp}
            elif ice is not None:
                ice_obj: JsonObject = {"candidate": ice.candidate,
                                       "sdpMLineIndex": ice.sdp_mline_index}
                if ice.sdp_mid is not None:
                    ice_obj["sdpMid"] = ice.sdp_mid
                if ice.username_fragment is not None:
                    ice_obj["usernameFragment"] = ice.username_fragment
                out["ice"] = ice_obj
        case EndSession(session_id=session_id):
            out["sessionId"] = session_id
        case Error(details=details):
            out["details"] = details
    return out


def dump(msg: Message) -> str:
    """Serialise ``msg`` to compact JSON text; ``parse(dump(m)) == m`` for every message."""
    return json.dumps(to_json_obj(msg), separators=(",", ":"), ensure_ascii=False)
