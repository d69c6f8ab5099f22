"""The per-mount media bin: demux → parse → [video filter] → pay, never decode or encode.

``build_media_bin`` is shared by the RTSP server (the bin is the media's element) and the WebRTC
producer (which tees after ``pay0``). Looping (when on) is set up on the demuxer here; whoever
runs the bin calls ``bin.looper.start()`` once prerolled and feeds it SEGMENT_DONE messages.
"""

from __future__ import annotations

from typing import Any

from gi.repository import GObject, Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.codecs import AUDIO_CODECS, CODECS, VIDEO_PT, Codec  # noqa: E402
from framecast.gst.runtime import init_gst

init_gst()  # the filter seam's module may build caps at import time

from framecast.gst.element import make_element  # noqa: E402
from framecast.gst.filters import make_video_filter  # noqa: E402
from framecast.gst.looping import Looper  # noqa: E402
from framecast.gst.probe import MediaInfo  # noqa: E402
from framecast.gst.rangesrc import make_range_src  # noqa: E402

# the video elements and payload types come from the one codec table (framecast.codecs)
PAYLOADERS = {name: c.payloader for name, c in CODECS.items()}
DEPAYLOADERS = {name: c.depayloader for name, c in CODECS.items()}


class MediaBin(Gst.Bin):
    """A Bin carrying its mount's looper and media info (``None`` for relays)."""

    __gtype_name__ = "FramecastMediaBin"

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        if name:
            self.set_name(name)
        self.looper: Looper | None = None
        self.info: MediaInfo | None = None
        self.mount_name = name or ""
        self.relay: Any = None  # relay mounts: the framecast.gst.relay.Consumer feeding it


GObject.type_register(MediaBin)


def _chain(b: Gst.Bin, elements: list[Gst.Element]) -> None:
    for el in elements:
        b.add(el)
    for a, z in zip(elements, elements[1:], strict=False):
        if not a.link(z):
            raise RuntimeError(f"cannot link {a.get_name()} to {z.get_name()}")


def _video_tail(b: Gst.Bin, mount: Any, info: Any, codec: Codec,
                parse: bool = True) -> Gst.Element:
    """[parse !] [filter] ! pay0, added to ``b``; returns the branch's sink."""
    chain = []
    if parse:
        parser = CODECS[codec].parser
        chain.append(make_element(parser, "vparse", config_interval=-1))
    flt = make_video_filter(mount, info, codec)
    if flt is not None:
        chain.append(flt)
    # The parser's config-interval=-1 puts SPS/PPS(/VPS) once before every keyframe AU, so a
    # joining client starts at once. The payloader must add none: rtph264pay's -1 repeats them
    # before every IDR *slice*, which splits a multi-slice keyframe into several pictures.
    pay = make_element(PAYLOADERS[codec], "pay0", config_interval=0, pt=VIDEO_PT)
    # The SEI (and AUD, parameter sets) share one STAP-A/AP with what follows up to the first
    # slice: stamps cost no packet of their own (bench/RESULTS.md, "Fan-out").
    Gst.util_set_object_arg(pay, "aggregate-mode", "zero-latency")
    chain.append(pay)
    _chain(b, chain)
    return chain[0]


