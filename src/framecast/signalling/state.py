"""Peers and sessions of the signalling server as a state machine: message in → messages out.

Pure and synchronous: the WebSocket layer (and the server's own per-mount producers) feed
messages through :meth:`Signalling.handle` and deliver the returned ``(dest_peer_id, message)``
pairs. Bad input never raises: the sender gets an ``error`` message instead.

Behaviour follows gst-plugins-rs' signalling server, with three deliberate differences: a peer
message or ``endSession`` naming an unknown session is answered with an ``error`` (upstream only
logs it), a peer may hold at most ``max_sessions_per_peer`` consumer sessions, and only the
server's own producers (:meth:`Signalling.add_producer`) may be producers: a remote peer asking
for the producer role is refused, or it could list itself under a real mount's name and be
handed the viewers that pick it.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from framecast.signalling import protocol as p

Outgoing = list[tuple[str, p.Message]]


@dataclass
class _Peer:
    roles: tuple[str, ...] = ()
    meta: p.JsonObject | None = None
    internal: bool = False  # a producer run by this server (one per mount), not a socket
    got_first_message: bool = False
    sessions: set[str] = field(default_factory=set)

    @property
    def producing(self) -> bool:
        return "producer" in self.roles

    @property
    def consuming(self) -> bool:
        return "consumer" in self.roles

    @property
    def listening(self) -> bool:
        return "listener" in self.roles


@dataclass(frozen=True)
class Session:
    id: str
    producer: str
    consumer: str

    def other(self, peer_id: str) -> str:
        return self.consumer if peer_id == self.producer else self.producer


def _uuid() -> str:
    return str(uuid.uuid4())


class Signalling:
    """All peers and sessions of one signalling server."""

    def __init__(self, new_id: Callable[[], str] = _uuid, max_sessions_per_peer: int = 16,
                 remote_producers: bool = False) -> None:
        self._new_id = new_id
        self.max_sessions_per_peer = max_sessions_per_peer
        self.remote_producers = remote_producers  # True: any peer may produce (upstream's way)
        self.peers: dict[str, _Peer] = {}
        self.sessions: dict[str, Session] = {}

    # -- peers joining and leaving ---------------------------------------------------------------

    def connect(self, peer_id: str | None = None) -> tuple[str, Outgoing]:
        """A socket opened: register a peer and welcome it."""
        peer_id = peer_id or self._new_id()
        if peer_id in self.peers:
            raise ValueError(f"peer id {peer_id!r} already in use")
        self.peers[peer_id] = _Peer()
        return peer_id, [(peer_id, p.Welcome(peer_id))]

    def add_producer(self, meta: p.JsonObject, peer_id: str | None = None) -> tuple[str, Outgoing]:
        """Register a producer run by the server itself (no welcome: it has no socket)."""
        peer_id = peer_id or self._new_id()
        if peer_id in self.peers:
            raise ValueError(f"peer id {peer_id!r} already in use")
        self.peers[peer_id] = _Peer(roles=("producer",), meta=meta, internal=True)
        return peer_id, self._broadcast_status(peer_id)

    def disconnect(self, peer_id: str) -> Outgoing:
        """A socket closed (or a producer went away): end its sessions, tell the listeners."""
        peer = self.peers.pop(peer_id, None)
        if peer is None:
            return []
        out: Outgoing = []
        for session_id in sorted(peer.sessions):
            out += self._end(session_id, peer_id)
        out += [(lid, p.PeerStatusChanged(peer_id, (), peer.meta))
                for lid, lp in self.peers.items() if lp.listening]
        return out

    # -- messages --------------------------------------------------------------------------------

    def handle(self, peer_id: str, msg: p.Message) -> Outgoing:
        """One message from ``peer_id``: what to send to whom. Never raises for bad input."""
        peer = self.peers.get(peer_id)
        if peer is None:
            return [(peer_id, p.Error(f"unknown peer '{peer_id}'"))]
        first, peer.got_first_message = not peer.got_first_message, True
        match msg:
            case p.SetProtocolVersion():
                if not first:
                    return [(peer_id, p.Error("setProtocolVersion must be the first message"))]
                return []
            case p.SetPeerStatus(roles=roles, meta=meta):
                return self._set_status(peer_id, peer, roles, meta)
            case p.List(producers=None):
                return [(peer_id, p.List(self._infos(lambda q: q.producing)))]
            case p.ListConsumers(consumers=None):
                return [(peer_id, p.ListConsumers(self._infos(lambda q: q.consuming)))]
            case p.StartSession(peer_id=target, session_id=None, offer=offer):
                return self._start(peer_id, target, offer)
            case p.Peer(session_id=session_id):
                return self._forward(peer_id, session_id, msg)
            case p.EndSession(session_id=session_id):
                if session_id not in peer.sessions:
                    return [(peer_id, p.Error(f"unknown session '{session_id}'"))]
                return self._end(session_id, peer_id)
        return [(peer_id, p.Error(f"unexpected message type '{msg.type}' from a peer"))]

    def producer_of(self, session_id: str) -> str | None:
        session = self.sessions.get(session_id)
        return session.producer if session else None

    # -- internals -------------------------------------------------------------------------------

    def _infos(self, keep: Callable[[_Peer], bool]) -> tuple[p.PeerInfo, ...]:
        return tuple(p.PeerInfo(pid, q.meta) for pid, q in self.peers.items() if keep(q))

    def _broadcast_status(self, peer_id: str) -> Outgoing:
        peer = self.peers[peer_id]
        msg = p.PeerStatusChanged(peer_id, peer.roles, peer.meta)
        return [(lid, msg) for lid, lp in self.peers.items() if lp.listening]

    def _set_status(self, peer_id: str, peer: _Peer, roles: tuple[str, ...],
                    meta: p.JsonObject | None) -> Outgoing:
        if "producer" in roles and not peer.internal and not self.remote_producers:
            return [(peer_id, p.Error("setPeerStatus: the producer role is reserved for this "
                                      "server's own streams"))]
        if roles == peer.roles and meta == peer.meta:
            return []
        out: Outgoing = []
        # giving up a role ends the sessions held in it
        for session_id in sorted(peer.sessions):
            s = self.sessions[session_id]
            if (s.producer == peer_id and "producer" not in roles) or (
                    s.consumer == peer_id and "consumer" in peer.roles and "consumer" not in roles):
                out += self._end(session_id, peer_id)
        peer.roles, peer.meta = roles, meta
        return out + self._broadcast_status(peer_id)

    def _start(self, from_id: str, to_id: str, offer: str | None) -> Outgoing:
        to = self.peers.get(to_id)
        if to is None:
            return [(from_id, p.Error(f"unknown peer '{to_id}'"))]
        if to_id == from_id:
            return [(from_id, p.Error("cannot start a session with oneself"))]
        if to.producing:
            producer, consumer = to_id, from_id
        elif to.consuming:
            producer, consumer = from_id, to_id
            if not self.peers[from_id].producing:
                return [(from_id, p.Error(f"peer '{from_id}' is not a producer"))]
        else:
            return [(from_id, p.Error(f"peer '{to_id}' is neither producer nor consumer"))]
        if len(self.peers[from_id].sessions) >= self.max_sessions_per_peer:
            return [(from_id, p.Error(f"too many sessions (max {self.max_sessions_per_peer})"))]
        session_id = self._new_id()
        self.sessions[session_id] = Session(session_id, producer, consumer)
        self.peers[producer].sessions.add(session_id)
        self.peers[consumer].sessions.add(session_id)
        return [
            (consumer, p.SessionStarted(producer, session_id)),
            (producer, p.StartSession(consumer, session_id, offer)),
        ]

    def _forward(self, from_id: str, session_id: str, msg: p.Peer) -> Outgoing:
        session = self.sessions.get(session_id)
        if session is None or from_id not in (session.producer, session.consumer):
            return [(from_id, p.Error(f"unknown session '{session_id}'"))]
        if msg.sdp is not None and msg.sdp.sdp_type == "offer" and from_id == session.consumer:
            return [(from_id, p.Error("only the producer may send an offer in a session"))]
        return [(session.other(from_id), msg)]

    def _end(self, session_id: str, by: str) -> Outgoing:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return []
        for pid in (session.producer, session.consumer):
            if pid in self.peers:
                self.peers[pid].sessions.discard(session_id)
        other = session.other(by)
        return [(other, p.EndSession(session_id))] if other in self.peers else []


def counter_ids(prefix: str = "peer") -> Callable[[], str]:
    """Deterministic ids for tests: ``peer-1``, ``peer-2``, …"""
    counter = itertools.count(1)
    return lambda: f"{prefix}-{next(counter)}"
