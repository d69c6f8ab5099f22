"""framecast.hops: a relay takes the origin's envelope out of the AU and writes it back with its
own stamps in ``hops`` — real x264/x265 access units (tests/unit/fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from framecast import hops, sei
from framecast.metadata import FRAMECAST_UUID, decode_metadata, encode_metadata, stamps

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CAM = b"\xa1" * 16
ORIGIN = {**stamps(7, 0, 233_333_333, 1_700_000_000_000_000_000), "label": "door"}


def au(codec: str, messages: list[tuple[bytes, bytes]]) -> bytes:
    return sei.insert_sei((FIXTURES / f"{codec}_idr.bin").read_bytes(), codec, messages)


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_take_origin_removes_only_the_envelope(codec: str) -> None:
    plain = (FIXTURES / f"{codec}_idr.bin").read_bytes()
    stamped = au(codec, [(CAM, b"camera bytes"), (FRAMECAST_UUID, encode_metadata(ORIGIN))])
    rest, origin = hops.take_origin(stamped, codec)
    assert origin == ORIGIN
    theirs = [m for m in sei.extract_user_data(stamped, codec) if m[0] != FRAMECAST_UUID]
    assert (CAM, b"camera bytes") in theirs
    assert sei.extract_user_data(rest, codec) == theirs  # the encoder's and camera's stay
    # the slices and parameter sets are untouched
    assert [n for n in sei.split_annexb(rest) if sei.nal_type(n, codec) not in (6, 39)] == \
        [n for n in sei.split_annexb(plain) if sei.nal_type(n, codec) not in (6, 39)]


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_take_origin_drops_a_nal_left_empty(codec: str) -> None:
    plain = (FIXTURES / f"{codec}_idr.bin").read_bytes()
    rest, origin = hops.take_origin(au(codec, [(FRAMECAST_UUID, encode_metadata(ORIGIN))]),
                                    codec)
    assert origin == ORIGIN
    assert sei.split_annexb(rest) == sei.split_annexb(plain)


def test_take_origin_leaves_other_streams_alone() -> None:
    plain = (FIXTURES / "h264_idr.bin").read_bytes()
    assert hops.take_origin(plain, "h264") == (plain, None)  # a camera without framecast
    broken = au("h264", [(FRAMECAST_UUID, b"\xc1 not an envelope")])
    assert hops.take_origin(broken, "h264") == (broken, None)  # passes through untouched
    no_stamps = au("h264", [(FRAMECAST_UUID, encode_metadata({"label": "x"}))])
    assert hops.take_origin(no_stamps, "h264") == (no_stamps, None)  # not an origin's
    assert hops.take_origin(b"\x00\x00\x01" + FRAMECAST_UUID, "h264")[1] is None


def test_with_hop_keeps_the_origin_and_appends() -> None:
    mine = stamps(3, 0, 100, 1_700_000_000_050_000_000)
    one = hops.with_hop(ORIGIN, mine, "relay1")
    assert {k: one[k] for k in ORIGIN} == ORIGIN  # the origin's stamps and fields, untouched
    assert one["hops"] == [{"via": "relay1", **mine}]
    two = hops.with_hop(one, stamps(4, 0, 200, 1_700_000_000_060_000_000), "relay2")
    assert two["seq"] == 7 and [h["via"] for h in two["hops"]] == ["relay1", "relay2"]
    assert decode_metadata(encode_metadata(two)) == two


def test_with_hop_without_an_origin_stamps_at_the_top() -> None:
    mine = stamps(3, 0, 100, 5)
    assert hops.with_hop({"label": "x"}, mine, "relay1") == {"label": "x", **mine}
    assert hops.with_hop(ORIGIN, mine, None) == {**ORIGIN, **mine}  # not a relay: stamps win
    assert hops.with_hop(ORIGIN, {}, "relay1") == ORIGIN  # stamps off: the origin's, as is
