"""framecast.relaypolicy: backoff, one line per outage, a continuous timeline across
reconnections (pure, no GStreamer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framecast import sei
from framecast.relaypolicy import (
    PARAMETER_SETS,
    Backoff,
    Outage,
    TimeMapper,
    public_url,
    single_parameter_sets,
)

MS = 1_000_000


def test_backoff_doubles_up_to_max_and_resets() -> None:
    b = Backoff(initial=0.5, maximum=3.0)
    assert [b.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next_delay() == 0.5


def test_outage_says_each_change_once() -> None:
    o = Outage("cam", "rtsp://bob:pw@10.0.0.2:554/s")
    assert o.lost("refused", 0.0) == ("/cam: camera unreachable at rtsp://10.0.0.2:554/s "
                                      "(refused); retrying")
    assert o.lost("refused", 1.0) is None and o.lost("timeout", 2.0) is None
    assert o.down and o.down_for(5.0) == 5.0
    assert o.restored(4.0) == "/cam: camera reachable after 4.0 s"
    assert o.restored(5.0) is None and not o.down
    assert o.lost("no frames for 3 s", 10.0) == ("/cam: camera lost at rtsp://10.0.0.2:554/s "
                                                 "(no frames for 3 s); retrying")
    assert o.restored(12.5) == "/cam: camera back after 2.5 s"


def test_first_success_is_silent() -> None:
    o = Outage("cam")
    assert o.restored(1.0) is None and o.ever_up


def test_public_url_hides_credentials() -> None:
    assert public_url("rtsp://u:p@[::1]:8554/x?y") == "rtsp://[::1]:8554/x?y"
    assert public_url("rtsp://cam/x") == "rtsp://cam/x"


def test_sessions_continue_where_the_served_time_is() -> None:
    m = TimeMapper()
    # session 1: the camera's clock starts at 100 s; served time is 5 s
    assert m.map(100_000 * MS, 100_000 * MS, 5_000 * MS) == (5_000 * MS, 5_000 * MS)
    assert m.map(100_040 * MS, 100_040 * MS, 9_999 * MS) == (5_040 * MS, 5_040 * MS)
    # the camera restarts at 0 after a 3 s outage: placed at the served "now"
    m.rebase()
    assert m.map(0, 0, 8_100 * MS) == (8_100 * MS, 8_100 * MS)
    assert m.map(40 * MS, 40 * MS, 0) == (8_140 * MS, 8_140 * MS)


def test_rebase_never_goes_back_even_if_now_does() -> None:
    m = TimeMapper()
    m.map(0, 0, 1_000 * MS)
    m.map(500 * MS, 500 * MS, 0)
    m.rebase()
    pts, dts = m.map(7 * MS, 7 * MS, 200 * MS)  # "now" behind what was already sent
    assert dts == 1_500 * MS + m.gap and pts == dts


def test_b_frames_keep_their_spacing() -> None:
    m = TimeMapper()
    # decode order I P B with PTS 80, 200, 120 and DTS 0, 40, 80 (ms)
    out = [m.map(p * MS, d * MS, 1_000 * MS) for p, d in ((80, 0), (200, 40), (120, 80))]
    assert out == [(1_080 * MS, 1_000 * MS), (1_200 * MS, 1_040 * MS), (1_120 * MS, 1_080 * MS)]


def test_b_frames_without_dts_are_not_a_clock_reset() -> None:
    m = TimeMapper()
    pts = [0, 100, 33, 66, 200, 133, 166]  # ms, decode order, no DTS (depayloaded RTP)
    out = [m.map(p * MS, None, 5_000 * MS)[0] for p in pts]
    assert out == [(5_000 + p) * MS for p in pts]


def test_camera_clock_reset_within_a_session_rebases() -> None:
    m = TimeMapper()
    m.map(60_000 * MS, None, 1_000 * MS)
    assert m.map(60_033 * MS, None, 0)[0] == 1_033 * MS
    # the camera restarted its clock without us reconnecting: continue, never go back
    assert m.map(0, None, 1_050 * MS)[0] == 1_133 * MS


sessions = st.lists(st.tuples(st.integers(0, 10**12), st.integers(0, 10**12),
                              st.lists(st.integers(1, 10**8), min_size=1, max_size=8)),
                    min_size=1, max_size=20)


@given(sessions)
def test_decode_timestamps_strictly_increase(events: list[tuple[int, int, list[int]]]) -> None:
    """Whatever each session's clock and the served clock say: one increasing timeline."""
    m = TimeMapper()
    last = -1
    for start, now, steps in events:
        m.rebase()
        t = start
        for step in steps:
            _pts, dts = m.map(t, t, now)
            assert dts is not None and dts > last
            last = dts
            t += step


