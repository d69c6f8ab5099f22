"""The seam between a mount's RTSP bin and its WebRTC producer: the same bin, minus payloaders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gi.repository import GLib, Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.gst.element import make_element
from framecast.producer import WebRTCError
from framecast.streaminfo import StreamInfo

SourceFactory = Callable[[], "Gst.Element | tuple[Gst.Element, Callable[[Gst.Pipeline], None]]"]
"""Returns a fresh element/bin with one ``src`` pad of parsed AUs carrying our SEI, or
``(element, on_pipeline)`` where ``on_pipeline(pipeline)`` runs once the element is in its
pipeline (before PLAYING; e.g. to wire a :class:`~framecast.gst.looping.Looper` to the bus)."""


def stream_info(mount: Any, media: Any) -> StreamInfo:
    """A mount's stream as its one probe described it (``media``: a ``probe.MediaInfo``; the
    probe also saw whether PTS go back in decode order, i.e. B-frames)."""
    if media is None:
        return relay_stream_info(mount)
    return StreamInfo(media.video_codec, media.profile, media.width, media.height, media.fps,
                      reordered=media.reordered,
                      audio=media.audio_codec or getattr(media, "dropped_audio", None))


def relay_stream_info(mount: Any) -> StreamInfo:
    """The one place a relay's stream is described for WebRTC, without waiting: the camera's
    profile as its hub knows it (a background probe when the mount was added, or its live
    stream's caps/SPS), and its audio as far as known. Unknown, or above baseline (B-frames
    possible): play safe, transcode."""
    from framecast.gst.relay import known_camera_audio, known_camera_profile

    profile = known_camera_profile(mount)
    return StreamInfo(getattr(mount, "codec", "h264"), profile,
                      reordered=profile not in ("constrained-baseline", "baseline"),
                      audio=known_camera_audio(mount))


def source_for_mount(mount: Any, media: Any = None,
                     bin_factory: Callable[[], Gst.Bin] | None = None,
                     ) -> tuple[SourceFactory, StreamInfo, Callable[[], dict[str, Any]]]:
    """The one coupling point to the RTSP side: its mount bin, minus its payloaders.

    ``bin_factory()`` (default ``media.build_media_bin(mount, media)``: the RTSP factory's own
    bin) gives demux/appsrc → parse → SEI injector → ``pay0`` (+ audio ``pay1``) with a
    ``Looper`` for file mounts. The WebRTC producer payloads per viewer, so ``pay0`` is cut off
    (its upstream becomes our ghost ``src``) and ``pay1`` too (its upstream, the parsed audio,
    becomes the ghost ``audio_src``). ``media`` is the mount's one probe (None for a relay).
    Returns (factory, info, status) with ``status()`` giving ``{"loops": n}``.
    """
    from framecast.gst.media import build_media_bin

    info = stream_info(mount, media)
    make_bin = bin_factory or (lambda: build_media_bin(mount, media))
    current: list[Any] = []  # the latest run's looper (the producer rebuilds on restart)

    def build() -> tuple[Gst.Element, Callable[[Gst.Pipeline], None]]:
        b = strip_payloaders(make_bin())
        looper = getattr(b, "looper", None)
        current[:] = [looper]
        demux = b.get_by_name("demux")

        gates = [_PrerollGate(pad) for pad in b.iterate_src_pads()] \
            if looper is not None and demux is not None else []

        def on_pipeline(pipeline: Gst.Pipeline) -> None:
            if looper is None or demux is None:
                return
            ctx = GLib.MainContext.ref_thread_default()
            # the producer's own signal watch delivers it (Looper.watch_bus would add a second
            # watch that nobody removes when the producer frees the pipeline)
            pipeline.get_bus().connect("message::segment-done",
                                       lambda _b, _m: looper.on_segment_done())

            def start() -> bool:
                # the first FLUSH|SEGMENT seek, once the demuxer has its pads
                if not looper.start():
                    for gate in gates:  # no restart will come: let the first pass out
                        gate.open()
                return GLib.SOURCE_REMOVE

            def no_more_pads(_demux: Gst.Element) -> None:
                source = GLib.idle_source_new()
                source.set_callback(lambda *_: start())
                source.attach(ctx)

            demux.connect("no-more-pads", no_more_pads)

        return b, on_pipeline

    def status() -> dict[str, Any]:
        looper = current[0] if current else None
        return {"loops": looper.loop_count if looper is not None else 0}

    return build, info, status


class _PrerollGate:
    """Holds back what a looped file pushes before the Looper's first (flushing) seek.

    In PLAYING the demuxer starts at once, and the seek comes from the main loop a little
    later (~170 ms measured): without the gate viewers got those frames and then the same
    timestamps again after the flush (RTP time stepping back at start, which threw
    Chromium's A/V sync off by ~100 ms for its first seconds). The first buffer blocks its
    streaming thread (dropping would let the demuxer race to EOS); the flush unblocks it."""

    def __init__(self, pad: Gst.Pad) -> None:
        self._pad = pad
        self._block = pad.add_probe(
            Gst.PadProbeType.BLOCK | Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST,
            lambda *_: Gst.PadProbeReturn.OK)
        pad.add_probe(Gst.PadProbeType.EVENT_FLUSH, self._on_flush)

    def open(self) -> None:
        if self._block:
            self._pad.remove_probe(self._block)
            self._block = 0

    def _on_flush(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        if info.get_event().type != Gst.EventType.FLUSH_STOP:
            return Gst.PadProbeReturn.OK
        self.open()
        return Gst.PadProbeReturn.REMOVE


def strip_payloaders(b: Gst.Bin) -> Gst.Bin:
    """An RTSP-style bin (``pay0`` video, maybe ``pay1`` audio) made into a WebRTC source:
    ``pay0``'s upstream becomes the ghost ``src`` pad, ``pay1``'s (parsed audio frames) the
    ghost ``audio_src`` pad (the producer links it, to its audio chain or a fakesink); other
    payloaders end in fakesinks."""
    pay0 = b.get_by_name("pay0")
    if pay0 is None:
        raise WebRTCError(f"{b.get_name()}: no pay0 payloader to feed WebRTC from")
    upstream = pay0.get_static_pad("sink").get_peer()
    upstream.unlink(pay0.get_static_pad("sink"))
    b.remove(pay0)
    b.add_pad(Gst.GhostPad.new("src", upstream))
    i = 1
    while (pay := b.get_by_name(f"pay{i}")) is not None:
        peer = pay.get_static_pad("sink").get_peer()
        b.remove(pay)
        if i == 1 and peer is not None:
            b.add_pad(Gst.GhostPad.new("audio_src", peer))
            i += 1
            continue
        sink = make_element("fakesink", sync=False)
        sink.set_property("async", False)
        b.add(sink)
        if peer is not None:
            peer.link(sink.get_static_pad("sink"))
        i += 1
    return b


def bin_source(bin_factory: Callable[[], Gst.Bin]) -> SourceFactory:
    """A WebRTC source from an RTSP ``add_mount``-style factory (e.g. app-frame mounts)."""
    return lambda: strip_payloaders(bin_factory())


def file_source(path: str, name: str = "file") -> tuple[SourceFactory, StreamInfo,
                                                        Callable[[], dict[str, Any]]]:
    """A file looped forever: the same bin as its RTSP mount (stamps on)."""
    from framecast.config import Mount
    from framecast.gst.probe import probe_file

    return source_for_mount(Mount(name=name, file=str(path)), probe_file(path))
