"""The signalling protocol and state machine, fed messages directly (no sockets)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framecast.signalling import protocol as p
from framecast.signalling.state import Signalling, counter_ids

# -- protocol --------------------------------------------------------------------------------------

ROUND_TRIP = [
    p.Welcome("a"),
    p.SetProtocolVersion("1.0"),
    p.SetPeerStatus(("listener",), {"name": "web"}),
    p.SetPeerStatus(("producer",), None),
    p.PeerStatusChanged("a", (), None),
    p.PeerStatusChanged("a", ("producer", "listener"), {"name": "demo"}),
    p.List(),
    p.List((p.PeerInfo("x", {"name": "demo"}), p.PeerInfo("y"))),
    p.ListConsumers(),
    p.ListConsumers(()),
    p.StartSession("prod"),
    p.StartSession("prod", offer="v=0\r\n"),
    p.StartSession("cons", "s1"),
    p.SessionStarted("prod", "s1"),
    p.Peer("s1", sdp=p.Sdp("offer", "v=0\r\n")),
    p.Peer("s1", sdp=p.Sdp("answer", "v=0\r\n")),
    p.Peer("s1", ice=p.Ice("candidate:1 1 UDP 1 10.0.0.1 5000 typ host", 0, "video0", "ab")),
    p.Peer("s1", ice=p.Ice("", 0)),
    p.EndSession("s1"),
    p.Error("boom"),
]


@pytest.mark.parametrize("msg", ROUND_TRIP, ids=lambda m: m.type)
def test_round_trip(msg: p.Message) -> None:
    assert p.parse(p.dump(msg)) == msg


def test_wire_shapes_match_gstwebrtc_api() -> None:
    assert json.loads(p.dump(p.Welcome("a"))) == {"type": "welcome", "peerId": "a"}
    assert json.loads(p.dump(p.Peer("s", ice=p.Ice("c", 1, "m")))) == {
        "type": "peer", "sessionId": "s", "ice": {"candidate": "c", "sdpMLineIndex": 1,
                                                   "sdpMid": "m"}}
    assert json.loads(p.dump(p.Peer("s", sdp=p.Sdp("offer", "v=0")))) == {
        "type": "peer", "sessionId": "s", "sdp": {"type": "offer", "sdp": "v=0"}}
    assert json.loads(p.dump(p.List((p.PeerInfo("x", {"name": "m"}),)))) == {
        "type": "list", "producers": [{"id": "x", "meta": {"name": "m"}}]}
    # what the browser client sends (RTCIceCandidate.toJSON(), null usernameFragment)
    msg = p.parse('{"type":"peer","sessionId":"s","ice":{"candidate":"c","sdpMid":"0",'
                  '"sdpMLineIndex":0,"usernameFragment":null}}')
    assert msg == p.Peer("s", ice=p.Ice("c", 0, "0", None))


BAD = [
    ("not json", "{", "malformed JSON"),
    ("bad utf8", b"\xff\xfe{", "malformed JSON"),
    ("array", "[1]", "message must be a JSON object"),
    ("no type", "{}", "message has no 'type'"),
    ("type not str", '{"type":1}', "field 'type' must be a string"),
    ("unknown type", '{"type":"hello"}', 'unknown message type "hello"'),
    ("missing peerId", '{"type":"startSession"}', "startSession: missing field 'peerId'"),
    ("peerId not str", '{"type":"startSession","peerId":3}',
     "startSession: field 'peerId' must be a string"),
    ("bad role", '{"type":"setPeerStatus","roles":["admin"]}',
     'setPeerStatus: unknown role "admin"'),
    ("roles not list", '{"type":"setPeerStatus","roles":"listener"}',
     "setPeerStatus: field 'roles' must be an array"),
    ("producer and consumer", '{"type":"setPeerStatus","roles":["producer","consumer"]}',
     "setPeerStatus: a peer cannot be producer and consumer"),
    ("meta not object", '{"type":"setPeerStatus","roles":[],"meta":[1]}',
     "setPeerStatus: field 'meta' must be an object"),
    ("peer empty", '{"type":"peer","sessionId":"s"}', "peer: needs exactly one of 'sdp' or 'ice'"),
    ("peer both", '{"type":"peer","sessionId":"s","sdp":{"type":"offer","sdp":""},"ice":{}}',
     "peer: needs exactly one of 'sdp' or 'ice'"),
    ("sdp type", '{"type":"peer","sessionId":"s","sdp":{"type":"pranswer","sdp":""}}',
     "peer.sdp: field 'type' must be 'offer' or 'answer'"),
    ("ice no mline", '{"type":"peer","sessionId":"s","ice":{"candidate":"c"}}',
     "peer.ice: missing field 'sdpMLineIndex'"),
    ("ice bool mline",
     '{"type":"peer","sessionId":"s","ice":{"candidate":"c","sdpMLineIndex":true}}',
     "peer.ice: field 'sdpMLineIndex' must be an integer"),
    ("ice negative", '{"type":"peer","sessionId":"s","ice":{"candidate":"c","sdpMLineIndex":-1}}',
     "peer.ice: field 'sdpMLineIndex' must be >= 0"),
    ("too large", '{"type":"error","details":"' + "x" * 70000 + '"}',
     "message too large: 70029 bytes > 65536"),
    ("deep nesting", "[" * 100000 + "]" * 100000, "message too large: 200000 bytes > 65536"),
    ("nesting under limit", '{"type":"setPeerStatus","roles":[],"meta":' + '{"a":' * 5000
     + "1" + "}" * 5000 + "}", "malformed JSON"),
]


@pytest.mark.parametrize(("text", "error"), [(t, e) for _, t, e in BAD], ids=[i for i, _, _ in BAD])
def test_malformed_messages_give_exact_errors(text: str | bytes, error: str) -> None:
    with pytest.raises(p.ProtocolError) as exc:
        p.parse(text)
    assert str(exc.value) == error


@given(st.text(max_size=200) | st.binary(max_size=200))
def test_parse_never_raises_anything_but_protocol_error(text: str | bytes) -> None:
    try:
        p.parse(text)
    except p.ProtocolError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3)
    | st.dictionaries(st.text(max_size=8), kids, max_size=3),
    max_leaves=10,
)


@given(st.sampled_from(["welcome", "setPeerStatus", "peerStatusChanged", "list", "startSession",
                        "sessionStarted", "peer", "endSession", "error", "listConsumers"]),
       st.dictionaries(st.sampled_from(["peerId", "sessionId", "roles", "meta", "sdp", "ice",
                                        "producers", "offer", "details", "consumers"]),
                       json_values, max_size=5))
def test_fuzzed_objects_parse_or_fail_cleanly(kind: str, fields: dict) -> None:
    try:
        msg = p.parse(json.dumps({"type": kind, **fields}))
    except p.ProtocolError:
        return
    assert p.parse(p.dump(msg)) == msg


# -- state machine ---------------------------------------------------------------------------------

def _machine(remote_producers: bool = False) -> Signalling:
    return Signalling(new_id=counter_ids("id"), remote_producers=remote_producers)


def _listener(sig: Signalling, meta: dict | None = None) -> str:
    peer_id, out = sig.connect()
    assert out == [(peer_id, p.Welcome(peer_id))]
    out = sig.handle(peer_id, p.SetPeerStatus(("listener",), meta))
    # the client is ready only when it sees its own status change
    assert (peer_id, p.PeerStatusChanged(peer_id, ("listener",), meta)) in out
    return peer_id


def test_listener_sees_producers_and_own_status() -> None:
    sig = _machine()
    prod, out = sig.add_producer({"name": "demo"})
    assert out == []  # nobody listening yet
    web = _listener(sig, {"name": "web"})
    assert sig.handle(web, p.List()) == [(web, p.List((p.PeerInfo(prod, {"name": "demo"}),)))]
    assert sig.handle(web, p.ListConsumers()) == [(web, p.ListConsumers(()))]
    prod2, out = sig.add_producer({"name": "other"})
    assert out == [(web, p.PeerStatusChanged(prod2, ("producer",), {"name": "other"}))]


def test_session_flow_forwards_sdp_and_ice_both_ways() -> None:
    sig = _machine()
    prod, _ = sig.add_producer({"name": "demo"})
    web = _listener(sig)
    out = sig.handle(web, p.StartSession(prod))
    (c_dest, started), (p_dest, start) = out
    assert (c_dest, p_dest) == (web, prod)
    assert started == p.SessionStarted(prod, started.session_id)
    assert start == p.StartSession(web, started.session_id, None)
    sid = started.session_id
    offer = p.Peer(sid, sdp=p.Sdp("offer", "v=0"))
    assert sig.handle(prod, offer) == [(web, offer)]
    answer = p.Peer(sid, sdp=p.Sdp("answer", "v=0"))
    assert sig.handle(web, answer) == [(prod, answer)]
    ice = p.Peer(sid, ice=p.Ice("c", 0))
    assert sig.handle(web, ice) == [(prod, ice)]
    assert sig.handle(prod, ice) == [(web, ice)]
    # the consumer may not offer inside a producer-offered session
    assert sig.handle(web, offer) == [
        (web, p.Error("only the producer may send an offer in a session"))]
    assert sig.handle(web, p.EndSession(sid)) == [(prod, p.EndSession(sid))]
    assert sig.sessions == {}
    assert sig.handle(web, ice) == [(web, p.Error(f"unknown session '{sid}'"))]


def test_consumer_offer_travels_in_start_session() -> None:
    sig = _machine()
    prod, _ = sig.add_producer({"name": "demo"})
    web = _listener(sig)
    _, (_, start) = sig.handle(web, p.StartSession(prod, offer="v=0 offer"))
    assert start.offer == "v=0 offer"


def test_unknown_ids_are_errors_to_the_sender() -> None:
    sig = _machine()
    web = _listener(sig)
    assert sig.handle(web, p.StartSession("nope")) == [(web, p.Error("unknown peer 'nope'"))]
    assert sig.handle(web, p.EndSession("s")) == [(web, p.Error("unknown session 's'"))]
    assert sig.handle(web, p.Peer("s", ice=p.Ice("c", 0))) == [
        (web, p.Error("unknown session 's'"))]
    assert sig.handle("ghost", p.List()) == [("ghost", p.Error("unknown peer 'ghost'"))]
    other = _listener(sig)
    assert sig.handle(web, p.StartSession(other)) == [
        (web, p.Error(f"peer '{other}' is neither producer nor consumer"))]
    assert sig.handle(web, p.StartSession(web)) == [
        (web, p.Error("cannot start a session with oneself"))]
    # server-to-peer messages are not accepted from a peer
    assert sig.handle(web, p.Welcome("x")) == [
        (web, p.Error("unexpected message type 'welcome' from a peer"))]


def test_a_third_peer_cannot_use_someone_elses_session() -> None:
    sig = _machine()
    prod, _ = sig.add_producer({})
    web, spy = _listener(sig), _listener(sig)
    (_, started), _ = sig.handle(web, p.StartSession(prod))
    sid = started.session_id
    assert sig.handle(spy, p.Peer(sid, ice=p.Ice("c", 0))) == [
        (spy, p.Error(f"unknown session '{sid}'"))]
    assert sig.handle(spy, p.EndSession(sid)) == [(spy, p.Error(f"unknown session '{sid}'"))]
    assert sid in sig.sessions


def test_dropped_socket_ends_its_sessions_and_broadcasts_empty_roles() -> None:
    sig = _machine()
    prod, _ = sig.add_producer({"name": "demo"})
    web = _listener(sig, {"name": "web"})
    watcher = _listener(sig)
    sids = []
    for _ in range(3):
        (_, started), _ = sig.handle(web, p.StartSession(prod))
        sids.append(started.session_id)
    out = sig.disconnect(web)
    assert sorted((d, m.session_id) for d, m in out if isinstance(m, p.EndSession)) == sorted(
        (prod, s) for s in sids)
    assert (watcher, p.PeerStatusChanged(web, (), {"name": "web"})) in out
    assert all(d != web for d, _ in out)
    assert sig.sessions == {}
    assert sig.disconnect(web) == []


def test_producer_leaving_ends_sessions_on_the_consumer_side() -> None:
    sig = _machine()
    prod, _ = sig.add_producer({"name": "demo"})
    web = _listener(sig)
    (_, started), _ = sig.handle(web, p.StartSession(prod))
    out = sig.disconnect(prod)
    assert (web, p.EndSession(started.session_id)) in out
    assert (web, p.PeerStatusChanged(prod, (), {"name": "demo"})) in out


def test_producer_ends_a_session_itself() -> None:
    sig = _machine()
    prod, _ = sig.add_producer({})
    web = _listener(sig)
    (_, started), _ = sig.handle(web, p.StartSession(prod))
    assert sig.handle(prod, p.EndSession(started.session_id)) == [
        (web, p.EndSession(started.session_id))]


def test_giving_up_the_producer_role_ends_its_sessions() -> None:
    sig = _machine(remote_producers=True)
    browser_prod, _ = sig.connect()
    sig.handle(browser_prod, p.SetPeerStatus(("producer",)))
    web = _listener(sig)
    (_, started), _ = sig.handle(web, p.StartSession(browser_prod))
    out = sig.handle(browser_prod, p.SetPeerStatus(()))
    assert (web, p.EndSession(started.session_id)) in out
    assert (web, p.PeerStatusChanged(browser_prod, (), None)) in out


def test_producer_starts_session_with_passive_consumer() -> None:
    sig = _machine(remote_producers=True)
    prod, _ = sig.connect()
    sig.handle(prod, p.SetPeerStatus(("producer",)))
    cons, _ = sig.connect()
    sig.handle(cons, p.SetPeerStatus(("consumer",), {"n": 1}))
    web = _listener(sig)
    assert sig.handle(web, p.ListConsumers()) == [
        (web, p.ListConsumers((p.PeerInfo(cons, {"n": 1}),)))]
    (d1, started), (d2, start) = sig.handle(prod, p.StartSession(cons))
    assert (d1, d2) == (cons, prod)
    assert started.peer_id == prod and start.peer_id == cons
    # a listener cannot push a session onto a consumer
    assert sig.handle(web, p.StartSession(cons)) == [
        (web, p.Error(f"peer '{web}' is not a producer"))]


def test_remote_peer_cannot_become_a_producer() -> None:
    """A socket naming itself like a real mount must never be listed nor get viewers."""
    sig = _machine()
    real, _ = sig.add_producer({"name": "small"})
    web = _listener(sig)
    fake, _ = sig.connect()
    refused = p.Error("setPeerStatus: the producer role is reserved for this server's own "
                      "streams")
    for roles in (("producer",), ("producer", "listener")):
        assert sig.handle(fake, p.SetPeerStatus(roles, {"name": "small"})) == [(fake, refused)]
    assert sig.peers[fake].roles == ()
    assert sig.handle(web, p.List()) == [(web, p.List((p.PeerInfo(real, {"name": "small"}),)))]
    assert sig.handle(web, p.StartSession(fake)) == [
        (web, p.Error(f"peer '{fake}' is neither producer nor consumer"))]
    # other roles stay open to it
    assert sig.handle(fake, p.SetPeerStatus(("listener",)))[-1][1] == p.PeerStatusChanged(
        fake, ("listener",), None)


def test_set_protocol_version_only_first() -> None:
    sig = _machine()
    a, _ = sig.connect()
    assert sig.handle(a, p.SetProtocolVersion("1.0")) == []
    assert sig.handle(a, p.SetProtocolVersion("1.0")) == [
        (a, p.Error("setProtocolVersion must be the first message"))]


def test_unchanged_status_is_not_rebroadcast_and_session_cap() -> None:
    sig = Signalling(new_id=counter_ids(), max_sessions_per_peer=2)
    prod, _ = sig.add_producer({})
    web = _listener(sig)
    assert sig.handle(web, p.SetPeerStatus(("listener",))) == []
    sig.handle(web, p.StartSession(prod))
    sig.handle(web, p.StartSession(prod))
    assert sig.handle(web, p.StartSession(prod)) == [(web, p.Error("too many sessions (max 2)"))]


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 7), st.integers(0, 3)), max_size=60))
def test_random_traffic_keeps_invariants(ops: list[tuple[int, int, int]]) -> None:
    """Random joins, leaves and messages never raise and never leave dangling sessions."""
    sig = Signalling(new_id=counter_ids())
    prods = [sig.add_producer({"name": f"m{i}"})[0] for i in range(2)]
    socks: list[str] = []
    for who, what, arg in ops:
        if what == 0 or not socks:
            socks.append(sig.connect()[0])
            continue
        peer = socks[who % len(socks)]
        sids = sorted(sig.sessions)
        sid = sids[arg % len(sids)] if sids else "nope"
        msg: p.Message
        match what:
            case 1:
                out = sig.disconnect(peer)
                socks.remove(peer)
                assert all(d != peer for d, _ in out)
                continue
            case 2:
                msg = p.SetPeerStatus((("listener",), ("consumer",), ("producer",), ())[arg])
            case 3:
                msg = p.StartSession(prods[arg % 2] if arg < 2 else socks[arg % len(socks)])
            case 4:
                msg = p.EndSession(sid)
            case 5:
                msg = p.Peer(sid, ice=p.Ice("c", 0))
            case 6:
                msg = p.Peer(sid, sdp=p.Sdp("answer", "v=0"))
            case _:
                msg = p.List()
        for dest, m in sig.handle(peer, msg):
            assert dest in sig.peers or isinstance(m, p.Error)
        for s in sig.sessions.values():
            assert s.producer in sig.peers and s.consumer in sig.peers
            assert s.id in sig.peers[s.producer].sessions
            assert s.id in sig.peers[s.consumer].sessions
