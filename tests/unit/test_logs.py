"""framecast.logs: bounded one-line records, rate-limited bursts, text and JSON formats, and
the helpers for peer text (bounded, RateLimiter, RateLimitedLog)."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framecast.logs import (
    BoundedFilter,
    RateLimitedLog,
    RateLimiter,
    bounded,
    one_line,
    setup_logging,
)


def _record(msg: str, *args: object, name: str = "framecast.rtsp",
            level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


@pytest.mark.parametrize(("text", "expected"), [
    ("plain", "plain"),
    ("two\nlines\r", "two\\x0alines\\x0d"),
    ("esc \x1b[31m red", "esc \\x1b[31m red"),
    ("tab\tkept", "tab\tkept"),
], ids=["plain", "newlines", "ansi-escape", "tab"])
def test_one_line_escapes_control_characters(text: str, expected: str) -> None:
    assert one_line(text) == expected


def test_one_line_cuts_long_text_and_says_how_much() -> None:
    assert one_line("x" * 20_000, limit=10) == "xxxxxxxxxx… (19990 more characters)"


def test_burst_from_one_site_is_throttled_then_summarised() -> None:
    now = [0.0]
    flt = BoundedFilter(burst=3, window=10.0, clock=lambda: now[0])
    passed = [flt.filter(_record("bad request from %s", f"10.0.0.{i}")) for i in range(100)]
    assert passed == [True] * 3 + [False] * 97
    other = _record("client %s connected", "x")
    assert flt.filter(other)          # another call site is not throttled
    now[0] = 11.0
    rec = _record("bad request from %s", "10.0.0.200")
    assert flt.filter(rec)
    assert rec.getMessage() == "bad request from 10.0.0.200 (97 similar lines suppressed)"


def test_filter_bounds_attacker_text_and_drops_tracebacks_below_error() -> None:
    flt = BoundedFilter()
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        rec = logging.LogRecord("framecast.http", logging.WARNING, __file__, 1,
                                "bad header %s", ("A" * 5000 + "\n",), sys.exc_info())
    assert flt.filter(rec)
    msg = rec.getMessage()
    assert "\n" not in msg and len(msg) < 500 and rec.exc_info is None


def test_text_format_starts_with_a_utc_time_stamp() -> None:
    out = io.StringIO()
    handler = setup_logging(stream=out)
    try:
        logging.getLogger("framecast.rtsp").info("client %s connected", "127.0.0.1")
        logging.getLogger("framecast.rtsp").debug("not shown without -v")
    finally:
        logging.getLogger().removeHandler(handler)
    line, = out.getvalue().splitlines()
    stamp = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d"
    assert re.fullmatch(stamp + r" INF \[rtsp\] client 127\.0\.0\.1 connected", line), line


def test_json_format_one_object_per_line_and_verbose() -> None:
    out = io.StringIO()
    handler = setup_logging(verbose=True, fmt="json", stream=out)
    try:
        logging.getLogger("framecast.http").debug("peer %s", "a\nb")
    finally:
        logging.getLogger().removeHandler(handler)
    obj = json.loads(out.getvalue())
    assert obj["level"] == "debug" and obj["logger"] == "http" and obj["msg"] == "peer a\\x0ab"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["time"])


def test_tool_format_plain_warning_lines_and_verbose() -> None:
    """``framecast inject``: no time stamps, warnings only unless -v."""
    out = io.StringIO()
    log = logging.getLogger("framecast.inject")
    setup_logging(verbose=False, stream=out, tool=True)
    try:
        log.info("progress")
        log.warning("%s:2: not JSON", "side.jsonl")
        setup_logging(verbose=True, stream=out, tool=True)  # once: replaces the handler
        log.debug("details")
    finally:
        for h in [h for h in logging.getLogger().handlers if getattr(h, "_framecast", False)]:
            logging.getLogger().removeHandler(h)
    assert out.getvalue() == ("framecast: warning: side.jsonl:2: not JSON\n"
                              "framecast: debug: details\n")


# -- helpers for peer text ----------------------------------------------------------------

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


class ZeroClock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_rate_limiter_counts_what_it_suppresses() -> None:
    clock = ZeroClock()
    rl = RateLimiter(burst=2, interval_s=10, clock=clock)
    assert rl.allow("k") == (True, 0) and rl.allow("k") == (True, 0)
    assert [rl.allow("k")[0] for _ in range(1000)] == [False] * 1000
    assert rl.allow("other") == (True, 0)  # per key
    clock.t = 10.0
    assert rl.allow("k") == (True, 1000)  # the next line says how many were dropped


def test_rate_limiter_keys_are_bounded() -> None:
    rl = RateLimiter(max_keys=50, clock=ZeroClock())
    for i in range(10_000):
        rl.allow(f"peer{i}")
    assert len(rl._state) == 50


class Clock100:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_rate_limited_log(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock100()
    rl = RateLimitedLog(logging.getLogger("t"), interval=10, clock=clock)
    with caplog.at_level(logging.INFO, "t"):
        assert rl.log(logging.WARNING, "k", "bad from %s", "x")
        for _ in range(500):
            assert not rl.log(logging.WARNING, "k", "bad from %s", "x")
        assert rl.log(logging.WARNING, "other", "other")
        clock.t += 10
        assert rl.log(logging.WARNING, "k", "bad from %s", "y")
    assert [r.getMessage() for r in caplog.records] == [
        "bad from x", "other", "bad from y (500 more like it in the last 10 s)"]


def test_rate_limited_log_forgets_old_keys() -> None:
    rl = RateLimitedLog(logging.getLogger("t"), interval=10, clock=Clock100())
    for i in range(5000):
        rl.log(logging.DEBUG, f"peer{i}", "x")
    assert len(rl.limiter) <= 1024


def test_bounded_text() -> None:
    assert bounded("abc") == "abc"
    assert bounded("a\r\nb\x1b[31m") == "a\\r\\nb\\x1b[31m"
    long = bounded("x" * 20_000, 80)
    assert len(long) == 80 and long.endswith("…")
