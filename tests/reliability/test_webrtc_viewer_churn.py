"""WebRTC viewers joining and leaving leave nothing behind in the server process.

Each removed viewer used to keep its webrtcbin alive (its signal handlers' closures held the
Python viewer, which held the element): 2 threads (``webrtcbinN:pc``, ``webrtcbinN:ice``) and
~30 fds per viewer, forever. Run under tools/netns-run (ICE needs a non-loopback interface).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from webrtc_reliability_helpers import (
    ServerProcess,
    consumers,
    healthy_viewer_plays,
    signalling_viewers,
    wait_until,
    webrtcbins,
)

pytestmark = pytest.mark.timeout(240)

ROUNDS, VIEWERS = 3, 30
IDLE_STOP = 0.5  # the producer pipeline stops this long after the last viewer: a clean baseline


def settle(srv: ServerProcess) -> None:
    """No webrtcbin left and the producer stopped (threads of its pipeline gone)."""
    wait_until(lambda: webrtcbins(srv.url) == 0, 20, "webrtcbins back to 0")
    time.sleep(IDLE_STOP + 1.0)


def test_three_rounds_of_thirty_viewers_leave_no_threads_or_fds(tmp_path) -> None:
    settings = {"webrtc_idle_stop": IDLE_STOP}
    with ServerProcess(settings, log_path=tmp_path / "server.log") as srv:
        healthy_viewer_plays(srv.url)  # warm-up: first-use allocations out of the baseline
        settle(srv)
        base = srv.stats()
        rss: list[int] = []
        for r in range(ROUNDS):
            with consumers(srv.url, VIEWERS) as c:
                wait_until(lambda: sum(f >= 3 for f in c.frames) >= VIEWERS or bool(c.errors),
                           90, f"round {r}: frames at {VIEWERS} viewers")
                assert not c.errors, c.errors[:3]
                assert webrtcbins(srv.url) == VIEWERS
            settle(srv)
            after = srv.stats()
            rss.append(after.rss_kb)
            leaked = [n for n in after.names if n.startswith("webrtcbin")]
            assert not leaked, f"round {r}: webrtcbin threads left: {leaked}"
            assert after.threads <= base.threads + 1, (r, base.threads, after.threads,
                                                       after.names)
            assert after.fds <= base.fds + 4, (r, base.fds, after.fds)
        # memory: the first round grows the allocator's arenas (+26 MB measured), later rounds
        # reuse them (+6, +2 MB); leaked webrtcbins added ~15 MB per round of 30
        assert rss[-1] - rss[0] < 12_000, (base.rss_kb, rss)
        assert rss[-1] - base.rss_kb < 60_000, (base.rss_kb, rss)
        # the same through signalling sessions (the producer offers, the consumer ends them)
        asyncio.run(signalling_viewers(srv.url, 10))
        settle(srv)
        after = srv.stats()
        assert not [n for n in after.names if n.startswith("webrtcbin")], after.names
        assert after.threads <= base.threads + 1 and after.fds <= base.fds + 4, (base, after)
        assert srv.alive
        healthy_viewer_plays(srv.url)
