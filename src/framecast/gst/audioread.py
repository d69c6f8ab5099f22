"""The reader's audio branch (``framecast.open(url, audio=True)``): any audio pad → float32 PCM.

    rtp:  depay ─┐
    file: ───────┴─ queue ! decodebin ─(pad-added)─ audioconvert ! F32LE interleaved ! appsink

Decoded, never resampled: each :class:`framecast.reader.AudioChunk` keeps the stream's own
rate and channels. The appsink is pulled by the reader's thread beside the video one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gi.repository import Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.codecs import AUDIO_CODECS
from framecast.gst.element import make_element
from framecast.gst.plumbing import add_chain, link_pad
from framecast.reader import AudioChunk

# RTP encoding-name → depayloader: what framecast carries (codecs.AUDIO_CODECS), and what
# other servers and cameras send besides
DEPAYLOADERS = {name: depay for c in AUDIO_CODECS.values() for name, depay in c.rtp.items()}
DEPAYLOADERS.update({"X-GST-OPUS-DRAFT-SPITTER": "rtpopusdepay", "L16": "rtpL16depay",
                     "G722": "rtpg722depay"})
PCM_CAPS = "audio/x-raw,format=F32LE,layout=interleaved"
_MAX_QUEUED = 1000  # decoded chunks (~20 s of AAC) held if the caller stops reading


def is_audio(caps: Gst.Caps) -> bool:
    s = caps.get_structure(0)
    if s.get_name() == "application/x-rtp":
        return s.get_string("media") == "audio"
    return s.get_name().startswith("audio/")


def make_audio_sink() -> Gst.Element:
    sink = make_element("appsink", "asink", sync=False, max_buffers=_MAX_QUEUED,
                        enable_last_sample=False, emit_signals=False)
    sink.set_property("async", False)  # live: never wait for preroll
    sink.set_property("caps", Gst.Caps.from_string(PCM_CAPS))
    return sink


def link_audio(pipeline: Gst.Pipeline, pad: Gst.Pad, caps: Gst.Caps,
               sink: Gst.Element) -> None:
    """Decode ``pad`` (RTP or an elementary stream) into ``sink``; RuntimeError if it cannot."""
    s = caps.get_structure(0)
    chain: list[Gst.Element] = []
    if s.get_name() == "application/x-rtp":
        name = (s.get_string("encoding-name") or "").upper()
        if name not in DEPAYLOADERS:
            raise RuntimeError(f"no depayloader for RTP audio {name or '?'}")
        chain.append(make_element(DEPAYLOADERS[name]))
    # decodebin changes state asynchronously (it waits for its typefind): left to the pipeline,
    # the pipeline stays PAUSED until audio data reaches it, while the video appsink holds
    # the one demuxer thread waiting for PLAYING — a deadlock (~1 file read in 2 under load).
    # The bin handles its own async state, and the queue gives the audio its own thread.
    queue = make_element("queue")
    dec = make_element("decodebin")
    dec.set_property("async-handling", True)
    conv = make_element("audioconvert")
    pipeline.add(conv)  # the sink is already in the pipeline (made with it)
    if not conv.link(sink):
        raise RuntimeError("cannot link audioconvert to the audio appsink")

    def on_decoded(_dec: Gst.Element, dpad: Gst.Pad) -> None:
        dcaps = dpad.get_current_caps() or dpad.query_caps(None)
        if dcaps.get_structure(0).get_name() == "audio/x-raw" and not \
                conv.get_static_pad("sink").is_linked():
            dpad.link(conv.get_static_pad("sink"))

    dec.connect("pad-added", on_decoded)
    chain += [queue, dec]
    add_chain(pipeline, chain)
    for el in [conv, *reversed(chain)]:
        el.sync_state_with_parent()
    link_pad(pad, chain[0])


def chunk_from(sample: Gst.Sample, timeline_ns: int) -> AudioChunk:
    """One appsink sample as an :class:`AudioChunk` (samples copied out of GStreamer)."""
    st: Any = sample.get_caps().get_structure(0)
    rate, channels = st.get_int("rate")[1], st.get_int("channels")[1]
    buf = sample.get_buffer()
    with buf.map(Gst.MapFlags.READ) as info:
        pcm = np.frombuffer(info.data, dtype=np.float32).reshape(-1, channels).copy()
    return AudioChunk(timeline_ns / 1e9, timeline_ns, rate, pcm)
