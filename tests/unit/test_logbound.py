"""framecast.logbound: one short line per event, rate-limited, whatever the peer sends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from framecast.logbound import RateLimiter, bounded


@given(st.text(max_size=5000), st.integers(10, 400))
def test_bounded_is_one_short_line(text: str, limit: int) -> None:
    out = bounded(text, limit)
    assert len(out) <= limit
    assert "\n" not in out and "\r" not in out
    assert all(c.isprintable() for c in out)


def test_bounded_keeps_short_text_and_cuts_huge() -> None:
    assert bounded("Transport: RTP/AVP") == "Transport: RTP/AVP"
    out = bounded("x" * 20_000_000)
    assert len(out) == 200 and out.endswith("…")
    assert bounded("a\r\nb\x00") == "a\\r\\nb\\x00"


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_rate_limiter_counts_what_it_suppresses() -> None:
    clock = Clock()
    rl = RateLimiter(burst=2, interval_s=10, clock=clock)
    assert rl.allow("k") == (True, 0) and rl.allow("k") == (True, 0)
    assert [rl.allow("k")[0] for _ in range(1000)] == [False] * 1000
    assert rl.allow("other") == (True, 0)  # per key
    clock.t = 10.0
    assert rl.allow("k") == (True, 1000)  # the next line says how many were dropped


def test_rate_limiter_keys_are_bounded() -> None:
    rl = RateLimiter(max_keys=50, clock=Clock())
    for i in range(10_000):
        rl.allow(f"peer{i}")
    assert len(rl._state) == 50
