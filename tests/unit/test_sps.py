"""framecast.sps: profile and level from real SPS bytes (x264/x265 as GStreamer 1.22 runs
them; the names h264parse/h265parse gave the same streams in their caps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from framecast import sei
from framecast.sps import parse_sps, profile_of_au

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# x264/x265 SPS heads (NAL header included) → (profile, level) in h264parse/h265parse's caps
REAL = [
    ("h264", "6742c015d90141fb", "constrained-baseline", "2.1"),  # profile=baseline asked too
    ("h264", "674d4015eca0a0fd", "main", "2.1"),
    ("h264", "67640014acd94141", "high", "2"),
    ("h264", "67f4000d919b2828", "high-4:4:4", "1.3"),
    ("h265", "42010101600000030090000003000003003fa00a", "main", "2.1"),
    ("h265", "42010102200000030090000003000003003fa00a", "main-10", "2.1"),
]


@pytest.mark.parametrize(("codec", "head", "profile", "level"), REAL)
def test_real_sps(codec: str, head: str, profile: str, level: str) -> None:
    p = parse_sps(bytes.fromhex(head), codec)  # type: ignore[arg-type]
    assert (p.profile, p.level) == (profile, level)


def test_constraint_flags_and_levels() -> None:
    assert parse_sps(bytes.fromhex("6742001e"), "h264").profile == "baseline"
    assert parse_sps(bytes.fromhex("6742e01f"), "h264").profile == "constrained-baseline"
    assert parse_sps(bytes.fromhex("67640c28"), "h264").profile == "constrained-high"
    assert parse_sps(bytes.fromhex("67640828"), "h264").profile == "progressive-high"
    assert parse_sps(bytes.fromhex("6742d00b"), "h264").level == "1b"
    assert parse_sps(bytes.fromhex("674d0033"), "h264").level == "5.1"
    assert parse_sps(bytes.fromhex("67020033"), "h264").profile is None  # not named here


def test_access_units_from_fixtures() -> None:
    """The fixtures' keyframes (tests/unit/fixtures/make_fixtures.py) carry their SPS."""
    for codec in ("h264", "h265"):
        au = (FIXTURES / f"{codec}_idr.bin").read_bytes()
        p = profile_of_au(au, codec)  # type: ignore[arg-type]
        assert p is not None and p.profile is not None and p.level
    assert profile_of_au((FIXTURES / "h264_p.bin").read_bytes(), "h264") is None


def test_not_an_sps() -> None:
    with pytest.raises(sei.SEIError):
        parse_sps(bytes.fromhex("68ce3c80"), "h264")  # a PPS
    with pytest.raises(sei.SEIError):
        parse_sps(bytes.fromhex("67"), "h264")
    assert profile_of_au(b"\x00\x00\x01\x67", "h264") is None
