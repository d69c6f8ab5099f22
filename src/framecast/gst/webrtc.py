"""WebRTC delivery: one producer pipeline per mount, one ``webrtcbin`` per viewer.

The mount's encoded, SEI-carrying stream (parsed H.264 access units) is made once and shared::

    source ─ [transcode once: SEI remembered by PTS ─ decode ─ x264enc ─ SEI put back]
           ─ clocksync ─ tee
    tee ─ queue ─ rtph264pay pt=<negotiated> ─ webrtcbin      (one branch per viewer, no encode)

and its audio (``framecast.gst.webrtcaudio``), Opus as it is or AAC/MP3/AC-3/G.711 → Opus
once per mount::

    source audio ─ [decode ─ opusenc] ─ clocksync ─ atee
    atee ─ queue ─ rtpopuspay pt=<negotiated> ─ the viewer's webrtcbin   (if its offer takes it)

The payloader sits after the tee, one per viewer, because a WHEP offer chooses the payload type
(and webrtcbin 1.22 sends whatever payload type arrives); payloading is a cheap copy.

Chromium here cannot decode High profile (``64xxxx``): such mounts (and H.265 ones) are
transcoded once per mount to constrained-baseline (``framecast.gst.transcode``), and our SEI is
carried across the decoder by PTS. Everything in this module runs on the GLib thread except the
signal handlers, which do pure work and hand results to asyncio through the callbacks they were
given. Sources: ``framecast.gst.webrtcsource`` (a mount's RTSP bin) and
``framecast.gst.demosources``; SDP logic: ``framecast.webrtcsdp``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

from framecast.codecs import AUDIO_CODECS, VIDEO_PT, Codec  # noqa: E402
from framecast.config import DEFAULTS  # noqa: E402
from framecast.gst import stamps as stamps_native  # noqa: E402
from framecast.gst.aufilter import AUFilter  # noqa: E402
from framecast.gst.chain import caps, walk  # noqa: E402
from framecast.gst.element import make_element  # noqa: E402
from framecast.gst.nice import no_upnp, on_rtp_sessions  # noqa: E402
from framecast.gst.runtime import init_gst  # noqa: E402
from framecast.gst.timestamps import single_segment  # noqa: E402
from framecast.gst.transcode import SEICarrier, transcoder  # noqa: E402
from framecast.gst.webrtcaudio import audio_chain, link_chain, opus_rtp_caps  # noqa: E402
from framecast.gst.webrtcsource import SourceFactory  # noqa: E402
from framecast.producer import (  # noqa: E402
    SOURCE_FAILED,
    SOURCE_RETRY,
    MountSpec,
    ProducerFactory,
    ProducerOptions,
    SourceUnavailable,
    TooManyViewers,
    ViewerEvents,
    WebRTCError,
)
from framecast.streaminfo import (  # noqa: E402
    AUDIO_NONE,
    StreamInfo,
    needs_transcode,
    transcode_reason,
    webrtc_audio,
)
from framecast.webrtcsdp import (  # noqa: E402
    OPUS_PT,
    choose_h264_payload,
    choose_opus_payload,
    profile_level_id,
    with_candidates,
)

init_gst()

log = logging.getLogger("framecast.webrtc")


def _sdp_message(text: str) -> GstSdp.SDPMessage:
    res, msg = GstSdp.SDPMessage.new_from_text(text)
    if res != GstSdp.SDPResult.OK or msg.medias_len() == 0:
        raise WebRTCError("malformed SDP")
    return msg


@dataclass
class _Viewer:
    id: str
    events: ViewerEvents
    queue: Gst.Element
    pay: Gst.Element
    webrtc: Gst.Element
    aqueue: Gst.Element | None = None  # the audio branch, when the viewer takes audio
    apay: Gst.Element | None = None
    candidates: list[tuple[int, str]] = field(default_factory=list)
    offered: bool = False
    closed: bool = False
    connected: bool = False
    # (object, handler id) of every signal connected with this viewer as user data: the
    # GClosures hold the viewer, the viewer holds the webrtcbin — a cycle through C that
    # Python's GC cannot see, so the element (and its 2 threads, ~30 fds) lived forever
    handlers: list[tuple[Gst.Object, int]] = field(default_factory=list)


class MountProducer:
    """The WebRTC side of one mount. Create and drive it on the GLib thread.

    Lazy: the pipeline runs only while someone watches. The first viewer starts it, and
    ``idle_stop`` seconds after the last viewer left it is set to NULL and freed (no CPU, no
    threads); the next viewer builds a fresh one. ``idle_stop=None`` keeps it running from
    :meth:`start` on (the old always-on behaviour).

    A restart is a new stream, as when an RTSP client starts a media nobody else watches: a file
    plays from its first frame again and ``seq``/``loop`` count from 0 (``seq`` stays the
    presented index since the stream started, so ``seq % frames`` is still the file's frame).
    A viewer that comes back within the grace period joins the running stream (``seq`` goes on).
    """

    def __init__(self, name: str, source: SourceFactory, info: StreamInfo,
                 transcode: bool | None = None, metrics: Any = None,
                 max_viewers: int = DEFAULTS.webrtc_max_viewers,
                 idle_stop: float | None = DEFAULTS.webrtc_idle_stop,
                 describe: Callable[[], StreamInfo] | None = None) -> None:
        init_gst()
        self.max_viewers = max_viewers
        self.name = name
        self.info = info
        self.source = source
        self.idle_stop = idle_stop
        self.transcoded = needs_transcode(info) if transcode is None else transcode
        self._forced = transcode
        # a relay learns its camera's profile after start-up: looked at again before each run
        self._describe = describe
        self.metrics = metrics
        self.viewers: dict[str, _Viewer] = {}
        self.carrier: SEICarrier | None = None
        self.pipeline: Gst.Pipeline | None = None
        self.tee: Gst.Element | None = None
        self.atee: Gst.Element | None = None  # the audio's tee (None: video only)
        self.audio_mode, self.audio_reason = webrtc_audio(info)
        self.injectors: list[Gst.Element] = []
        self.running = False
        self.flowing = False  # this run's source has reached the tee (WHEP answers wait for it)
        self.starts = 0  # how many times the pipeline went to PLAYING
        self.frames = 0
        self.bytes_in = 0
        self.error: str | None = None
        self._failed_at: float | None = None  # monotonic time of the source's last failure
        self._sei_before = 0  # SEI counts of pipelines already freed (the metric only grows)
        self._reinjected_before = 0
        self._caps: tuple[str | None, str | None] | None = None  # (profile, level) last seen
        self._idle_timer: GLib.Source | None = None
        self._idle_deadline: float | None = None
        # the GLib thread's context (producers are created there): where teardown is scheduled
        self._context = GLib.MainContext.ref_thread_default()
        if info.audio in AUDIO_CODECS and self.audio_mode == AUDIO_NONE:
            # (audio the file has but nothing serves was reported once, by the probe)
            log.warning("%s: %s audio is not offered over WebRTC: %s", name, info.audio,
                        self.audio_reason)
        elif self.audio_mode != AUDIO_NONE:
            log.info("%s: WebRTC audio %s (%s)", name, self.audio_mode,
                     "Opus" if info.audio == "opus"
                     else f"{AUDIO_CODECS[str(info.audio)].label} → Opus once")
        # build now so a bad source fails when the mount is added, not at its first viewer;
        # READY opens files (filesrc) without streaming anything
        self._build()
        assert self.pipeline is not None
        if self.pipeline.set_state(Gst.State.READY) == Gst.StateChangeReturn.FAILURE:
            self._free()
            raise WebRTCError(f"{name}: the WebRTC source pipeline failed to start")
        self.pipeline.set_state(Gst.State.NULL)  # kept built, for the first viewer

    def _build(self) -> None:
        """A fresh pipeline (NULL state): source ─ [transcode] ─ clocksync ─ tee."""
        self._refresh()
        info = self.info
        self.carrier = SEICarrier(cast(Codec, info.codec)) if self.transcoded else None
        pipeline = Gst.Pipeline.new(f"webrtc-{self.name}")
        built = self.source()
        on_pipeline = None
        if isinstance(built, tuple):
            built, on_pipeline = built
        # Annex B access units from here on, whatever the source's parser would pick
        chain: list[Gst.Element] = [
            built, caps(f"video/x-{info.codec},stream-format=byte-stream,alignment=au")]
        if self.carrier is not None:
            chain += transcoder(info, self.carrier)
        else:
            # SPS/PPS in-band before every IDR access unit, whatever the source did
            chain += [make_element("h264parse", config_interval=-1),
                      caps("video/x-h264,stream-format=byte-stream,alignment=au")]
        # pace non-live sources (files) at real time; live ones pass through
        chain.append(make_element("clocksync"))
        if self.carrier is not None:
            # after clocksync: the frame's wallclock_ns becomes the time it really leaves (the
            # decoder's reordering delay would otherwise count as network latency)
            chain.append(AUFilter(self.carrier.reinsert))
        chain.append(single_segment())  # sender reports stay exact at loop points (see there)
        chain.append(make_element("tee", "tee", allow_not_linked=True))
        for el in chain:
            pipeline.add(el)
        for a, z in zip(chain, chain[1:], strict=False):
            if not a.link(z):
                raise WebRTCError(f"{self.name}: cannot link {a.get_name()} to {z.get_name()}")
        self.pipeline = pipeline
        self.tee = chain[-1]
        self.atee = None
        apad = built.get_static_pad("audio_src")
        if apad is not None:
            self._build_audio(pipeline, apad)
        # the mount's SEI injector(s), for /metrics (their own ``frames`` counters)
        self.injectors = [el for el in walk(pipeline)
                          if stamps_native.is_stamps_injector(el)
                          or (isinstance(getattr(el, "frames", None), int)
                              and type(el).__name__ == "FramecastInject")]
        if on_pipeline is not None:
            on_pipeline(pipeline)
        # one shared probe per access unit: frames and bytes (×viewers for bytes sent)
        sink = self.tee.get_static_pad("sink")
        sink.add_probe(Gst.PadProbeType.BUFFER, self._count)
        sink.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, self._on_caps)
        bus = pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._on_error)
        bus.connect("message::warning", self._on_warning)

    def _build_audio(self, pipeline: Gst.Pipeline, apad: Gst.Pad) -> None:
        """The source's audio: into the shared audio chain, or a fakesink when WebRTC does not
        carry it (an unlinked pad would stop the demuxer)."""
        if self.audio_mode == AUDIO_NONE:
            sink = make_element("fakesink", sync=False)
            sink.set_property("async", False)
            link_chain(pipeline, apad, [sink])
            return
        achain = audio_chain(self.audio_mode, self.info.audio)
        try:
            link_chain(pipeline, apad, achain)
        except RuntimeError as exc:
            raise WebRTCError(f"{self.name}: audio: {exc}") from None
        self.atee = achain[-1]

    def _free(self) -> None:
        """NULL and drop the pipeline (its counters go into the running totals)."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        self._sei_before = self.sei_injected
        self._reinjected_before = self.sei_reinjected
        pipeline.set_state(Gst.State.NULL)
        bus = pipeline.get_bus()
        bus.remove_signal_watch()  # the watch's GSource would otherwise keep the bus alive
        self.pipeline = self.tee = self.atee = self.carrier = None
        self.injectors = []
        self.running = self.flowing = False
        self._set_running_gauge()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the pipeline now (the first viewer calls this; so does an always-on mount)."""
        self._cancel_idle_stop()
        if self.running:
            return
        self._refresh()
        if self.pipeline is None:
            self._build()
        assert self.pipeline is not None
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            self._free()
            raise SourceUnavailable(f"{self.name}: the WebRTC source pipeline failed to start")
        self.running = True
        self.starts += 1
        self.error = None
        log.info("%s: WebRTC producer started (%s)", self.name,
                 "always on" if self.idle_stop is None else "first viewer")
        if self.metrics is not None:
            self.metrics.inc("framecast_webrtc_producer_starts_total", mount=self.name)
        self._set_running_gauge()

    def stop(self) -> None:
        """End every viewer and free the pipeline (mount removed, server stopping)."""
        self._cancel_idle_stop()
        for vid in list(self.viewers):
            self.remove_viewer(vid)
        self._cancel_idle_stop()
        self._free()

    def _schedule_idle_stop(self) -> None:
        if self.idle_stop is None or not self.running or self.viewers:
            return
        self._cancel_idle_stop()
        self._idle_deadline = time.monotonic() + self.idle_stop
        source = GLib.timeout_source_new(max(0, int(self.idle_stop * 1000)))
        def fire(*_: object) -> bool:
            self._idle_stop_now()
            return GLib.SOURCE_REMOVE

        source.set_callback(fire)
        source.attach(self._context)
        self._idle_timer = source

    def _cancel_idle_stop(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.destroy()
            self._idle_timer = None
        self._idle_deadline = None

    def _idle_stop_now(self) -> None:
        self._idle_timer = None
        self._idle_deadline = None
        if self.viewers or not self.running:
            return
        self._free()
        log.info("%s: WebRTC producer stopped (no viewer for %.1f s)", self.name, self.idle_stop)

    def _set_running_gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.set_gauge("framecast_webrtc_producer_running", int(self.running),
                                   mount=self.name)

    @property
    def stopping_in(self) -> float | None:
        """Seconds until the idle stop, or None when none is pending."""
        if self._idle_deadline is None:
            return None
        return max(0.0, self._idle_deadline - time.monotonic())

    @property
    def sei_injected(self) -> int:
        """Access units given our SEI in this producer (injector + transcode re-injection),
        over all its runs."""
        n = sum(stamps_native.injected_frames(el) for el in self.injectors)
        return self._sei_before + n + (self.carrier.reinjected if self.carrier else 0)

    @property
    def sei_reinjected(self) -> int:
        return self._reinjected_before + (self.carrier.reinjected if self.carrier else 0)

    @property
    def webrtc_profile(self) -> str:
        return "constrained-baseline" if self.transcoded else (self.info.profile or "unknown")

    def webrtcbin_count(self) -> int:
        """Live webrtcbin elements in this mount's pipeline (tests check it returns to 0)."""
        return self.element_count("webrtcbin")

    def element_count(self, factory_name: str, recurse: bool = False) -> int:
        """Elements made by ``factory_name`` in this mount's pipeline (``recurse``: inside
        bins too, e.g. encoders)."""
        n = 0
        if self.pipeline is None:
            return 0
        it = self.pipeline.iterate_recurse() if recurse else self.pipeline.iterate_elements()
        while True:
            res, el = it.next()
            if res == Gst.IteratorResult.RESYNC:
                it.resync()
                n = 0
                continue
            if res != Gst.IteratorResult.OK:
                return n
            factory = el.get_factory()
            n += bool(factory and factory.get_name() == factory_name)

    def _count(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        if buf is not None:
            self.flowing = True
            self.frames += 1
            self.bytes_in += buf.get_size()
            if self.metrics is not None:
                self.metrics.inc("framecast_webrtc_frames_total", mount=self.name)
                n = len(self.viewers)
                if n:
                    self.metrics.inc("framecast_webrtc_bytes_sent_total", buf.get_size() * n,
                                     mount=self.name)
        return Gst.PadProbeReturn.OK

    def _on_caps(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        event = info.get_event()
        if event is not None and event.type == Gst.EventType.CAPS:
            s = event.parse_caps().get_structure(0)
            # kept across restarts: a cold start's first viewer is offered the real level
            self._caps = (s.get_string("profile"), s.get_string("level"))
        return Gst.PadProbeReturn.OK

    def _on_error(self, _bus: Gst.Bus, msg: Gst.Message) -> None:
        err, dbg = msg.parse_error()
        src = msg.src.get_name() if msg.src else "?"
        log.error("%s: WebRTC pipeline error from %s: %s (%s)", self.name, src, err.message,
                  _one_line(dbg))
        if self.metrics is not None:
            self.metrics.inc("framecast_errors_total", mount=self.name, kind="webrtc")
        # an error inside one viewer's branch ends that viewer only
        for v in list(self.viewers.values()):
            if msg.src is not None and self._belongs(msg.src, v):
                self._fail(v, f"pipeline error: {err.message}")
                return
        if msg.src is not None and self._viewer_side(msg.src):
            # a viewer already removed (its webrtcbin torn down while its network thread was
            # still pushing: not-negotiated, seen when viewers switch mounts fast): nothing
            # of the source's, so nobody else may lose their stream over it
            return
        # the source itself failed: nothing will flow, so its viewers end now and new ones are
        # refused (503) for SOURCE_RETRY s, then the next viewer tries a fresh pipeline
        self.error = err.message
        self._failed_at = time.monotonic()
        for v in list(self.viewers.values()):
            self._fail(v, f"{SOURCE_FAILED}: {err.message}")
        self._cancel_idle_stop()
        self._free()

    def _later(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the GLib thread that created this producer."""
        source = GLib.idle_source_new()
        def run(*_: object) -> bool:
            fn()
            return GLib.SOURCE_REMOVE

        source.set_callback(run)
        source.attach(self._context)

    def _on_warning(self, _bus: Gst.Bus, msg: Gst.Message) -> None:
        err, _dbg = msg.parse_warning()
        log.debug("%s: warning: %s", self.name, err.message)

    def _viewer_side(self, obj: Gst.Object | None) -> bool:
        """``obj`` is in a webrtcbin, or no longer in this producer's pipeline at all."""
        top = None
        while obj is not None:
            factory = obj.get_factory() if isinstance(obj, Gst.Element) else None
            if factory is not None and factory.get_name() == "webrtcbin":
                return True
            top, obj = obj, obj.get_parent()
        return top is not self.pipeline

    @staticmethod
    def _belongs(obj: Gst.Object, v: _Viewer) -> bool:
        while obj is not None:
            if obj in (v.queue, v.pay, v.webrtc, v.aqueue, v.apay):
                return True
            obj = obj.get_parent()
        return False

    # -- viewers ---------------------------------------------------------------------------------

    def _current_caps(self) -> tuple[str | None, str | None]:
        """(profile, level) of the stream: as last seen at the tee (this run or an earlier
        one), else what the probe said (level unknown: 3.1 is announced)."""
        if self._caps is None:
            return self.webrtc_profile, None
        profile, level = self._caps
        return profile or self.webrtc_profile, level

    def add_viewer(self, viewer_id: str, events: ViewerEvents,
                   offer_sdp: str | None = None) -> None:
        """Create a viewer branch. With ``offer_sdp`` we answer it, otherwise we offer."""
        if viewer_id in self.viewers:
            raise WebRTCError(f"viewer {viewer_id} exists")
        if len(self.viewers) >= self.max_viewers:
            raise TooManyViewers(f"{self.name}: {self.max_viewers} viewers already")
        if self._failed_at is not None and time.monotonic() - self._failed_at < SOURCE_RETRY:
            raise SourceUnavailable(f"{self.name}: {SOURCE_FAILED}: {self.error}")
        profile, level = self._current_caps()
        plid = profile_level_id(profile, level)
        pt = VIDEO_PT
        offer = None
        # audio for every viewer of a mount that has it, unless its offer takes no Opus
        apt: int | None = OPUS_PT if self.audio_mode != AUDIO_NONE else None
        if offer_sdp is not None:
            offer = _sdp_message(offer_sdp)  # raises on garbage before we build anything
            pt, plid = choose_h264_payload(offer_sdp, plid)
            if apt is not None:
                apt = choose_opus_payload(offer_sdp)
        queue = make_element("queue", leaky=2, max_size_buffers=60, max_size_time=0,
                             max_size_bytes=0)
        # config-interval=0: SPS/PPS are already in-band before every IDR (h264parse before the
        # tee); with -1, rtph264pay 1.22 repeats them before *each* IDR slice, and a
        # multi-slice keyframe then arrives split into several access units
        # a fixed SSRC announced in the SDP: an answer made before the payloader's caps exist
        # would otherwise announce an invented one, and Chromium drops unannounced SSRCs
        ssrc = random.randrange(1, 2**32)
        pay = make_element("rtph264pay", pt=pt, config_interval=0, aggregate_mode="zero-latency",
                    ssrc=ssrc)
        webrtc = make_element("webrtcbin", bundle_policy=GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        no_upnp(webrtc)
        # stun-server stays at its default (NULL): setting None from Python logs an error
        v = _Viewer(viewer_id, events, queue, pay, webrtc)
        self._cancel_idle_stop()
        if self.pipeline is None:  # stopped for want of viewers: a fresh stream
            self._build()
        if apt is not None and self.atee is not None:
            # 100 ms of slack only: webrtcbin holds its input until negotiated, and a deeper
            # backlog reached the browser as one burst that its audio jitter buffer then kept
            # (audio ~100 ms late behind the video for many seconds)
            v.aqueue = make_element("queue", leaky=2, max_size_buffers=0,
                                    max_size_time=100 * Gst.MSECOND, max_size_bytes=0)
            v.apay = make_element("rtpopuspay", pt=apt, ssrc=random.randrange(1, 2**32))
        assert self.pipeline is not None and self.tee is not None
        for el in self._elements(v):
            self.pipeline.add(el)
        queue.link(pay)
        rtp_caps = Gst.Caps.from_string(
            "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,"
            f"payload={pt},packetization-mode=(string)1,profile-level-id=(string){plid},"
            f"ssrc=(uint){ssrc}")
        sinkpad = webrtc.request_pad_simple("sink_%u")
        pay.get_static_pad("src").link(sinkpad)
        trans = sinkpad.get_property("transceiver")
        trans.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        trans.set_property("codec-preferences", rtp_caps)
        # a lost packet is sent again when the viewer asks (NACK → RTX, RFC 4588): without it a
        # viewer on a lossy link waited for the next keyframe with a broken picture
        trans.set_property("do-nack", True)
        if v.aqueue is not None and v.apay is not None:
            v.aqueue.link(v.apay)
            asink = webrtc.request_pad_simple("sink_%u")
            v.apay.get_static_pad("src").link(asink)
            atrans = asink.get_property("transceiver")
            atrans.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
            atrans.set_property("codec-preferences",
                                opus_rtp_caps(apt or 0, v.apay.get_property("ssrc")))

        if v.aqueue is not None:
            # no audio backlog at connect: what queued while ICE/DTLS were under way reached
            # the browser as one burst that its audio jitter buffer kept (audio 130-180 ms
            # behind the video at start, closed by Chromium's A/V sync only over ~40 s)
            v.aqueue.get_static_pad("sink").add_probe(
                Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST,
                lambda *_: Gst.PadProbeReturn.REMOVE if webrtc.get_property(
                    "connection-state") == GstWebRTC.WebRTCPeerConnectionState.CONNECTED
                else Gst.PadProbeReturn.DROP)
        for sig, fn in (("on-ice-candidate", self._on_ice_candidate),
                        ("notify::ice-gathering-state", self._on_gathering),
                        ("notify::ice-connection-state", self._on_ice_state)):
            v.handlers.append((webrtc, webrtc.connect(sig, fn, v)))
        rtpbin = webrtc.get_by_name("rtpbin")
        if rtpbin is not None and v.apay is not None:
            # sender reports every second, not 5: they are what lets the browser line the
            # audio up with the video (lip sync starts once both streams have had one) ...
            if (handler := on_rtp_sessions(webrtc, {"rtcp-min-interval": Gst.SECOND})):
                v.handlers.append(handler)
            # ... and they map RTP time to the capture time, not the send time: a file's
            # audio reaches the sender later than its video (88 ms audio-late, measured)
            rtpbin.set_property("rtcp-sync-send-time", False)
        if rtpbin is not None:
            # a peer that leaves without a word (WHEP page closed, no DELETE): its RTCP BYE,
            # or its RTCP going silent, ends the viewer (libnice 0.1.21 has no consent
            # freshness)
            for sig, why in (("on-bye-ssrc", "RTCP BYE"), ("on-timeout", "RTCP timeout")):
                v.handlers.append((rtpbin, rtpbin.connect(sig, self._on_peer_gone, v, why)))
        self.viewers[viewer_id] = v
        for el in self._elements(v):
            el.sync_state_with_parent()
        if v.aqueue is not None and self.atee is not None:
            self.atee.request_pad_simple("src_%u").link(v.aqueue.get_static_pad("sink"))
        teepad = self.tee.request_pad_simple("src_%u")
        try:
            teepad.link(queue.get_static_pad("sink"))  # gi's override raises on failure
        except Exception as exc:
            self.tee.release_request_pad(teepad)
            self.remove_viewer(viewer_id)
            raise WebRTCError(f"{self.name}: the stream does not fit the negotiated H.264 "
                              f"payload {plid} ({exc})") from None
        if not self.running:
            # started once the branch is linked: a fresh stream's first keyframe reaches it
            try:
                self.start()
            except WebRTCError:
                self.remove_viewer(viewer_id)
                raise
        if self.metrics is not None:
            self.metrics.set_gauge("framecast_webrtc_viewers", len(self.viewers), mount=self.name)

        if offer is None:
            promise = Gst.Promise.new_with_change_func(self._on_offer_created, v)
            webrtc.emit("create-offer", None, promise)
        else:
            desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, offer)
            promise = Gst.Promise.new_with_change_func(self._on_remote_offer_set, v)
            webrtc.emit("set-remote-description", desc, promise)

    def set_remote(self, viewer_id: str, sdp_type: str, sdp: str) -> None:
        v = self._viewer(viewer_id)
        msg = _sdp_message(sdp)
        if sdp_type != "answer":
            raise WebRTCError("the producer made the offer: expected an answer")
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        # a rejected answer ends the viewer now (it would otherwise wait for the pending timeout)
        promise = Gst.Promise.new_with_change_func(self._on_remote_answer_set, v)
        v.webrtc.emit("set-remote-description", desc, promise)

    def add_ice(self, viewer_id: str, mline: int, candidate: str) -> None:
        v = self._viewer(viewer_id)
        if candidate:  # an empty candidate only marks the end of gathering
            v.webrtc.emit("add-ice-candidate", mline, candidate)

    def remove_viewer(self, viewer_id: str) -> bool:
        """Unlink and destroy a viewer's branch; False if it was already gone."""
        v = self.viewers.pop(viewer_id, None)
        if v is None:
            return False
        v.closed = True
        for q in (v.queue, v.aqueue):
            if q is None:
                continue
            qsink = q.get_static_pad("sink")
            teepad = qsink.get_peer()
            if teepad is not None:
                teepad.unlink(qsink)
                teepad.get_parent_element().release_request_pad(teepad)
        for obj, hid in v.handlers:
            obj.disconnect(hid)
        v.handlers.clear()
        for el in reversed(self._elements(v)):
            el.set_state(Gst.State.NULL)
            parent = el.get_parent()
            if parent is not None:
                parent.remove(el)
        if self.metrics is not None:
            self.metrics.set_gauge("framecast_webrtc_viewers", len(self.viewers), mount=self.name)
        if not self.viewers:
            self._schedule_idle_stop()
        return True

    @staticmethod
    def _elements(v: _Viewer) -> list[Gst.Element]:
        """The viewer's branch, upstream first."""
        audio = [el for el in (v.aqueue, v.apay) if el is not None]
        return [v.queue, v.pay, *audio, v.webrtc]

    def _viewer(self, viewer_id: str) -> _Viewer:
        v = self.viewers.get(viewer_id)
        if v is None:
            raise WebRTCError(f"unknown viewer '{viewer_id}'")
        return v

    def _fail(self, v: _Viewer, reason: str) -> None:
        if not v.closed:
            self.remove_viewer(v.id)
            v.events.post(v.events.on_closed, reason)

    # -- webrtcbin callbacks (webrtcbin's threads: pure work + hand-off) ------------------------

    def _on_offer_created(self, promise: Gst.Promise, v: _Viewer) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None or v.closed:
            if not v.closed:
                v.events.post(v.events.on_closed, "could not create an offer")
            return
        text = offer.sdp.as_text()  # read before webrtcbin owns it
        v.webrtc.emit("set-local-description", offer, None)
        v.offered = True
        v.events.post(v.events.on_sdp, "offer", text)

    def _on_remote_answer_set(self, promise: Gst.Promise, v: _Viewer) -> None:
        error = _promise_error(promise)
        if error is not None and not v.closed:
            self._later(lambda: self._fail(v, f"answer rejected: {error}"))

    def _on_remote_offer_set(self, promise: Gst.Promise, v: _Viewer) -> None:
        if v.closed:
            return
        error = _promise_error(promise)
        if error is not None:
            self._later(lambda: self._fail(v, f"offer rejected: {error}"))
            return
        promise = Gst.Promise.new_with_change_func(self._on_answer_created, v)
        v.webrtc.emit("create-answer", None, promise)

    def _on_answer_created(self, promise: Gst.Promise, v: _Viewer) -> None:
        reply = promise.get_reply()
        answer = reply.get_value("answer") if reply is not None else None
        if answer is None or v.closed:
            if not v.closed:
                v.events.post(v.events.on_closed, "could not create an answer")
            return
        text = answer.sdp.as_text()  # read before webrtcbin owns it
        v.webrtc.emit("set-local-description", answer, None)
        v.events.post(v.events.on_sdp, "answer", text)

    def _on_ice_candidate(self, _webrtc: Gst.Element, mline: int, candidate: str,
                          v: _Viewer) -> None:
        v.candidates.append((mline, candidate))
        if not v.closed:
            v.events.post(v.events.on_ice, mline, candidate)

    def _on_gathering(self, webrtc: Gst.Element, _pspec: Any, v: _Viewer) -> None:
        state = webrtc.get_property("ice-gathering-state")
        if state != GstWebRTC.WebRTCICEGatheringState.COMPLETE or v.closed:
            return
        desc = webrtc.get_property("local-description")
        if desc is None:
            return
        v.events.post(v.events.on_gathered, with_candidates(desc.sdp.as_text(), v.candidates))

    def _on_ice_state(self, webrtc: Gst.Element, _pspec: Any, v: _Viewer) -> None:
        state = webrtc.get_property("ice-connection-state")
        log.debug("%s: viewer %s ICE %s", self.name, v.id, state.value_nick)
        if state in (GstWebRTC.WebRTCICEConnectionState.CONNECTED,
                     GstWebRTC.WebRTCICEConnectionState.COMPLETED) and not v.connected:
            v.connected = True
            if not v.closed:
                v.events.post(v.events.on_connected)
        if state in (GstWebRTC.WebRTCICEConnectionState.FAILED,
                     GstWebRTC.WebRTCICEConnectionState.CLOSED) and not v.closed:
            # tear down on the GLib thread, never inside webrtcbin's own thread
            self._later(lambda: self._fail(v, f"ICE {state.value_nick}"))

    def _on_peer_gone(self, _rtpbin: Gst.Element, _session: int, ssrc: int, v: _Viewer,
                      why: str) -> None:
        ours = {v.pay.get_property("ssrc")} | (
            {v.apay.get_property("ssrc")} if v.apay is not None else set())
        if ssrc not in ours and not v.closed:
            self._later(lambda: self._fail(v, f"peer left ({why})"))

    # -- reporting -------------------------------------------------------------------------------

    def _refresh(self) -> None:
        if self._describe is None:
            return
        self.info = self._describe()
        audio_was = self.audio_mode
        self.audio_mode, self.audio_reason = webrtc_audio(self.info)
        was = self.transcoded
        if self._forced is None:
            self.transcoded = needs_transcode(self.info)
        if (self.transcoded != was or self.audio_mode != audio_was) and not self.running:
            self._free()  # built before the relay knew its camera: build it again

    def describe(self) -> dict[str, Any]:
        if not self.running:
            self._refresh()
        return {
            "codec": self.info.codec,
            "profile": self.info.profile,
            "b_frames": self.info.reordered,
            "audio": self.info.audio,
            "webrtc": {
                "codec": "h264",
                "profile": self.webrtc_profile,
                "transcoded": self.transcoded,
                "transcode_reason": transcode_reason(self.info) if self.transcoded else None,
                # passthrough (Opus) | transcoded (AAC → Opus, once per mount) | none
                "audio": self.audio_mode,
                "audio_codec": "opus" if self.audio_mode != AUDIO_NONE else None,
                "audio_reason": self.audio_reason,
                "audio_encoders": self.element_count("opusenc", recurse=True),
                "audio_viewers": sum(v.apay is not None for v in self.viewers.values()),
                "viewers": len(self.viewers),
                "webrtcbins": self.webrtcbin_count(),
                "sei_reinjected": self.sei_reinjected,
                # lazy producer: runs only while watched (see MountProducer)
                "producer_running": self.running,
                "producer_starts": self.starts,
                "idle_stop_s": self.idle_stop,
                "stopping_in_s": (None if (left := self.stopping_in) is None
                                  else round(left, 2)),
            },
            "frames": self.frames,
            "error": self.error,
        }


def _one_line(text: str | None, limit: int = 300) -> str:
    from framecast.logs import bounded

    return bounded(" ".join((text or "").split()), limit)


def _promise_error(promise: Gst.Promise) -> str | None:
    """webrtcbin's error for a failed description, if its reply carries one (cut short)."""
    reply = promise.get_reply()
    if reply is None or not reply.has_field("error"):
        return None
    from framecast.logs import bounded

    err = reply.get_value("error")
    return bounded(getattr(err, "message", err), 160)  # it may quote the peer's SDP


def producer_factory(name: str, source: SourceFactory, info: StreamInfo,
                     transcode: bool | None = None,
                     describe: Callable[[], StreamInfo] | None = None) -> ProducerFactory:
    """How the HTTP side makes this mount's producer (on the GLib thread), given its options."""

    def make(opts: ProducerOptions) -> MountProducer:
        prod = MountProducer(name, source, info, transcode=transcode, metrics=opts.metrics,
                             idle_stop=opts.idle_stop, max_viewers=opts.max_viewers,
                             describe=describe)
        if opts.idle_stop is None:
            prod.start()
        return prod

    return make


def mount_spec(name: str, source: SourceFactory, info: StreamInfo,
               transcode: bool | None = None, rtsp_url: str | None = None,
               status: Callable[[], Mapping[str, Any]] | None = None) -> MountSpec:
    """A mount offered over WebRTC from ``source`` (what the HTTP side is handed)."""
    return MountSpec(name, producer_factory(name, source, info, transcode), rtsp_url, status)
