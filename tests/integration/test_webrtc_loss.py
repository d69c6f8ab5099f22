"""A lossy link (a phone on weak Wi-Fi): packets lost on the way to a WebRTC viewer are asked
for again (NACK) and sent again (RTX, RFC 4588), so frames keep coming whole, in order, with
their metadata. Loss is made in the viewer's own pipeline (the kernel here has no netem): 5 %
of the RTP packets, retransmissions included, are dropped before its jitterbuffer."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_webrtc_server import (  # noqa: E402
    Gst,
    Received,
    consumer_pipeline,
    framecast_metadata,
    run,
    serving,
    stop_pipeline,
    wait_for,
)

from framecast.gst import webrtc  # noqa: E402
from framecast.gst.webrtcsource import file_source  # noqa: E402
from framecast.gst.whep_client import make_webrtc_source  # noqa: E402

pytestmark = pytest.mark.timeout(120)
LOSS = 0.05
RTX_PT = 97  # what webrtcbin answers for rtx (apt=96) to our client's offer


class Lossy:
    """Drops LOSS of the RTP packets entering the viewer's rtpbin (seeded: repeatable)."""

    def __init__(self, source: Gst.Element) -> None:
        self.rng = random.Random(7)
        self.seen = self.dropped = self.rtx = 0
        rtpbin = source.webrtc.get_by_name("rtpbin")
        rtpbin.connect("pad-added", self._on_pad)

    def _on_pad(self, _rtpbin: Gst.Element, pad: Gst.Pad) -> None:
        if pad.get_name().startswith("recv_rtp_sink"):
            pad.add_probe(Gst.PadProbeType.BUFFER, self._drop)

    def _drop(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        self.seen += 1
        if info.get_buffer().extract_dup(1, 1)[0] & 0x7F == RTX_PT:
            self.rtx += 1
        if self.rng.random() < LOSS:
            self.dropped += 1
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK


def test_lost_packets_come_again(tmp_path: Path) -> None:
    from framecast.gst.clips import make_clip

    clip = make_clip(tmp_path / "c.mp4", frames=60, fps=30, width=640, height=360,
                     profile="main", gop=60)
    source, info, status = file_source(str(clip), "lossy")
    got = Received()
    lossy: dict[str, Any] = {}

    async def main() -> None:
        spec = webrtc.mount_spec("lossy", source, info, status=status)
        async with serving(spec) as (bridge, srv):
            def build() -> Gst.Pipeline:
                src = make_webrtc_source(f"webrtc://127.0.0.1:{srv.port}/lossy")
                lossy["probe"] = Lossy(src)
                return consumer_pipeline(src, got)

            pipe = await bridge.run(build)
            await wait_for(lambda: len(got) >= 150 or got.errors, timeout=40,
                           what="150 frames through 5 % loss")
            await stop_pipeline(bridge, pipe)

    run(main())
    probe = lossy["probe"]
    with got.lock:
        aus = list(got.aus)
    seqs = [m[0]["seq"] for _, au in aus if (m := framecast_metadata(au))]
    gaps = sum(b - a != 1 for a, b in zip(seqs, seqs[1:], strict=False))
    report = (f"{len(aus)} AUs, {len(aus) - len(seqs)} without metadata, {gaps} gaps; "
              f"{probe.dropped} of {probe.seen} packets dropped, {probe.rtx} retransmitted")
    print(report)
    assert not got.errors, got.errors
    assert probe.dropped >= 30, report  # the link really was lossy
    # the viewer asked and the server sent again: 62-63 retransmissions for 80 drops
    # (without NACK/RTX: none, and 56 gaps in 150 frames)
    assert probe.rtx >= probe.dropped // 2, report
    assert gaps <= 25, report  # measured 9-12: what is still lost came back too late
    assert len(aus) - len(seqs) <= 5, report
