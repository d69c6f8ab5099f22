"""framecast.authguard: per-address failure counting with a window (pure, reusable by HTTP)."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from framecast.authguard import FailureGuard


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_blocks_after_max_failures_until_the_window_passes() -> None:
    clock = Clock()
    g = FailureGuard(3, 60, clock=clock)
    assert not g.fail("1.2.3.4") and not g.fail("1.2.3.4")
    assert not g.blocked("1.2.3.4")
    assert g.fail("1.2.3.4") and g.blocked("1.2.3.4")
    assert not g.blocked("5.6.7.8")  # per address
    assert 59 < g.retry_after("1.2.3.4") <= 60
    clock.t += 59.9
    assert g.blocked("1.2.3.4")
    clock.t += 0.2  # the oldest failure left the window
    assert not g.blocked("1.2.3.4") and g.retry_after("1.2.3.4") == 0


def test_failures_spread_out_never_block() -> None:
    clock = Clock()
    g = FailureGuard(3, 10, clock=clock)
    for _ in range(20):
        g.fail("a")
        clock.t += 5  # two per window at most
        assert not g.blocked("a")


def test_success_forgets_and_zero_disables() -> None:
    g = FailureGuard(2, 60, clock=Clock())
    g.fail("a")
    g.succeed("a")
    assert not g.fail("a")
    off = FailureGuard(0, 60)
    assert not any(off.fail("a") for _ in range(100)) and not off.blocked("a")
    assert not FailureGuard(3, 0).fail("a")


def test_memory_is_bounded() -> None:
    g = FailureGuard(5, 60, max_addresses=100, clock=Clock())
    for i in range(10_000):
        g.fail(f"10.0.{i // 256}.{i % 256}")
    assert len(g) == 100


def test_thread_safe() -> None:
    g = FailureGuard(1000, 60, clock=Clock())
    threads = [threading.Thread(target=lambda: [g.fail("x") for _ in range(100)])
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not g.blocked("x")
    assert g.fail("x") is False or g.blocked("x")


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 30)), max_size=60))
def test_blocked_iff_enough_failures_in_window(events: list[tuple[str, float]]) -> None:
    clock = Clock()
    g = FailureGuard(4, 20, clock=clock)
    history: dict[str, list[float]] = {}
    for addr, dt in events:
        clock.t += dt
        g.fail(addr)
        history.setdefault(addr, []).append(clock.t)
        recent = [t for t in history[addr] if clock.t - t < 20]
        assert g.blocked(addr) == (len(recent) >= 4)
