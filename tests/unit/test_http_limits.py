"""Pure helpers of the HTTP side: pending-viewer admission/expiry, the accept guard."""

from __future__ import annotations

import logging

import pytest

from framecast.http.pending import PendingViewers


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_pending_limits_per_mount_and_peer() -> None:
    clock = Clock()
    pv = PendingViewers(timeout=10, max_per_mount=3, max_per_peer=2, clock=clock)
    assert pv.refusal("a", "1.1.1.1") is None
    pv.add("k1", "a", "1.1.1.1")
    pv.add("k2", "a", "1.1.1.1")
    assert pv.refusal("a", "1.1.1.1") == (
        "2 viewers from 1.1.1.1 already waiting for ICE; try again later")
    assert pv.refusal("a", "2.2.2.2") is None
    pv.add("k3", "a", "2.2.2.2")
    assert pv.refusal("a", "3.3.3.3") == "a: 3 viewers already waiting for ICE; try again later"
    assert pv.refusal("b", "3.3.3.3") is None
    pv.done("k1")
    pv.done("k1")  # idempotent
    assert pv.refusal("a", "1.1.1.1") is None and len(pv) == 2 and "k2" in pv


def test_pending_expire_after_timeout() -> None:
    clock = Clock()
    pv = PendingViewers(timeout=10, clock=clock)
    pv.add("old", "a", "p")
    clock.t += 5
    pv.add("new", "a", "p")
    assert pv.expired() == []
    clock.t += 5
    assert [p.key for p in pv.expired()] == ["old"]
    assert pv.expired() == [] and "new" in pv
    pv.done("new")  # connected: never expires
    clock.t += 100
    assert pv.expired() == [] and len(pv) == 0


def test_listener_refuses_when_out_of_fds(caplog: pytest.LogCaptureFixture) -> None:
    """EMFILE from accept(): the waiting connection is accepted with the spare fd and closed,
    asyncio sees "nothing to accept", and one line is logged however often it happens."""
    import errno
    import socket

    from framecast.http import listener

    class OutOfFds(listener.GuardedSocket):
        failures = 0

        def _accept(self):  # type: ignore[no-untyped-def]
            if self.failures:
                self.failures -= 1
                raise OSError(errno.EMFILE, "Too many open files")
            return super()._accept()

    srv = listener.listen_socket("127.0.0.1", 0)
    sock = OutOfFds(fileno=srv.detach())
    sock.reserve()
    port = sock.getsockname()[1]
    listener._ratelog.limiter.clear()
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    try:
        with caplog.at_level(logging.WARNING, "framecast.http"):
            for _ in range(5):
                sock.failures = 1
                with pytest.raises(BlockingIOError):
                    sock.accept()
        for c in clients:
            c.settimeout(2)
            assert c.recv(10) == b""  # closed by the server, not left waiting
        assert sock.refused == 5 and sock._spare is not None
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and "cannot accept connections: Too many open files" in lines[0]
        # with fds again it accepts as usual
        extra = socket.create_connection(("127.0.0.1", port))
        conn, _ = sock.accept()
        conn.close()
        extra.close()
    finally:
        for c in clients:
            c.close()
        sock.close()