def test_pts_only_b_frames_get_a_monotonic_dts() -> None:
    """RTP gives no DTS; with B-frames the PTS go back in decode order. gst-rtsp-server's
    TCP backlog aborts on a timestamp that goes back: the mapper makes up a DTS that never
    does, ``reorder`` before the PTS."""
    frame = 33_333_333
    m = TimeMapper()
    order = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8]          # I P B B P B B … in decode order
    out = [m.map(i * frame, None, 0) for i in order]
    dts = [d for _p, d in out]
    assert all(d is not None for d in dts)
    assert dts == sorted(dts)
    assert all(d <= p for p, d in out if p is not None and d is not None)


FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_single_parameter_sets(codec: str) -> None:
    """The depayloader's copy of the SDP's sets before the AUD goes; the parser's stays."""
    au = (FIXTURES / f"{codec}_idr.bin").read_bytes()
    nals = sei.split_annexb(au)
    sets = [n for n in nals if sei.nal_type(n, codec) in PARAMETER_SETS[codec]]
    aud = b"\x09\xf0" if codec == "h264" else b"\x46\x01\x10"
    doubled = sei.join_annexb([*sets, aud, *nals])
    once = single_parameter_sets(doubled, codec)
    assert sei.split_annexb(once) == [aud, *nals]
    assert single_parameter_sets(au, codec) is au  # nothing repeated: unchanged
    assert single_parameter_sets(b"\x00\x00\x01", codec) == b"\x00\x00\x01"


def test_clock_drift_is_followed_without_moving_frames() -> None:
    """The camera's clock runs 0.1 % slow (its frames come later and later by ours), with
    arrival delays of up to 15 ms on top: the served PTS keep within ~tolerance of ``now``
    while the spacing between frames moves by at most ``slew`` (never a frame's order)."""
    frame, m = 33_333_333, TimeMapper()
    out, lags = [], []
    for i in range(3000):  # 100 s
        arrival = i * frame * 1001 // 1000 + (i * 7919 % 16) * MS
        pts, _ = m.map(i * frame, None, 10_000 * MS + arrival)
        assert pts is not None
        out.append(pts)
        lags.append(10_000 * MS + arrival - pts)
    steps = [b - a for a, b in zip(out, out[1:], strict=False)]
    assert all(abs(s - frame) <= m.slew for s in steps)
    assert max(lags[-600:]) <= 40 * MS  # uncorrected: 80-100 ms behind by then


def test_exact_camera_clock_is_left_alone() -> None:
    frame, m = 33_333_333, TimeMapper()
    out = [m.map(i * frame, None, 5_000 * MS + i * frame + (i % 5) * MS)[0] for i in range(600)]
    assert out == [5_000 * MS + i * frame for i in range(600)]


def test_camera_clock_jump_ahead_reanchors() -> None:
    frame, m = 33_333_333, TimeMapper()
    for i in range(100):
        m.map(i * frame, None, i * frame)
    for i in range(100, 300):  # the camera's clock jumped 30 s ahead; ours did not
        pts, _ = m.map(30_000 * MS + i * frame, None, i * frame)
    assert pts is not None and pts < 12_000 * MS  # back near now, not 30 s in the future
