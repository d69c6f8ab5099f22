"""Independent read-back of framecast SEI with PyAV (FFmpeg's parser), for the proof tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import av

from framecast.metadata import FRAMECAST_UUID, decode_metadata
from framecast.pixelindex import read_index


@dataclass
class AvFrame:
    pixel_index: int
    metadata: list[dict[str, Any]] = field(default_factory=list)
    other_uuids: list[bytes] = field(default_factory=list)


def sei_of(frame: av.VideoFrame) -> tuple[list[dict[str, Any]], list[bytes]]:
    """(our decoded envelopes, UUIDs of other user-data-unregistered SEI) of a decoded frame."""
    ours, others = [], []
    for sd in frame.side_data:
        if "UNREGISTERED" not in str(getattr(sd, "type", "")).upper():
            continue
        data = bytes(sd)
        if data[:16] == FRAMECAST_UUID:
            ours.append(decode_metadata(data[16:]))
        else:
            others.append(data[:16])
    return ours, others


def av_frames(url: str, count: int | None = None, **open_kw: Any) -> Iterator[AvFrame]:
    """Decode ``url`` (file or rtsp://) with PyAV; yields pixel index + SEI per frame."""
    with av.open(url, **open_kw) as container:
        for n, frame in enumerate(container.decode(video=0)):
            if count is not None and n >= count:
                return
            ours, others = sei_of(frame)
            yield AvFrame(read_index(frame.to_ndarray(format="rgb24")), ours, others)


def write_index_sidecar(path: Any, frames: int) -> None:
    """Sidecar whose line i is {"index": i}."""
    with open(path, "w") as f:
        for i in range(frames):
            f.write(f'{{"index": {i}}}\n')
