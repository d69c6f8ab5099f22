"""The framecast metadata envelope carried in SEI user data unregistered — pure Python.

An SEI message is ``FRAMECAST_UUID`` (16 bytes) followed by the envelope: a msgpack map
(default) or a UTF-8 JSON object. A reader tells them apart by the first byte: ``{`` is JSON,
a msgpack map starts with 0x80-0x8F, 0xDE or 0xDF. The envelope is one flat map holding the
stamps (``seq``, ``loop``, ``pts_ns``, ``wallclock_ns``) beside the user's fields.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import msgpack

from .errors import MetadataError, MetadataTooLarge
from .sei import Buffer, Codec, extract_user_data

__all__ = [
    "FRAMECAST_UUID",
    "FRAMECAST_UUID_STR",
    "DEFAULT_LIMIT",
    "MetadataError",
    "MetadataTooLarge",
    "encode_metadata",
    "decode_metadata",
    "metadata_message",
    "stamps",
    "framecast_messages",
]

FRAMECAST_UUID_STR = "54bc3258-c963-44b9-bf5d-215c5823bc0e"
FRAMECAST_UUID: bytes = uuid.UUID(FRAMECAST_UUID_STR).bytes
DEFAULT_LIMIT = 65536

Format = Literal["msgpack", "json"]

# First bytes of a msgpack map: fixmap, map16, map32.
_MSGPACK_MAP_FIRST = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}
_JSON_FIRST = frozenset(b"{ \t\r\n")


def _check_keys(d: Mapping[Any, Any]) -> None:
    for k in d:
        if not isinstance(k, str):
            raise MetadataError(f"metadata keys must be strings, got {type(k).__name__} {k!r}")


def encode_metadata(
    d: Mapping[str, Any], fmt: Format = "msgpack", limit: int | None = DEFAULT_LIMIT
) -> bytes:
    """Encode one frame's metadata map. ``limit`` None disables the size check."""
    if not isinstance(d, Mapping):
        raise MetadataError(f"metadata must be a mapping, got {type(d).__name__}")
    _check_keys(d)
    try:
        if fmt == "msgpack":
            data: bytes = msgpack.packb(dict(d), use_bin_type=True)
        elif fmt == "json":
            data = json.dumps(
                dict(d), ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
        else:
            raise MetadataError(f"unknown metadata format {fmt!r} (expected 'msgpack' or 'json')")
    except MetadataError:
        raise
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise MetadataError(f"metadata is not serialisable as {fmt}: {exc}") from None
    if limit is not None and len(data) > limit:
        raise MetadataTooLarge(len(data), limit)
    return data


def decode_metadata(b: Buffer) -> dict[str, Any]:
    """Decode an envelope (msgpack or JSON, told apart by the first byte) into a dict."""
    data = bytes(b)
    if not data:
        raise MetadataError("metadata is empty")
    first = data[0]
    try:
        if first in _JSON_FIRST:
            value = json.loads(data.decode("utf-8"))
        elif first in _MSGPACK_MAP_FIRST:
            value = msgpack.unpackb(data, raw=False)
        else:
            raise MetadataError(
                f"metadata is neither a msgpack map nor JSON (first byte 0x{first:02x})"
            )
    except MetadataError:
        raise
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as exc:
        raise MetadataError(f"metadata does not decode: {exc}") from None
    if not isinstance(value, dict):
        raise MetadataError(f"metadata is a {type(value).__name__}, not a map")
    _check_keys(value)
    return value


def metadata_message(
    d: Mapping[str, Any], fmt: Format = "msgpack", limit: int | None = DEFAULT_LIMIT
) -> tuple[bytes, bytes]:
    """``(FRAMECAST_UUID, envelope)`` ready for :func:`framecast.sei.insert_sei`."""
    return FRAMECAST_UUID, encode_metadata(d, fmt, limit)


def stamps(seq: int, loop: int, pts_ns: int, wallclock_ns: int | None = None) -> dict[str, int]:
    """The standard stamp fields; ``wallclock_ns`` defaults to now (UTC ns since the epoch)."""
    if wallclock_ns is None:
        wallclock_ns = time.time_ns()
    for name, value in (
        ("seq", seq),
        ("loop", loop),
        ("pts_ns", pts_ns),
        ("wallclock_ns", wallclock_ns),
    ):
        if not isinstance(value, int) or isinstance(value, bool):
            raise MetadataError(f"stamp {name} must be an int, got {value!r}")
    return {"seq": seq, "loop": loop, "pts_ns": pts_ns, "wallclock_ns": wallclock_ns}


def framecast_messages(
    au: Buffer, codec: Codec, length_size: int | None = None
) -> tuple[list[dict[str, Any]], list[tuple[bytes, bytes]]]:
    """Split an access unit's user data into (our decoded envelopes, other raw messages).

    A message under ``FRAMECAST_UUID`` that does not decode is returned raw, not raised.
    A malformed access unit still raises :class:`framecast.sei.SEIError`.
    """
    return split_messages(extract_user_data(au, codec, length_size))


def split_messages(
    messages: Iterable[tuple[bytes, bytes]],
) -> tuple[list[dict[str, Any]], list[tuple[bytes, bytes]]]:
    """(our decoded envelopes, other raw messages) from (uuid, payload) pairs; ours that do
    not decode count as raw."""
    ours: list[dict[str, Any]] = []
    raw: list[tuple[bytes, bytes]] = []
    for uid, payload in messages:
        if uid == FRAMECAST_UUID:
            try:
                ours.append(decode_metadata(payload))
                continue
            except MetadataError:
                pass
        raw.append((uid, payload))
    return ours, raw
