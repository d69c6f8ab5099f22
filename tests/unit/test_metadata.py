"""framecast.metadata: the envelope (msgpack / JSON), stamps, size limit, reader helper."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framecast import sei
from framecast.metadata import (
    DEFAULT_LIMIT,
    FRAMECAST_UUID,
    MetadataError,
    MetadataTooLarge,
    decode_metadata,
    encode_metadata,
    framecast_messages,
    metadata_message,
    stamps,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
X264_UUID = bytes.fromhex("dc45e9bde6d948b7962cd820d923eeef")


def test_uuid_is_the_contract_value():
    assert FRAMECAST_UUID == uuid.UUID("54bc3258-c963-44b9-bf5d-215c5823bc0e").bytes
    assert len(FRAMECAST_UUID) == 16
    assert DEFAULT_LIMIT == 65536


ENVELOPES = [
    ("stamps-only", {"seq": 0, "loop": 0, "pts_ns": 0, "wallclock_ns": 1}),
    ("user-fields", {"seq": 7, "label": "car", "score": 0.5, "boxes": [[1, 2, 3, 4]], "ok": True}),
    ("nested-and-none", {"a": {"b": {"c": None}}, "list": []}),
    ("unicode", {"name": "façade ✓", "emoji": "🎥"}),
    ("big-ints", {"pts_ns": 2**63 - 1, "neg": -(2**63)}),
    ("empty", {}),
]


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
@pytest.mark.parametrize("d", [e[1] for e in ENVELOPES], ids=[e[0] for e in ENVELOPES])
def test_round_trip(d, fmt):
    data = encode_metadata(d, fmt)
    assert decode_metadata(data) == d
    if fmt == "json":
        assert data[:1] == b"{" and json.loads(data) == d
    else:
        assert data[0] in range(0x80, 0x90) or data[0] in (0xDE, 0xDF)
        assert msgpack.unpackb(data) == d


def test_msgpack_is_the_default_and_keeps_bytes():
    data = encode_metadata({"raw": b"\x00\x01"})
    assert data == msgpack.packb({"raw": b"\x00\x01"}, use_bin_type=True)
    assert decode_metadata(data) == {"raw": b"\x00\x01"}


def test_sniffing_by_first_byte_accepts_json_with_leading_whitespace():
    assert decode_metadata(b' {"a": 1}') == {"a": 1}
    assert decode_metadata(bytearray(b'{"a":1}')) == {"a": 1}
    big = {f"k{i}": i for i in range(20)}  # > 15 keys: msgpack map16 (0xde)
    assert encode_metadata(big)[0] == 0xDE
    assert decode_metadata(encode_metadata(big)) == big


def test_size_limit_message_and_configurable_limit():
    d = {"blob": "x" * 70000}
    size = len(encode_metadata(d, limit=None))
    with pytest.raises(MetadataTooLarge) as info:
        encode_metadata(d)
    assert str(info.value) == f"metadata for frame is {size} bytes, over the 65536-byte limit"
    assert (info.value.size, info.value.limit) == (size, 65536)
    assert isinstance(info.value, MetadataError) and isinstance(info.value, ValueError)
    with pytest.raises(MetadataTooLarge, match="over the 10-byte limit"):
        encode_metadata({"a": "0123456789"}, "json", limit=10)
    exact = encode_metadata({"a": 1}, "json")
    assert encode_metadata({"a": 1}, "json", limit=len(exact)) == exact


@pytest.mark.parametrize(
    ("d", "fmt", "error"),
    [
        ({"f": object()}, "msgpack", "not serialisable as msgpack"),
        ({"f": object()}, "json", "not serialisable as json"),
        ({"b": b"bytes"}, "json", "not serialisable as json"),
        ({"n": float("nan")}, "json", "not serialisable as json"),
        ({"i": 2**64}, "msgpack", "not serialisable as msgpack"),
        ({1: "int key"}, "msgpack", "keys must be strings, got int 1"),
        ([1, 2], "msgpack", "must be a mapping, got list"),
        ({"a": 1}, "xml", "unknown metadata format 'xml'"),
    ],
    ids=[
        "object-msgpack",
        "object-json",
        "bytes-json",
        "nan-json",
        "int-overflow",
        "int-key",
        "not-a-map",
        "unknown-format",
    ],
)
def test_encode_rejects(d, fmt, error):
    with pytest.raises(MetadataError, match=error):
        encode_metadata(d, fmt)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "empty"),
        (b"\x01", r"neither a msgpack map nor JSON \(first byte 0x01\)"),
        (b"[1]", "neither a msgpack map nor JSON"),
        (b"{not json", "does not decode"),
        (b'{"a": "\xff"}', "does not decode"),
        (b"\x81\xa1a", "does not decode"),  # msgpack map cut short
        (msgpack.packb({"a": 1}) + b"x", "does not decode"),  # extra bytes
        (msgpack.packb({1: 2}), "int is not allowed for map key"),
        (b" []", "is a list, not a map"),
    ],
    ids=[
        "empty",
        "int",
        "json-list",
        "bad-json",
        "bad-utf8",
        "cut-msgpack",
        "extra-data",
        "int-keys",
        "whitespace-list",
    ],
)
def test_decode_rejects(data, error):
    with pytest.raises(MetadataError, match=error):
        decode_metadata(data)


def test_stamps():
    assert stamps(3, 1, 100, 5) == {"seq": 3, "loop": 1, "pts_ns": 100, "wallclock_ns": 5}
    s = stamps(0, 0, 0)
    assert abs(s["wallclock_ns"] - __import__("time").time_ns()) < 5_000_000_000
    assert decode_metadata(encode_metadata({**stamps(1, 2, 3, 4), "user": "x"}))["user"] == "x"
    with pytest.raises(MetadataError, match="stamp seq must be an int"):
        stamps("1", 0, 0)  # type: ignore[arg-type]
    with pytest.raises(MetadataError, match="stamp loop must be an int"):
        stamps(1, True, 0)


@pytest.mark.parametrize("ls", [None, 4])
def test_framecast_messages_splits_ours_from_third_party(ls):
    name = "h264_idr.bin" if ls is None else "h264_idr.avc"
    au = (FIXTURES / name).read_bytes()
    ours = {**stamps(5, 0, 166_666_666, 1), "label": "x"}
    out = sei.insert_sei(
        au,
        "h264",
        [
            metadata_message(ours),
            (FRAMECAST_UUID, b"\x01garbage"),  # ours, but not an envelope: reported raw
            metadata_message({"n": 2}, "json"),
            (b"\x11" * 16, b"third party"),
        ],
        ls,
    )
    decoded, raw = framecast_messages(out, "h264", ls)
    assert decoded == [ours, {"n": 2}]
    assert [u for u, _ in raw] == [X264_UUID, FRAMECAST_UUID, b"\x11" * 16]
    assert raw[1][1] == b"\x01garbage" and raw[2][1] == b"third party"


def test_framecast_messages_raises_seierror_for_a_broken_au():
    with pytest.raises(sei.SEIError):
        framecast_messages((FIXTURES / "h264_sei_cut.bin").read_bytes(), "h264")


@settings(max_examples=500)
@given(st.one_of(st.binary(max_size=64), st.binary(max_size=64).map(lambda b: b"\x82" + b)))
def test_decode_random_bytes_raises_only_metadata_error(data):
    try:
        assert isinstance(decode_metadata(data), dict)
    except MetadataError:
        pass
    # a reader never raises for a bad payload under our UUID: it is returned raw
    au = sei.insert_sei(b"\x00\x00\x00\x01\x65\x88\x80", "h264", [(FRAMECAST_UUID, data)])
    ours, raw = framecast_messages(au, "h264")
    assert len(ours) + len(raw) == 1


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.dictionaries(st.text(max_size=10), json_values, max_size=6),
    st.sampled_from(["msgpack", "json"]),
)
def test_round_trip_property(d, fmt):
    assert decode_metadata(encode_metadata(d, fmt)) == d
