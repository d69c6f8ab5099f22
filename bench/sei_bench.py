"""SEI core cost: µs per insert / extract on a 100 KB access unit, bytes of overhead per frame.

    .venv/bin/python bench/sei_bench.py [--quick]

The access units are real x264 / x265 headers (AUD/VPS/SPS/PPS + the encoder's own SEI, from
tests/unit/fixtures) followed by one 100 KB slice of escaped random bytes (statistically like
CABAC output: no start code inside). References measured in the same run: copying the AU once
(``bytes`` slice) and scanning it once for a start code (``bytes.find``) — the floor for any
pure-Python framing code that must produce a new AU or look at every byte.
Goal (issue 2): <= 20 µs per insert and per extract.
"""

from __future__ import annotations

import random
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from framecast import sei  # noqa: E402
from framecast.metadata import FRAMECAST_UUID, encode_metadata, stamps  # noqa: E402

FIXTURES = ROOT / "tests" / "unit" / "fixtures"
AU_SIZE = 100_000
PAYLOAD = bytes(range(64))  # 64 bytes, starts with 00 01: exercises escaping


def access_unit(codec: str, ls: int | None) -> bytes:
    real = sei.split_annexb((FIXTURES / f"{codec}_idr.bin").read_bytes())
    headers = [n for n in real if not sei.is_vcl(n, codec)]
    slice_header = real[-1][:2] if codec == "h265" else real[-1][:1]
    head = sum(len(n) + 4 for n in headers) + 4 + len(slice_header) + 1
    body = sei.add_emulation_prevention(random.Random(1).randbytes(AU_SIZE - head))
    nals = headers + [slice_header + body[: AU_SIZE - head] + b"\x80"]
    return sei.join_annexb(nals) if ls is None else sei.join_length_prefixed(nals, ls)


def per_call_us(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    number = 2000 if "--quick" in sys.argv else 20000
    msg = [(FRAMECAST_UUID, PAYLOAD)]
    rows = []
    for codec in ("h264", "h265"):
        for ls in (None, 4):
            au = access_unit(codec, ls)
            with_sei = sei.insert_sei(au, codec, msg, ls)
            assert sei.extract_user_data(with_sei, codec, ls)[-1] == msg[0]
            copy = per_call_us(lambda au=au: au[1:], number)
            start = sei.find_first_vcl_offset(au, codec, ls) + 5  # inside the slice: no match
            assert au.find(b"\x00\x00\x01", start) == -1
            scan = per_call_us(lambda au=au, s=start: au.find(b"\x00\x00\x01", s), number)
            ins = per_call_us(lambda au=au, ls=ls, c=codec: sei.insert_sei(au, c, msg, ls), number)
            where = per_call_us(
                lambda au=au, ls=ls, c=codec: sei.sei_insertion(au, c, msg, ls), number
            )
            ext = per_call_us(
                lambda w=with_sei, ls=ls, c=codec: sei.extract_user_data(w, c, ls), number
            )
            prefix = per_call_us(
                lambda w=with_sei, ls=ls, c=codec: sei.extract_user_data(w, c, ls, whole_au=False),
                number,
            )
            whole = per_call_us(
                lambda w=with_sei, ls=ls, c=codec: sei.extract_user_data(w, c, ls, whole_au=True),
                number,
            )
            rows.append(
                {
                    "codec": codec,
                    "framing": "annexb" if ls is None else f"len{ls}",
                    "insert": ins,
                    "splice-pt": where,
                    "extract": ext,
                    "prefix-only": prefix,
                    "extract-all": whole,
                    "copy-ref": copy,
                    "scan-ref": scan,
                    "insert/copy": ins / copy,
                    "extract/scan": ext / scan,
                    "overhead B": len(with_sei) - len(au),
                }
            )

    print(
        f"SEI core on a {AU_SIZE // 1000} KB access unit, 64-byte payload, CPython "
        f"{sys.version.split()[0]} (µs per call, best of 5 × {number})"
    )
    head = list(rows[0])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")
    env = encode_metadata(stamps(123456, 3, 4_116_666_666, 1_763_853_000_000_000_000))
    nal = sei.build_sei_nal("h264", [(FRAMECAST_UUID, env)])
    print(
        f"\nOverhead per frame, 64-byte payload: H.264 {rows[0]['overhead B']} B, "
        f"H.265 {rows[2]['overhead B']} B "
        "(start code or length 4 + NAL header + type + size + 16-byte UUID + payload + 0x80)."
    )
    print(
        f"A stamps-only msgpack envelope is {len(env)} bytes -> {len(nal) + 4} B per H.264 frame."
    )
    worst = max(max(r["insert"], r["extract"]) for r in rows)
    print(
        f"Worst insert/extract: {worst:.2f} µs (goal <= 20 µs): {'PASS' if worst <= 20 else 'OVER'}"
    )


if __name__ == "__main__":
    main()
