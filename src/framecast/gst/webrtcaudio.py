"""A mount's audio for WebRTC: Opus as it is, or any other carried codec (AAC, MP3, AC-3,
G.711) transcoded to Opus once per mount.

Shared like the video: ``audio_chain`` runs once per producer and ends in a tee; each viewer
gets ``queue ! rtpopuspay`` after it (cheap: no per-viewer encode).
"""

from __future__ import annotations

from gi.repository import Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.codecs import AUDIO_CODECS
from framecast.gst.chain import caps
from framecast.gst.element import make_element
from framecast.gst.timestamps import single_segment
from framecast.streaminfo import AUDIO_TRANSCODED

OPUS_BITRATE = 96000  # stereo music-grade; speech would do with less
# static decoders (codecs.AUDIO_CODECS), not decodebin: its pad appears late and audio that
# arrives before it is linked stops the audio branch for good (not-linked), while the video
# plays on


def audio_chain(mode: str, codec: str | None) -> list[Gst.Element]:
    """Parsed audio frames → [decode ─ Opus encode] ─ clocksync ─ tee ``atee``."""
    chain: list[Gst.Element] = []
    if mode == AUDIO_TRANSCODED:
        chain += [
            make_element(AUDIO_CODECS[codec or ""].decoder),
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
        single_segment(),  # sender reports stay exact at loop points (see there)
        make_element("tee", "atee", allow_not_linked=True),
    ]
    return chain


def link_chain(pipeline: Gst.Bin, upstream: Gst.Pad, chain: list[Gst.Element]) -> None:
    """Add ``chain`` to ``pipeline`` and link ``upstream`` ─ chain[0] ─ … ─ chain[-1]."""
    for el in chain:
        pipeline.add(el)
    if upstream.link(chain[0].get_static_pad("sink")) != Gst.PadLinkReturn.OK:
        raise RuntimeError(f"cannot link the source's audio to {chain[0].get_name()}")
    for a, z in zip(chain, chain[1:], strict=False):
        if not a.link(z):
            raise RuntimeError(f"cannot link {a.get_name()} to {z.get_name()}")


def opus_rtp_caps(pt: int, ssrc: int) -> Gst.Caps:
    return Gst.Caps.from_string(
        "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,"
        f"encoding-params=(string)2,payload={pt},ssrc=(uint){ssrc}")
