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
        one_segment(),
        make_element("tee", "atee", allow_not_linked=True),
    ]
    return chain


def one_segment() -> Gst.Element:
    """Buffers in running time, one segment from 0, from here to the viewers' RTP sessions.

    A looped file starts a new SEGMENT at every loop point, and now and then the first packet
    of a loop was reckoned by webrtcbin's RTP session in the previous loop's segment: the next
    sender report then mapped the audio's RTP time one loop (1000 ms) off (seen in about one
    run in three of 10-30 s). Chromium fits a line through the last reports, so one such
    report threw its A/V sync estimate by up to 500 ms; it misplaced the video by 30-150 ms
    for ~15 s, and started streams 55-105 ms audio-late. With one segment a loop point is just
    the next buffer (the RTP timestamps, computed from the same running time, are unchanged).
    """
    return make_element("identity", single_segment=True, silent=True)


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
