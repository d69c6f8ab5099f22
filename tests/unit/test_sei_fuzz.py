"""framecast.sei: property-based round trips (hypothesis) and a mutation fuzz of the extractor."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framecast import sei
from framecast.sei import SEIError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OUR = bytes.fromhex("54bc3258c96344b9bf5d215c5823bc0e")
SC3 = b"\x00\x00\x01"
SC4 = b"\x00\x00\x00\x01"
FRAMINGS = [None, 1, 2, 4]

# Payload pieces that need emulation prevention (or look like start codes) once escaped.
RUNS = [b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02", b"\x00\x00\x03", b"\x00\x00", b"\x00"]
payloads = st.lists(st.one_of(st.binary(max_size=6), st.sampled_from(RUNS)), max_size=12).map(
    b"".join
)
uuids = st.one_of(st.binary(min_size=16, max_size=16), st.just(OUR), st.just(bytes(16)))
messages = st.lists(st.tuples(uuids, payloads), min_size=1, max_size=4)
codecs = st.sampled_from(["h264", "h265"])

PARAMETER_SETS = {
    "h264": [b"\x09\xf0", b"\x67\x42\xc0\x0a\x8c\x8d\x40", b"\x68\xce\x3c\x80"],
    "h265": [
        b"\x46\x01\x10",
        b"\x40\x01\x0c\x01\xff\xff",
        b"\x42\x01\x01\x01\x60",
        b"\x44\x01\xc1",
    ],
}


@st.composite
def vcl_nals(draw, codec: str) -> bytes:
    body = sei.add_emulation_prevention(draw(st.binary(max_size=40))) + b"\x80"
    if codec == "h264":
        return bytes([draw(st.integers(0, 3)) << 5 | draw(st.sampled_from([1, 5]))]) + body
    return bytes([draw(st.integers(0, 31)) << 1, 1]) + body  # type 0 gives header 00 01


@st.composite
def access_units(draw, max_payload: int | None = None):
    """(codec, nals, prefix messages, suffix messages, first VCL index)."""
    codec = draw(codecs)
    params = draw(st.lists(st.sampled_from(PARAMETER_SETS[codec]), max_size=3))
    msgs_st = messages
    if max_payload is not None:  # keep NALs within a 1-byte length
        msgs_st = st.lists(
            st.tuples(uuids, payloads.filter(lambda p: len(p) < max_payload)),
            min_size=1,
            max_size=2,
        )
    old = draw(st.lists(msgs_st, max_size=2))
    slices = draw(st.lists(vcl_nals(codec), min_size=1, max_size=3))
    suffix = draw(st.lists(msgs_st, max_size=2)) if codec == "h265" else []
    nals = params + [sei.build_sei_nal(codec, m) for m in old]
    first_vcl = len(nals)
    nals += slices + [b"\x50\x01" + sei.build_sei_nal(codec, m)[2:] for m in suffix]
    return codec, nals, [x for m in old for x in m], [x for m in suffix for x in m], first_vcl


def frame(draw, nals: list[bytes], ls: int | None) -> bytes:
    if ls is not None:
        return sei.join_length_prefixed(nals, ls)
    # random mix of 3- and 4-byte start codes, and trailing zero bytes
    out = b""
    for i, nal in enumerate(nals):
        sc = SC4 if i == 0 else draw(st.sampled_from([SC3, SC4, b"\x00\x00" + SC4]))
        out += sc + nal
    return out


# --------------------------------------------------------------------------- properties


@given(st.binary(max_size=300) | payloads)
def test_emulation_prevention_round_trip(rbsp):
    escaped = sei.add_emulation_prevention(rbsp)
    assert sei.remove_emulation_prevention(escaped) == rbsp
    for bad in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
        assert bad not in escaped
    assert not escaped.endswith(b"\x00\x00")  # a final 00 00 gets its 03 too


@given(codecs, messages)
def test_build_then_parse(codec, msgs):
    nal = sei.build_sei_nal(codec, msgs)
    assert sei.nal_type(nal, codec) == (39 if codec == "h265" else 6)
    assert sei.parse_sei_nal(nal, codec) == msgs
    # one NAL, properly escaped: it survives Annex B framing unchanged
    assert sei.split_annexb(SC3 + nal + SC3 + nal) == [nal, nal]


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(st.data())
def test_insert_extract_round_trip(data):
    ls = data.draw(st.sampled_from(FRAMINGS), label="length_size")
    codec, nals, old, suffix, first_vcl = data.draw(
        access_units(max_payload=40 if ls == 1 else None), label="au"
    )
    new = data.draw(
        messages
        if ls != 1
        else st.lists(st.tuples(uuids, st.binary(max_size=30)), min_size=1, max_size=3),
        label="messages",
    )
    au = frame(data.draw, nals, ls)
    # our own parser agrees with how the AU was built
    assert sei.extract_user_data(au, codec, ls) == old + suffix
    out = sei.insert_sei(au, codec, new, ls)
    # every other byte is intact: removing the inserted bytes gives the input back
    offset, inserted = sei.sei_insertion(au, codec, new, ls)
    assert offset == sei.find_first_vcl_offset(au, codec, ls)
    assert out[:offset] == au[:offset] and out[offset + len(inserted) :] == au[offset:]
    # one SEI NAL, right before the first slice
    sei_nal = sei.build_sei_nal(codec, new)
    split = sei.split_annexb(out) if ls is None else sei.split_length_prefixed(out, ls)
    assert split == nals[:first_vcl] + [sei_nal] + nals[first_vcl:]
    assert sei.extract_user_data(out, codec, ls) == old + new + suffix


@given(st.data())
def test_annexb_split_join_round_trip(data):
    codec, nals, *_ = data.draw(access_units())
    au = frame(data.draw, nals, None)
    assert sei.split_annexb(au) == nals
    assert sei.split_annexb(sei.join_annexb(nals)) == nals
    for ls in (2, 4):
        assert sei.split_length_prefixed(sei.join_length_prefixed(nals, ls), ls) == nals


def pattern_payload(size: int) -> bytes:
    """Deterministic payload full of start-code-like runs."""
    unit = b"\x00\x00\x00\x00\x01\x00\x00\x02\x00\x00\x03\xff\x00\x00"
    return (unit * (size // len(unit) + 1))[:size]


SIZES = [0, 1, 238, 239, 240, 255, 256, 65535, 65 * 1024]


@pytest.mark.parametrize("size", SIZES, ids=[f"payload-{s}" for s in SIZES])
@pytest.mark.parametrize("ls", FRAMINGS, ids=["annexb", "len1", "len2", "len4"])
@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_payload_sizes(codec, ls, size):
    payload = pattern_payload(size)
    slice_ = b"\x65\x88\x80" if codec == "h264" else b"\x26\x01\xaf\x80"
    au = sei.join_annexb([slice_]) if ls is None else sei.join_length_prefixed([slice_], ls)
    nal_len = len(sei.build_sei_nal(codec, [(OUR, payload)]))
    if ls is not None and nal_len >= 1 << (8 * ls):
        with pytest.raises(SEIError, match=f"does not fit a {ls}-byte length"):
            sei.insert_sei(au, codec, [(OUR, payload)], ls)
        return
    out = sei.insert_sei(au, codec, [(OUR, payload), (OUR, b"")], ls)
    assert sei.extract_user_data(out, codec, ls) == [(OUR, payload), (OUR, b"")]


# --------------------------------------------------------------------------- fuzz

FUZZ_CASES = 10_000


def corpus() -> list[bytes]:
    real = [
        p.read_bytes() for p in sorted(FIXTURES.iterdir()) if p.suffix in (".bin", ".avc", ".hvc1")
    ]
    made = []
    for codec in ("h264", "h265"):
        nals = PARAMETER_SETS[codec] + [
            sei.build_sei_nal(codec, [(OUR, b"\x00\x00\x01meta"), (bytes(16), b"")]),
            b"\x65\x88\x84\x00\x00\x03\x01\x80" if codec == "h264" else b"\x26\x01\xaf\x80",
        ]
        made.append(sei.join_annexb(nals))
        made += [sei.join_length_prefixed(nals, ls) for ls in (1, 2, 4)]
    return real + made


def mutate(rng: random.Random, seed: bytes) -> bytes:
    b = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randint(0, len(b))
        if op == 0 and b:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1:  # truncate
            del b[pos:]
        elif op == 2:  # drop a range
            del b[pos : pos + rng.randint(1, 64)]
        elif op == 3:  # insert a start code, a length-looking word, ff run or zero run
            b[pos:pos] = rng.choice(
                [
                    SC3,
                    SC4,
                    b"\xff" * rng.randint(1, 600),
                    bytes(5),
                    b"\x00\x00\x01\x06\x05",
                    b"\x00\x00\x01\x4e\x01\x05\xff",
                    b"\xff\xff\xff\xff",
                    b"\x00\x00\x00\x02\x06\x05",
                ]
            )
        elif op == 4:  # duplicate a range
            end = min(len(b), pos + rng.randint(1, 128))
            b[pos:pos] = b[pos:end]
        elif op == 5 and b:  # small arithmetic change (sizes off by a few)
            i = rng.randrange(len(b))
            b[i] = (b[i] + rng.choice([-2, -1, 1, 2])) % 256
        else:  # random tail
            b += rng.randbytes(rng.randint(0, 32))
    return bytes(b)


def exercise(data: bytes) -> tuple[int, int]:
    """Run every parser entry point on ``data``: (SEIErrors raised, messages extracted)."""
    errors = found = 0
    for codec in ("h264", "h265"):
        for ls in FRAMINGS:
            try:
                got = sei.extract_user_data(data, codec, ls, whole_au=True)
            except SEIError:
                errors += 1
            else:
                assert all(isinstance(u, bytes) and len(u) == 16 for u, _ in got)
                found += len(got)
            try:
                offset = sei.find_first_vcl_offset(data, codec, ls)
            except SEIError:
                errors += 1
            else:
                assert 0 <= offset < len(data)
    return errors, found


def test_fuzz_extractor_raises_only_seierror():
    rng = random.Random(20261122)
    seeds = corpus()
    errors = found = 0
    for i in range(FUZZ_CASES):
        if i % 4 == 0:
            data = rng.randbytes(rng.randint(0, 512))
            if rng.random() < 0.5:  # random data that at least starts like Annex B
                data = SC4 + data
        else:
            data = mutate(rng, rng.choice(seeds))
        e, f = exercise(data)
        errors += e
        found += f
    # the fuzz reached both outcomes: many inputs rejected, many SEI messages still parsed
    assert 0 < errors < FUZZ_CASES * 16
    assert found > FUZZ_CASES // 20


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_hypothesis_random_bytes_raise_only_seierror(data):
    exercise(data)
    exercise(SC4 + data)
