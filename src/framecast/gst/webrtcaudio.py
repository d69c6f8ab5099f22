"""A mount's audio for WebRTC: Opus as it is, or AAC transcoded to Opus once per mount.

Shared like the video: ``audio_chain`` runs once per producer and ends in a tee; each viewer
gets ``queue ! rtpopuspay`` after it (cheap: no per-viewer encode).
"""

from __future__ import annotations

from gi.repository import Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.gst.chain import caps
from framecast.gst.element import make_element
from framecast.streaminfo import AUDIO_TRANSCODED

OPUS_BITRATE = 96000  # stereo music-grade; speech would do with less


def audio_chain(mode: str) -> list[Gst.Element]:
    """Parsed audio frames → [decode ─ Opus encode] ─ clocksync ─ tee ``atee``."""
    chain: list[Gst.Element] = []
    if mode == AUDIO_TRANSCODED:
        chain += [
            make_element("decodebin"),  # AAC here; any audio GStreamer decodes
            make_element("audioconvert"),
            make_element("audioresample"),
            caps("audio/x-raw,rate=48000,channels=2"),
            make_element("opusenc", bitrate=OPUS_BITRATE),
        ]
    chain += [
        caps("audio/x-opus"),
        # paced at real time like the video (both clocksyncs share the pipeline's clock, so
        # RTCP sender reports map both RTP clocks to the same instants: lip sync)
        make_element("clocksync"),
        make_element("tee", "atee", allow_not_linked=True),
    ]
    return chain


def link_chain(pipeline: Gst.Bin, upstream: Gst.Pad, chain: list[Gst.Element]) -> None:
    """Add ``chain`` to ``pipeline`` and link ``upstream`` ─ chain[0] ─ … ─ chain[-1]; a
    decodebin links to its successor once it has found its decoder."""
    for el in chain:
        pipeline.add(el)
    upstream.link(chain[0].get_static_pad("sink"))
    for a, z in zip(chain, chain[1:], strict=False):
        if a.get_factory().get_name() == "decodebin":
            sink = z.get_static_pad("sink")
            a.connect("pad-added", lambda _d, pad, sink=sink: (
                None if sink.is_linked() else pad.link(sink)))
        elif not a.link(z):
            raise RuntimeError(f"cannot link {a.get_name()} to {z.get_name()}")


def opus_rtp_caps(pt: int, ssrc: int) -> Gst.Caps:
    return Gst.Caps.from_string(
        "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,"
        f"encoding-params=(string)2,payload={pt},ssrc=(uint){ssrc}")
