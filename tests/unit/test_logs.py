"""The server log: bounded one-line records, rate-limited bursts, text and JSON formats."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from framecast.logs import BoundedFilter, one_line, setup_logging


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
