"""framecast.sei: framing, emulation prevention, SEI build / insert / extract.

Real access units from x264 / x265 live in tests/unit/fixtures (see make_fixtures.py) beside
truncated and corrupted copies; synthetic ones are built here byte by byte.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from framecast import sei
from framecast.sei import SEIError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
X264_UUID = bytes.fromhex("dc45e9bde6d948b7962cd820d923eeef")
X265_UUID = bytes.fromhex("2ca2de09b51747dbbb55a4fe7fc2fc4e")
OUR = bytes(range(0x10, 0x20))
ZERO_UUID = bytes(range(16))  # starts 00 01: escaped after a payloadSize byte of 00
OTHER = b"\xee" * 16


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def types(nals: list[bytes], codec: str) -> list[int]:
    return [sei.nal_type(n, codec) for n in nals]


# Synthetic NAL units (without start codes). Slice payloads end in 0x80 like real RBSPs.
H264_AUD = b"\x09\xf0"
H264_SPS = b"\x67\x42\xc0\x0a\x8c\x8d\x40"
H264_PPS = b"\x68\xce\x3c\x80"
H264_IDR = b"\x65\x88\x84\x00\x00\x03\x01\x21\x80"
H264_P = b"\x41\x9a\x00\x00\x03\x00\x11\x80"
H265_AUD = b"\x46\x01\x10"
H265_VPS = b"\x40\x01\x0c\x01\xff\xff"
H265_SPS = b"\x42\x01\x01\x01\x60"
H265_PPS = b"\x44\x01\xc1\x72\xb4"
H265_IDR = b"\x26\x01\xaf\x00\x00\x03\x01\x80"  # IDR_W_RADL (19)
H265_TRAIL_N = b"\x00\x01\xd0\x00\x00\x03\x02\x80"  # type 0: header byte 0x00 is legal


# --------------------------------------------------------------------------- real fixtures

REAL = [
    ("h264_idr.bin", "h264", None, [9, 7, 8, 6, 5]),
    ("h264_p.bin", "h264", None, [9, 1]),
    ("h264_idr.avc", "h264", 4, [9, 7, 8, 6, 5]),
    ("h265_idr.bin", "h265", None, [32, 33, 34, 39, 20]),
    ("h265_p.bin", "h265", None, [21]),
    ("h265_idr.hvc1", "h265", 4, [32, 33, 34, 39, 20]),
]


def split(au: bytes, length_size: int | None) -> list[bytes]:
    if length_size is None:
        return sei.split_annexb(au)
    return sei.split_length_prefixed(au, length_size)


@pytest.mark.parametrize(("name", "codec", "ls", "expected"), REAL, ids=[r[0] for r in REAL])
def test_real_access_units_split_into_expected_nal_types(name, codec, ls, expected):
    assert types(split(fixture(name), ls), codec) == expected


@pytest.mark.parametrize(
    ("annexb", "avc", "codec_data", "codec"),
    [
        ("h264_idr.bin", "h264_idr.avc", "h264.avcC", "h264"),
        ("h265_idr.bin", "h265_idr.hvc1", "h265.hvcC", "h265"),
    ],
    ids=["h264", "h265"],
)
def test_both_framings_of_the_same_au_hold_the_same_nals(annexb, avc, codec_data, codec):
    ls = sei.length_size_from_codec_data(fixture(codec_data), codec)
    assert ls == 4
    nals = sei.split_annexb(fixture(annexb))
    assert sei.split_length_prefixed(fixture(avc), ls) == nals
    assert sei.join_length_prefixed(nals, ls) == fixture(avc)
    assert sei.split_annexb(sei.join_annexb(nals)) == nals


@pytest.mark.parametrize(
    ("name", "codec", "ls", "uid", "banner"),
    [
        ("h264_idr.bin", "h264", None, X264_UUID, b"x264 - core "),
        ("h264_idr.avc", "h264", 4, X264_UUID, b"x264 - core "),
        ("h265_idr.bin", "h265", None, X265_UUID, b"x265 (build "),
        ("h265_idr.hvc1", "h265", 4, X265_UUID, b"x265 (build "),
    ],
    ids=["h264-annexb", "h264-avc", "h265-annexb", "h265-hvc1"],
)
def test_extract_finds_the_encoders_own_user_data(name, codec, ls, uid, banner):
    [(got_uid, payload)] = sei.extract_user_data(fixture(name), codec, ls)
    assert got_uid == uid
    assert payload.startswith(banner)


@pytest.mark.parametrize(("name", "codec", "ls", "expected"), REAL, ids=[r[0] for r in REAL])
def test_insert_into_real_au_goes_before_first_slice_and_keeps_every_byte(
    name, codec, ls, expected
):
    au = fixture(name)
    msg = (OUR, b"\x00\x00\x00\x01\x00\x00\x03payload")
    out = sei.insert_sei(au, codec, [msg], ls)
    offset, inserted = sei.sei_insertion(au, codec, [msg], ls)
    assert out == au[:offset] + inserted + au[offset:]
    assert len(out) == len(au) + len(inserted)
    nals = split(out, ls)
    sei_type = 39 if codec == "h265" else 6
    first_vcl = next(i for i, t in enumerate(expected) if sei.is_vcl(split(au, ls)[i], codec))
    assert types(nals, codec) == expected[:first_vcl] + [sei_type] + expected[first_vcl:]
    assert nals[first_vcl] == sei.build_sei_nal(codec, [msg])
    got = sei.extract_user_data(out, codec, ls)
    assert got[-1] == msg
    assert got[:-1] == sei.extract_user_data(au, codec, ls)  # the encoder's SEI comes first


# --------------------------------------------------------------------------- invalid input

INVALID = [
    ("h264_sei_cut.bin", "h264", None, "extract", r"claims \d+ bytes, only \d+ left"),
    ("h264_sei_cut.bin", "h264", None, "insert", "no VCL NAL unit"),
    ("h264_sei_oversize.bin", "h264", None, "extract", r"claims 764 bytes, only \d+ left"),
    ("h264_forbidden_bit.bin", "h264", None, "extract", "forbidden_zero_bit"),
    ("h264_forbidden_bit.bin", "h264", None, "insert", "forbidden_zero_bit"),
    ("h265_header_cut.bin", "h265", None, "extract", "shorter than its 2-byte header"),
    ("h265_header_cut.bin", "h265", None, "insert", "shorter than its 2-byte header"),
    ("h264_idr_cut.avc", "h264", 4, "extract", "offset 729 claims 1271 bytes, only 1171 left"),
    ("h264_idr_cut.avc", "h264", 4, "split", "offset 729 claims 1271 bytes, only 1171 left"),
    ("h264_idr.avc", "h264", None, "extract", r"has no start code \(00 00 01\)"),
    ("h264_idr.bin", "h264", 2, "extract", "zero-length NAL unit at offset 0"),
    ("h264_idr.bin", "h264", 1, "insert", "zero-length NAL unit at offset 0"),
    ("garbage.bin", "h264", None, "extract", r"no start code \(00 00 01\)"),
    ("garbage.bin", "h265", None, "insert", r"no start code \(00 00 01\)"),
    ("garbage.bin", "h265", 4, "extract", "claims"),
    ("h264_p.bin", "h265", None, "extract", "nuh_temporal_id_plus1 = 0"),
]


def run(op: str, au: bytes, codec: str, ls: int | None):
    if op == "extract":
        return sei.extract_user_data(au, codec, ls)
    if op == "insert":
        return sei.insert_sei(au, codec, [(OUR, b"x")], ls)
    return split(au, ls)


@pytest.mark.parametrize(
    ("name", "codec", "ls", "op", "error"),
    INVALID,
    ids=[f"{r[0]}-{r[3]}-{r[2] or 'annexb'}" for r in INVALID],
)
def test_invalid_access_units_raise_seierror(name, codec, ls, op, error):
    with pytest.raises(SEIError, match=error):
        run(op, fixture(name), codec, ls)


def test_seierror_is_a_valueerror():
    assert issubclass(SEIError, ValueError)


# --------------------------------------------------------------------------- emulation prevention

EPB = [
    ("empty", b"", b""),
    ("no-zeros", b"\x01\x02\x03", b"\x01\x02\x03"),
    ("00-00-00", b"\x00\x00\x00", b"\x00\x00\x03\x00"),
    ("00-00-01", b"\x00\x00\x01", b"\x00\x00\x03\x01"),
    ("00-00-02", b"\x00\x00\x02", b"\x00\x00\x03\x02"),
    ("00-00-03", b"\x00\x00\x03", b"\x00\x00\x03\x03"),
    ("00-00-04-untouched", b"\x00\x00\x04", b"\x00\x00\x04"),
    ("trailing-00-00", b"\x05\x00\x00", b"\x05\x00\x00\x03"),
    ("four-zeros", b"\x00\x00\x00\x00", b"\x00\x00\x03\x00\x00\x03"),
    ("five-zeros", b"\x00" * 5, b"\x00\x00\x03\x00\x00\x03\x00"),
    ("run-resets-after-epb", b"\x00\x00\x01\x00\x00\x01", b"\x00\x00\x03\x01\x00\x00\x03\x01"),
    ("single-zero", b"\x00\x01", b"\x00\x01"),
]


@pytest.mark.parametrize(("rbsp", "escaped"), [c[1:] for c in EPB], ids=[c[0] for c in EPB])
def test_emulation_prevention_table(rbsp, escaped):
    assert sei.add_emulation_prevention(rbsp) == escaped
    assert sei.remove_emulation_prevention(escaped) == rbsp


def test_remove_emulation_prevention_follows_the_spec_loop():
    # 7.3.1: after a removed 03 the zero count restarts, so 00 00 03 00 03 -> 00 00 00 03
    assert sei.remove_emulation_prevention(b"\x00\x00\x03\x00\x03") == b"\x00\x00\x00\x03"
    assert sei.remove_emulation_prevention(bytearray(b"\x00\x00\x03")) == b"\x00\x00"


# --------------------------------------------------------------------------- build

BUILD = [
    ("h264-empty-payload", "h264", OUR, b"", b"\x06\x05\x10" + OUR + b"\x80"),
    ("h265-empty-payload", "h265", OUR, b"", b"\x4e\x01\x05\x10" + OUR + b"\x80"),
    # payloadSize 254 is one byte, 255 is ff 00, 256 is ff 01 (7.3.2.3.1)
    ("size-254", "h264", OUR, b"a" * 238, b"\x06\x05\xfe" + OUR + b"a" * 238 + b"\x80"),
    ("size-255", "h264", OUR, b"a" * 239, b"\x06\x05\xff\x00" + OUR + b"a" * 239 + b"\x80"),
    ("size-256", "h264", OUR, b"a" * 240, b"\x06\x05\xff\x01" + OUR + b"a" * 240 + b"\x80"),
    (
        "size-255-escaped-uuid",
        "h264",
        ZERO_UUID,
        b"a" * 239,
        b"\x06\x05\xff\x00\x00\x03\x01" + ZERO_UUID[2:] + b"a" * 239 + b"\x80",
    ),
    ("size-510", "h265", OUR, b"a" * 494, b"\x4e\x01\x05\xff\xff\x00" + OUR + b"a" * 494 + b"\x80"),
    ("escaped", "h264", OUR, b"\x00\x00\x01", b"\x06\x05\x13" + OUR + b"\x00\x00\x03\x01\x80"),
]


@pytest.mark.parametrize(
    ("codec", "uid", "payload", "nal"), [b[1:] for b in BUILD], ids=[b[0] for b in BUILD]
)
def test_build_sei_nal_bytes(codec, uid, payload, nal):
    assert sei.build_sei_nal(codec, [(uid, payload)]) == nal
    assert sei.parse_sei_nal(nal, codec) == [(uid, payload)]


def test_build_sei_nal_several_messages_in_one_nal():
    msgs = [(OUR, b"one"), (OTHER, b""), (uuid.UUID(bytes=OUR), b"\x00\x00\x00")]
    nal = sei.build_sei_nal("h265", msgs)
    assert nal.startswith(b"\x4e\x01\x05\x13" + OUR + b"one\x05\x10" + OTHER + b"\x05\x13")
    assert sei.parse_sei_nal(nal, "h265") == [(OUR, b"one"), (OTHER, b""), (OUR, b"\x00\x00\x00")]


@pytest.mark.parametrize(
    ("codec", "messages", "error"),
    [
        ("h264", [], "at least one message"),
        ("h264", [(b"short", b"")], "16-byte UUID, got 5 bytes"),
        ("vp8", [(OUR, b"")], "unknown codec 'vp8'"),
    ],
    ids=["no-messages", "short-uuid", "unknown-codec"],
)
def test_build_sei_nal_rejects(codec, messages, error):
    with pytest.raises(SEIError, match=error):
        sei.build_sei_nal(codec, messages)


# --------------------------------------------------------------------------- extract details


def sei_nal_raw(codec: str, rbsp: bytes) -> bytes:
    return {"h264": b"\x06", "h265": b"\x4e\x01"}[codec] + sei.add_emulation_prevention(rbsp)


def test_extract_skips_other_payload_types_in_the_same_nal():
    rbsp = (
        b"\x01\x02\xab\xcd"  # pic_timing, 2 bytes
        + b"\x05\x13"
        + OUR
        + b"abc"
        + b"\xff\x05\x01\x07"  # payloadType 260, 1 byte
        + b"\x06\x01\x84"  # recovery_point
        + b"\x05\x10"
        + OTHER
        + b"\x80"
    )
    au = sei.join_annexb([H264_AUD, sei_nal_raw("h264", rbsp), H264_IDR])
    assert sei.extract_user_data(au, "h264") == [(OUR, b"abc"), (OTHER, b"")]


def test_extract_accepts_sei_without_trailing_bits_and_with_trailing_zero_bytes():
    au = b"\x00\x00\x00\x01\x06\x05\x10" + OUR + b"\x00\x00\x01" + H264_IDR
    assert sei.extract_user_data(au, "h264") == [(OUR, b"")]
    au = b"\x00\x00\x00\x01\x06\x05\x10" + OUR + b"\x80\x00\x00\x00\x00\x00\x01" + H264_IDR
    assert sei.extract_user_data(au, "h264") == [(OUR, b"")]


@pytest.mark.parametrize(
    ("rbsp", "error"),
    [
        (b"", "has no message"),
        (b"\x05", "is truncated"),
        (b"\x05\xff\xff", "is truncated"),
        (b"\x05\x0f" + OUR[:15] + b"\x80", "shorter than its 16-byte UUID"),
        (b"\x05\x20" + OUR + b"\x80", "claims 32 bytes, only 17 left"),
    ],
    ids=["empty", "no-size", "ff-size-runs-out", "uuid-too-short", "size-too-big"],
)
def test_extract_rejects_malformed_sei(rbsp, error):
    au = sei.join_annexb([sei_nal_raw("h264", rbsp) if rbsp else b"\x06", H264_IDR])
    with pytest.raises(SEIError, match=error):
        sei.extract_user_data(au, "h264")


def test_h265_suffix_sei_after_the_slice_is_extracted():
    prefix = sei.build_sei_nal("h265", [(OUR, b"prefix")])
    suffix = b"\x50\x01" + prefix[2:]  # SUFFIX_SEI_NUT = 40
    au = sei.join_annexb([H265_VPS, prefix, H265_IDR, suffix])
    assert sei.extract_user_data(au, "h265") == [(OUR, b"prefix"), (OUR, b"prefix")]
    assert sei.extract_user_data(au, "h265", whole_au=False) == [(OUR, b"prefix")]
    avc = sei.join_length_prefixed([H265_VPS, prefix, H265_IDR, suffix], 2)
    assert sei.extract_user_data(avc, "h265", 2) == [(OUR, b"prefix")] * 2


@pytest.mark.parametrize("ls", [None, 2, 4], ids=["annexb", "len2", "len4"])
def test_h265_after_the_first_slice_only_layer_0_31_suffix_sei_count_by_default(ls):
    def sei_nal(header: bytes, payload: bytes) -> bytes:
        return header + sei.build_sei_nal("h265", [(OTHER, payload)])[2:]

    nals = [
        H265_VPS,
        sei_nal(b"\x4e\x01", b"prefix"),
        H265_IDR,
        sei_nal(b"\x4e\x01", b"late prefix"),  # out of spec after a slice
        sei_nal(b"\x51\x01", b"layer 32"),  # suffix SEI of nuh_layer_id 32
        H265_TRAIL_N,
        sei_nal(b"\x50\x03", b"suffix tid 2"),
    ]
    au = sei.join_annexb(nals) if ls is None else sei.join_length_prefixed(nals, ls)
    got = [p for _, p in sei.extract_user_data(au, "h265", ls)]
    assert got == [b"prefix", b"suffix tid 2"]
    got = [p for _, p in sei.extract_user_data(au, "h265", ls, whole_au=True)]
    assert got == [b"prefix", b"late prefix", b"layer 32", b"suffix tid 2"]


def test_h265_suffix_sei_cut_in_its_header_raises():
    au = sei.join_annexb([H265_IDR]) + SC3 + b"\x50"
    with pytest.raises(SEIError, match="shorter than its 2-byte header"):
        sei.extract_user_data(au, "h265")


def test_h264_sei_after_the_first_slice_is_out_of_spec_and_only_read_on_request():
    late = sei.build_sei_nal("h264", [(OTHER, b"late")])
    au = sei.join_annexb([H264_AUD, H264_IDR, late])
    assert sei.extract_user_data(au, "h264") == []  # 7.4.1.2.3: SEI precedes the first slice
    assert sei.extract_user_data(au, "h264", whole_au=True) == [(OTHER, b"late")]


@pytest.mark.parametrize(
    ("au", "codec"),
    [
        (b"", "h264"),
        (b"\x00\x00\x00", "h265"),
        (b"\x00\x00\x01", "h264"),
        (b"\x00\x00\x00\x01", "h265"),
    ],
    ids=["empty", "zeros", "lone-3-byte-start-code", "lone-4-byte-start-code"],
)
def test_extract_from_empty_access_units(au, codec):
    assert sei.extract_user_data(au, codec) == []
    assert sei.split_annexb(au) == []
    with pytest.raises(SEIError, match="no VCL NAL unit"):
        sei.insert_sei(au, codec, [(OUR, b"")])


# --------------------------------------------------------------------------- insert position

SC3 = b"\x00\x00\x01"
SC4 = b"\x00\x00\x00\x01"


H264_OLD_SEI = sei.build_sei_nal("h264", [(OTHER, b"x")])
H265_OLD_SEI = sei.build_sei_nal("h265", [(OTHER, b"")])


def annexb(*parts: bytes) -> bytes:
    return b"".join(parts)


POSITIONS = [
    # (id, codec, au, offset where the SEI NAL must go)
    (
        "h264-aud-sps-pps-sei-idr",
        "h264",
        annexb(SC4, H264_AUD, SC4, H264_SPS, SC4, H264_PPS, SC4, H264_OLD_SEI, SC4, H264_IDR),
        4 * 4 + len(H264_AUD + H264_SPS + H264_PPS + H264_OLD_SEI),
    ),
    ("h264-slice-first", "h264", annexb(SC4, H264_P), 0),
    ("h264-3-byte-start-code-slice", "h264", annexb(SC4, H264_AUD, SC3, H264_P), 4 + 2),
    ("h264-4-byte-start-code-slice", "h264", annexb(SC4, H264_AUD, SC4, H264_P), 4 + 2),
    (
        "h264-trailing-zeros-before-slice",
        "h264",
        annexb(SC4, H264_AUD, b"\x00\x00", SC4, H264_P),
        8,
    ),
    ("h264-leading-zeros", "h264", annexb(b"\x00\x00", SC4, H264_SPS, SC3, H264_IDR), 6 + 7),
    ("h264-empty-nal-before-slice", "h264", annexb(SC4, H264_AUD, SC3, SC3, H264_IDR), 4 + 2 + 3),
    ("h264-two-slices", "h264", annexb(SC4, H264_PPS, SC3, H264_IDR, SC3, H264_IDR), 4 + 4),
    ("h264-nal-type-0", "h264", annexb(SC4, b"\x00\x42", SC3, H264_P), 4 + 2),
    (
        "h265-aud-vps-sps-pps-sei-idr",
        "h265",
        annexb(
            SC4,
            H265_AUD,
            SC4,
            H265_VPS,
            SC4,
            H265_SPS,
            SC4,
            H265_PPS,
            SC4,
            H265_OLD_SEI,
            SC3,
            H265_IDR,
        ),
        5 * 4 + len(H265_AUD + H265_VPS + H265_SPS + H265_PPS + H265_OLD_SEI),
    ),
    ("h265-trail-n-header-00-01", "h265", annexb(SC4, H265_PPS, SC3, H265_TRAIL_N), 4 + 5),
    (
        "h265-empty-nal-then-trail-n",
        "h265",
        annexb(SC4, H265_PPS, SC3, SC4, H265_TRAIL_N),
        4 + 5 + 3,
    ),
]


@pytest.mark.parametrize(
    ("codec", "au", "offset"), [p[1:] for p in POSITIONS], ids=[p[0] for p in POSITIONS]
)
@pytest.mark.parametrize("framing", ["annexb", "len1", "len2", "len4"])
def test_insert_position(codec, au, offset, framing):
    nals = sei.split_annexb(au)
    first_vcl = next(i for i, n in enumerate(nals) if sei.is_vcl(n, codec))
    msgs = [(OUR, b"\x00\x00\x00meta"), (OTHER, b"")]
    if framing != "annexb":
        ls = int(framing[3:])
        au = sei.join_length_prefixed(nals, ls)
        offset = sum(ls + len(n) for n in nals[:first_vcl])
    else:
        ls = None
    assert sei.find_first_vcl_offset(au, codec, ls) == offset
    out = sei.insert_sei(au, codec, msgs, ls)
    nal = sei.build_sei_nal(codec, msgs)
    head = SC4 if ls is None else len(nal).to_bytes(ls, "big")
    assert out == au[:offset] + head + nal + au[offset:]
    assert split(out, ls) == nals[:first_vcl] + [nal] + nals[first_vcl:]
    assert sei.extract_user_data(out, codec, ls)[-2:] == msgs


def test_insert_accepts_bytearray_and_memoryview_and_returns_bytes():
    au = annexb(SC4, H264_SPS, SC4, H264_IDR)
    want = sei.insert_sei(au, "h264", [(OUR, b"m")])
    assert sei.insert_sei(bytearray(au), "h264", [(OUR, b"m")]) == want
    out = sei.insert_sei(memoryview(au), "h264", [(memoryview(OUR), bytearray(b"m"))])
    assert type(out) is bytes and out == want


def test_insert_with_no_messages_returns_the_au_unchanged():
    au = annexb(SC4, H264_IDR)
    assert sei.insert_sei(au, "h264", []) == au


@pytest.mark.parametrize(
    ("au", "codec", "ls", "messages", "error"),
    [
        (annexb(SC4, H264_SPS, SC4, H264_PPS), "h264", None, [(OUR, b"")], "no VCL NAL unit"),
        (sei.join_length_prefixed([H265_VPS], 4), "h265", 4, [(OUR, b"")], "no VCL NAL unit"),
        (
            sei.join_length_prefixed([H264_IDR], 1),
            "h264",
            1,
            [(OUR, b"a" * 300)],
            "does not fit a 1-byte length",
        ),
        (
            sei.join_length_prefixed([H264_IDR], 2),
            "h264",
            2,
            [(OUR, b"a" * 65536)],
            "does not fit a 2-byte length",
        ),
        (sei.join_length_prefixed([H264_IDR], 4), "h264", 3, [(OUR, b"")], "must be 1, 2 or 4"),
    ],
    ids=["annexb-no-slice", "hvc-no-slice", "len1-too-big", "len2-too-big", "len3"],
)
def test_insert_rejects(au, codec, ls, messages, error):
    with pytest.raises(SEIError, match=error):
        sei.insert_sei(au, codec, messages, ls)


# --------------------------------------------------------------------------- headers, codec data

NAL_TYPES = [
    ("h264-sps", b"\x67", "h264", 7, False),
    ("h264-sei", b"\x06", "h264", 6, False),
    ("h264-non-idr", b"\x41", "h264", 1, True),
    ("h264-idr", b"\x65", "h264", 5, True),
    ("h264-type-0", b"\x00", "h264", 0, False),
    ("h264-slice-ext-20", b"\x14", "h264", 20, False),
    ("h265-trail-n", b"\x00\x01", "h265", 0, True),
    ("h265-rsv-vcl-31", b"\x3e\x01", "h265", 31, True),
    ("h265-vps", b"\x40\x01", "h265", 32, False),
    ("h265-prefix-sei", b"\x4e\x01", "h265", 39, False),
    ("h265-suffix-sei", b"\x50\x01", "h265", 40, False),
]


@pytest.mark.parametrize(
    ("nal", "codec", "t", "vcl"), [n[1:] for n in NAL_TYPES], ids=[n[0] for n in NAL_TYPES]
)
def test_nal_type_and_is_vcl(nal, codec, t, vcl):
    assert sei.nal_type(nal, codec) == t
    assert sei.is_vcl(nal, codec) is vcl


@pytest.mark.parametrize(
    ("nal", "codec", "error"),
    [
        (b"", "h264", "shorter than its header"),
        (b"\x40", "h265", "shorter than its header"),
        (b"\xe7", "h264", "forbidden_zero_bit"),
        (b"\x40\x00", "h265", "nuh_temporal_id_plus1 = 0"),
    ],
    ids=["empty", "h265-one-byte", "forbidden-bit", "tid-0"],
)
def test_nal_type_rejects(nal, codec, error):
    with pytest.raises(SEIError, match=error):
        sei.nal_type(nal, codec)


def avcc(byte4: int) -> bytes:
    return bytes([1, 0x42, 0xC0, 0x0A, byte4, 0xE1, 0x00])


def hvcc(byte21: int) -> bytes:
    return bytes([1] + [0] * 20 + [byte21, 0])


CODEC_DATA = [
    ("avcC-4", avcc(0xFF), "h264", 4),
    ("avcC-2", avcc(0xFD), "h264", 2),
    ("avcC-1", avcc(0xFC), "h264", 1),
    ("hvcC-4", hvcc(0x0F), "h265", 4),
    ("hvcC-2", hvcc(0x0D), "h265", 2),
    ("hvcC-1", hvcc(0x0C), "h265", 1),
    ("avcC-size-3", avcc(0xFE), "h264", "invalid NAL length size of 3"),
    ("avcC-short", avcc(0xFF)[:5], "h264", r"too short \(5 bytes, need 7\)"),
    ("hvcC-short", hvcc(0x0F)[:22], "h265", r"too short \(22 bytes, need 23\)"),
    ("annexb-not-avcC", SC4 + H264_SPS, "h264", "not avcC codec data"),
    ("hvcC-unknown-codec", hvcc(0x0F), "av1", "unknown codec"),
]


@pytest.mark.parametrize(
    ("cd", "codec", "expected"), [c[1:] for c in CODEC_DATA], ids=[c[0] for c in CODEC_DATA]
)
def test_length_size_from_codec_data(cd, codec, expected):
    if isinstance(expected, int):
        assert sei.length_size_from_codec_data(cd, codec) == expected
    else:
        with pytest.raises(SEIError, match=expected):
            sei.length_size_from_codec_data(cd, codec)


# --------------------------------------------------------------------------- framing


def test_split_annexb_keeps_nal_bytes_and_gives_zeros_to_start_codes():
    data = b"\x00" + SC4 + H264_SPS + b"\x00\x00" + SC3 + H264_PPS + SC3 + H264_IDR + b"\x00\x00"
    assert sei.split_annexb(data) == [H264_SPS, H264_PPS, H264_IDR]
    assert sei.join_annexb([H264_SPS, H264_PPS]) == SC4 + H264_SPS + SC4 + H264_PPS


@pytest.mark.parametrize("ls", [1, 2, 4])
def test_length_prefixed_round_trip(ls):
    nals = [H264_SPS, H264_PPS, H264_IDR]
    data = sei.join_length_prefixed(nals, ls)
    assert data[:ls] == len(H264_SPS).to_bytes(ls, "big")
    assert sei.split_length_prefixed(data, ls) == nals


@pytest.mark.parametrize(
    ("fn", "error"),
    [
        (lambda: sei.join_annexb([b""]), "empty NAL unit"),
        (lambda: sei.join_length_prefixed([b""], 4), "empty NAL unit"),
        (lambda: sei.join_length_prefixed([b"a" * 256], 1), "256 bytes does not fit"),
        (lambda: sei.split_length_prefixed(b"\x00", 2), "truncated NAL length prefix"),
        (lambda: sei.split_length_prefixed(b"\x00\x00\x00\x05\x65", 4), "claims 5 bytes, only 1"),
        (lambda: sei.split_annexb(b"\x09" + SC4 + H264_IDR), "does not begin with a start code"),
    ],
    ids=["annexb-empty", "prefixed-empty", "len1-overflow", "short-prefix", "short-nal", "stray"],
)
def test_framing_rejects(fn, error):
    with pytest.raises(SEIError, match=re.compile(error)):
        fn()
