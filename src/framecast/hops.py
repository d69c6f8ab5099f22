"""How a relay keeps the origin's metadata (pure: no GStreamer).

A relayed framecast (or Publisher) stream already carries the origin's envelope: its
``seq``/``wallclock_ns`` say when the frame was captured or sent, which is what a viewer needs
to know the frame's true age. So a relay never adds a second envelope beside it (a reader would
have to guess which one is the truth) and never overwrites it: it takes the origin's envelope
out of the access unit (:func:`take_origin`) and its injector writes it back with the relay's
own stamps appended to a ``hops`` list (:func:`with_hop`), one entry per relay, first relay
first. A camera without framecast metadata gets the relay's stamps at the top level, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from framecast import sei
from framecast.metadata import FRAMECAST_UUID, MetadataError, decode_metadata

HOPS = "hops"
# what makes an envelope an origin's: a framecast injector's stamps
ORIGIN_KEYS = ("seq", "wallclock_ns")


def _sei_types(codec: str) -> tuple[int, ...]:
    return (sei.H264_SEI,) if codec == "h264" else (sei.H265_PREFIX_SEI, sei.H265_SUFFIX_SEI)


def take_origin(au: bytes, codec: sei.Codec) -> tuple[bytes, dict[str, Any] | None]:
    """(``au`` without the origin's framecast envelope, that envelope) of an Annex B AU.

    Only an SEI NAL made of user-data messages alone (what an injector writes) is rewritten;
    its other messages (a camera's, re-emitted by the origin) stay, byte for byte. An AU
    without a decodable envelope comes back as it was, with None.
    """
    if FRAMECAST_UUID not in au:  # C-speed scan: the common case of a plain camera
        return au, None
    try:
        nals = sei.split_annexb(au)
    except sei.SEIError:
        return au, None
    origin: dict[str, Any] | None = None
    out: list[bytes] = []
    changed = False
    for nal in nals:
        hdr = 2 if codec == "h265" else 1
        if origin is None and len(nal) > hdr and nal_type(nal, codec) in _sei_types(codec):
            try:
                messages = sei.parse_sei_nal(nal, codec)
                pure = bool(messages) and nal[hdr:] == pure_body(codec, messages)
            except sei.SEIError:
                messages, pure = [], False
            found = _first_envelope(messages) if pure else None
            if found is not None:
                origin, index = found
                rest = messages[:index] + messages[index + 1:]
                if rest:
                    out.append(nal[:hdr] + pure_body(codec, rest))
                changed = True
                continue
        out.append(nal)
    if not changed:
        return au, None
    return sei.join_annexb(out), origin


def nal_type(nal: bytes, codec: sei.Codec) -> int:
    try:
        return sei.nal_type(nal, codec)
    except sei.SEIError:
        return -1


def pure_body(codec: sei.Codec, messages: list[tuple[bytes, bytes]]) -> bytes:
    """An SEI NAL's bytes after its header when it holds exactly ``messages``."""
    return sei.build_sei_nal(codec, messages)[2 if codec == "h265" else 1:]


def _first_envelope(messages: list[tuple[bytes, bytes]]) -> tuple[dict[str, Any], int] | None:
    for i, (uid, payload) in enumerate(messages):
        if uid != FRAMECAST_UUID:
            continue
        try:
            env = decode_metadata(payload)
        except MetadataError:
            continue  # a broken envelope passes through untouched, like any foreign SEI
        if all(k in env for k in ORIGIN_KEYS):
            return env, i
    return None


def with_hop(user: Mapping[str, Any], stamps: Mapping[str, Any],
             via: str | None) -> dict[str, Any]:
    """The envelope a relay writes: the origin's (``user`` holds it) untouched, the relay's
    ``stamps`` (plus ``via``: its mount) appended to ``hops``; without an origin (or outside a
    relay: ``via`` None), the stamps at the top level, over the user fields."""
    if via is None or not all(k in user for k in ORIGIN_KEYS) or not stamps:
        return {**user, **stamps}
    hops = user.get(HOPS)
    before = list(hops) if isinstance(hops, list) else []
    return {**user, HOPS: [*before, {"via": via, **stamps}]}
