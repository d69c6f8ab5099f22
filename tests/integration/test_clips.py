"""The clip maker is the ground truth for other tests: check it with an independent decoder."""

from pathlib import Path

import av
import pytest

from framecast.gst.clips import make_clip
from framecast.pixelindex import read_index


@pytest.mark.parametrize(
    "codec,container,bframes",
    [("h264", "mp4", 2), ("h265", "mkv", 2), ("h264", "ts", 0)],
    ids=["h264-mp4-bframes", "h265-mkv-bframes", "h264-ts"],
)
def test_every_frame_shows_its_index(tmp_path: Path, codec: str, container: str,
                                     bframes: int) -> None:
    clip = make_clip(tmp_path / f"c.{container}", codec=codec, container=container, frames=45,
                     bframes=bframes)
    with av.open(str(clip)) as f:
        indices = [read_index(fr.to_ndarray(format="rgb24")) for fr in f.decode(video=0)]
    assert indices == list(range(45))
