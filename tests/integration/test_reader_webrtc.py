"""framecast.open("webrtc://…"): WHEP consumer → frames with metadata (run under netns-run)."""

from __future__ import annotations

import asyncio

import pytest
from test_webrtc_server import demo, serving

import framecast
from framecast.reader import Frame

pytestmark = pytest.mark.timeout(120)


def test_open_webrtc_url_decodes_frames_with_their_metadata() -> None:
    async def main() -> list[Frame]:
        async with serving(demo()) as (_bridge, srv):
            url = f"webrtc://127.0.0.1:{srv.port}/demo"

            def read() -> list[Frame]:
                with framecast.open(url, decode=True, timeout=15) as reader:
                    return [f for _, f in zip(range(40), reader, strict=False)]

            return await asyncio.get_running_loop().run_in_executor(None, read)

    frames = asyncio.run(main())
    assert len(frames) == 40
    with_md = [f for f in frames if f.metadata]
    assert len(with_md) >= 35
    seqs = [f.metadata[0]["seq"] for f in with_md]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(f.image is not None and f.image.ndim == 3 for f in frames)