def build_media_bin(mount: Any, info: MediaInfo | None) -> MediaBin:
    """The bin for ``mount`` (a :class:`framecast.config.Mount`) probed as ``info``.

    File mounts: filesrc ! demux ! parse ! [filter] ! pay0 (+ audio parse ! pay1).
    Relay mounts (``mount.source``): appsrc (fed by the mount's RelayHub, parsed there) !
    [filter] ! pay0 (+ the camera's audio: appsrc ! pay1).
    """
    name = getattr(mount, "name", "") or ""
    b = MediaBin(name)
    b.info = info
    if getattr(mount, "source", None):
        # the camera is pulled by the mount's RelayHub (reconnects, outage grace); this
        # media only sees an appsrc that its frames come out of
        from framecast.gst.relay import make_relay_audio_source, make_relay_source

        codec: Codec = getattr(mount, "codec", "h264")
        src, attach = make_relay_source(mount)
        b.add(src)
        # the hub's own parser already made the AUs (parameter sets before each keyframe): a
        # second one here put them twice into the first keyframe and moved B-frames' PTS
        head = _video_tail(b, mount, info, codec, parse=False)
        src.link(head)
        audio = make_relay_audio_source(mount)  # the camera's audio, parsed by the hub too
        if audio is not None:
            # clients that set up the video only leave pay1's stream unlinked: a demuxer
            # shrugs that off, an appsrc fails the whole media on it (not-linked); tee does not
            acodec = AUDIO_CODECS[audio[1]]
            _chain(b, [audio[0], make_element("tee", "atee", allow_not_linked=True),
                       make_element(acodec.payloader, "pay1", pt=acodec.pt)])
        b.relay = attach(b, audio[0] if audio is not None else None)
        return b

    if info is None:
        raise ValueError("file mounts need their probed MediaInfo")
    if info.served_bytes is not None:  # fragmented MP4: hide its mfra from qtdemux
        src = make_range_src(info.path, info.served_bytes, "src")
    else:
        src = make_element("filesrc", "src", location=info.path)
    demux = make_element(info.demuxer, "demux")
    _chain(b, [src, demux])
    vparse = _video_tail(b, mount, info, info.video_codec)
    aparse = None
    if info.audio_codec in AUDIO_CODECS:
        acodec = AUDIO_CODECS[info.audio_codec]
        aparse = make_element(acodec.parser, "aparse")
        _chain(b, [aparse, make_element(acodec.payloader, "pay1", pt=acodec.pt)])
        # One demuxer thread feeds both branches: without a queue on each, the video sink
        # blocks it while prerolling and audio never arrives (the media never gets prepared).
        vq, aq = make_element("queue", "vqueue"), make_element("queue", "aqueue")
        for q, nxt in ((vq, vparse), (aq, aparse)):
            b.add(q)
            q.link(nxt)
        vparse, aparse = vq, aq

    def on_pad(_demux: Gst.Element, pad: Gst.Pad) -> None:
        pname = pad.get_name()
        if pname.startswith("video"):
            target = vparse.get_static_pad("sink")
        elif pname.startswith("audio") and aparse is not None:
            target = aparse.get_static_pad("sink")
        else:
            return  # streams we do not serve stay unlinked: the demuxer carries on
        if not target.is_linked():
            pad.link(target)

    demux.connect("pad-added", on_pad)
    if getattr(mount, "loop", True):
        # the Looper wants the edit's first PTS: the lead-in (if any) comes before it
        # the timeline moves by the lead-in, or by how far DTS precede the segment start if
        # more (B-frames; measured from the same start), so every frame has a running time for
        # its PTS *and* its DTS (gst-rtsp-server's TCP backlog needs the DTS)
        b.looper = Looper(info.period_ns, name, info.first_pts + info.lead_ns,
                          max(info.lead_ns, getattr(info, "dts_lead_ns", 0)), info.lead_ns)
        b.looper.attach_demuxer(demux)
        if aparse is not None:  # each buffer one frame with its duration after the parser
            b.looper.clip_audio(b.get_by_name("aparse").get_static_pad("src"))
    return b


def codec_elements(element: Gst.Element) -> list[str]:
    """Names of every decoder or encoder inside ``element`` (for the no-transcode check)."""
    found = []
    it = element.iterate_recurse() if isinstance(element, Gst.Bin) else None
    elements = [element]
    if it is not None:
        while True:
            res, el = it.next()
            if res != Gst.IteratorResult.OK:
                break
            elements.append(el)
    for el in elements:
        f = el.get_factory()
        klass = f.get_metadata("klass") if f else ""
        if "Decoder" in klass or "Encoder" in klass:
            found.append(el.get_name())
    return found
