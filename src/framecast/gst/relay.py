"""Relay mounts that survive their camera: reconnect with backoff, keep clients across an outage.

The camera is pulled by a small pipeline of its own, one per mount (``RelayHub``), shared by
every media that serves the mount (the RTSP media and the WebRTC producer):

    upstream:  rtspsrc ! depay ! parse ! appsink          (torn down and rebuilt per attempt)
    served:    appsrc ! parse ! [SEI injector] ! pay0      (lives as long as its clients)

The served side never sees the camera go: during an outage its appsrc just gets nothing, and
after a reconnection each session's timestamps are rebased onto the served running time
(``relaypolicy.TimeMapper``), so clients see one continuous, monotonic timeline with a hole as
long as the outage. A camera that stops sending without closing its connection (SIGSTOPped,
unplugged, or — as issue 8 measured — SIGKILLed with UDP transport: 80 s of silence) gives
rtspsrc no error at all, so a buffer watchdog declares the outage, not rtspsrc. After
``grace`` seconds down, an RTSP media gets EOS (rtpbin sends RTCP BYE: clients end) and
``on_end`` lets the RTSP server close their connections; a WebRTC producer just waits.

A hub runs (one thread, no GLib main loop) only while some media consumes it; the first media
of a mount whose camera does not answer gets an error, so its client gets 503.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gi.repository import GLib, Gst  # noqa: I001 - after runtime's gi.require_version

from framecast.codecs import AUDIO_CODECS, CARRIED_AUDIO, CODECS, Codec, audio_codec_of_rtp
from framecast.gst.element import make_element
from framecast.gst.media import DEPAYLOADERS
from framecast.hops import take_origin
from framecast.relaypolicy import Backoff, Outage, TimeMapper, single_parameter_sets
from framecast.sps import profile_of_au

log = logging.getLogger("framecast.relay")

PARSERS = {name: c.parser for name, c in CODECS.items()}
LINGER = 1.0          # s a hub keeps its camera after its last consumer left
POLL = 0.05           # s the hub thread waits for a sample before looking around
KEYFRAME_WAIT = 20.0  # s a (re)connection may take to bring its first keyframe
SDP_WAIT = 1.0        # s a new media waits for the camera's SDP (audio or not), at most


@dataclass(frozen=True)
class RelayPolicy:
    """How a relay treats its camera (from the mount's ``relay_*`` keys)."""

    retry_max: float = 10.0      # s: the longest wait between two attempts
    grace: float = 20.0          # s: clients stay connected this long while the camera is down
    timeout: float = 3.0         # s: no frame for this long (or no answer) = the camera is down


@dataclass
class Consumer:
    """One served media's appsrc, fed by the hub."""

    appsrc: Gst.Element
    owner: Gst.Element                       # the served bin (error_logged set on it)
    on_end: Callable[[], None] | None = None
    mapper: TimeMapper = field(default_factory=TimeMapper)
    caps: Gst.Caps | None = None
    fed: bool = False                        # has had a frame: an outage keeps it waiting
    active: bool = False                     # has been out of NULL once
    ended: bool = False
    added: float = field(default_factory=time.monotonic)
    session: int = -1                        # the upstream session its mapper is based on
    injector: Any = None                     # its SEI injector (origin envelopes go to it)
    audio: Gst.Element | None = None         # its audio appsrc (the camera has audio)
    audio_caps: Gst.Caps | None = None
    audio_last: int = -1                     # the latest audio PTS handed out


def _running_now(el: Gst.Element) -> int | None:
    clock = el.get_clock()
    if clock is None:
        return None
    _ret, state, _pending = el.get_state(0)
    if state != Gst.State.PLAYING:
        return None
    return max(0, clock.get_time() - el.get_base_time())


class RelayHub:
    """The camera of one relay mount, pulled while anyone consumes it."""

    def __init__(self, name: str, source: str, codec: Codec = "h264",
                 policy: RelayPolicy | None = None) -> None:
        self.name = name
        self.source = source
        self.codec = codec
        self.policy = policy or RelayPolicy()
        self.outage = Outage(name, source)
        self.backoff = Backoff(initial=0.5, maximum=max(0.5, self.policy.retry_max))
        self.consumers: list[Consumer] = []
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pipeline: Gst.Pipeline | None = None
        self.sink: Gst.Element | None = None
        self.session = 0            # counts upstream attempts
        self.session_fed = False    # this attempt has delivered a keyframe
        self.session_data = False   # this attempt has delivered anything
        self.attempt_at = 0.0
        self.last_data = 0.0
        self.retry_at = 0.0
        self.attempts = 0
        self.reconnects = 0
        self.profile: str | None = None  # the camera's, from its caps or its first SPS
        self.audio: str | None = None    # the camera's audio codec (codecs.AUDIO_CODECS)
        self.audio_warned = False
        self.described = False           # its SDP seen (by a probe or a session)
        self.asink: Gst.Element | None = None
        self.prober: threading.Thread | None = None  # a probe for its SDP, in the background
        self.sdp_done = threading.Event()  # that probe's SDP step is over (answered or not)

    # -- consumers (any thread) ----------------------------------------------------------
    def add(self, appsrc: Gst.Element, owner: Gst.Element,
            audio: Gst.Element | None = None) -> Consumer:
        c = Consumer(appsrc, owner, audio=audio)
        with self.lock:
            if not any(o.fed and not o.ended for o in self.consumers):
                # no stream is waiting out an outage: a new request tries the camera now,
                # whatever the backoff said
                self.retry_at = 0.0
            self.consumers.append(c)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name=f"relay-{self.name}",
                                               daemon=True)
                self.thread.start()
        return c

    # -- the hub thread ------------------------------------------------------------------
    def _run(self) -> None:
        idle_since: float | None = None
        while True:
            now = time.monotonic()
            with self.lock:
                demand = self._prune()
                idle = not self.consumers
            if idle:
                idle_since = idle_since or now
                if now - idle_since >= LINGER:
                    self._stop_pipeline()  # before giving up the hub: a new thread may start
                    with self.lock:
                        if not self.consumers:
                            self.thread = None
                            return
            else:
                idle_since = None
            try:
                if self.pipeline is None:
                    if demand and now >= self.retry_at:
                        self._start()
                    else:
                        time.sleep(POLL)
                else:
                    self._pump()
                self._check_grace(time.monotonic())
            except Exception as exc:  # the hub must outlive any surprise: count it a failure
                log.debug("/%s: relay hub: %r", self.name, exc)
                self._failed(f"internal error: {exc}")

    def _prune(self) -> bool:
        """Drop consumers whose media is gone; True if one wants frames (PAUSED or on its way
        to it: a bin only built, or set to READY to check it, does not call the camera)."""
        keep = []
        now = time.monotonic()
        demand = False
        wanting = (Gst.State.PAUSED, Gst.State.PLAYING)
        for c in self.consumers:
            if c.ended:
                continue
            _ret, state, pending = c.appsrc.get_state(0)
            if state != Gst.State.NULL or pending not in (Gst.State.VOID_PENDING, Gst.State.NULL):
                c.active = True
                demand = demand or state in wanting or pending in wanting
            elif c.active or now - c.added > 10:
                continue  # its media is gone (or was built but never started)
            keep.append(c)
        self.consumers = keep
        return demand

    def _start(self) -> None:
        self.session += 1
        self.attempts += 1
        self.session_fed = False
        self.session_data = False
        self.attempt_at = time.monotonic()
        try:
            self.pipeline, self.sink = self._build()
        except Exception as exc:  # a missing plugin: nothing a retry would change
            self._failed(str(exc))
            return
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            self._failed("cannot start the camera pipeline")

    def _build(self) -> tuple[Gst.Pipeline, Gst.Element]:
        p = Gst.Pipeline.new(f"relay-{self.name}-{self.session}")
        t_us = int(self.policy.timeout * 1_000_000)
        # buffer-mode none: PTS from the camera's RTP clock, exactly spaced (the default skew
        # correction moved them with every arrival delay); TimeMapper follows the drift
        src = make_element("rtspsrc", "src", location=self.source, latency=200, buffer_mode=0,
                           tcp_timeout=t_us, timeout=t_us)
        depay = make_element(DEPAYLOADERS[self.codec], "depay")
        parse = make_element(PARSERS[self.codec], "parse", config_interval=-1)
        caps = make_element("capsfilter", caps=Gst.Caps.from_string(
            f"video/x-{self.codec},stream-format=byte-stream,alignment=au"))
        sink = make_element("appsink", "sink", sync=False, max_buffers=200, drop=True,
                            emit_signals=False)
        for el in (src, depay, parse, caps, sink):
            p.add(el)
        depay.link(parse)
        parse.link(caps)
        caps.link(sink)

        def on_pad(_src: Gst.Element, pad: Gst.Pad) -> None:
            pcaps = pad.get_current_caps() or pad.query_caps(None)
            sinkpad = depay.get_static_pad("sink")
            st = pcaps.get_structure(0)
            if st.get_string("media") == "video" and not sinkpad.is_linked():
                pad.link(sinkpad)
            elif st.get_string("media") == "audio" and self.asink is None:
                self._link_audio(p, pad, st)

        src.connect("pad-added", on_pad)
        src.connect("no-more-pads", lambda _src: setattr(self, "described", True))
        return p, sink

    def _link_audio(self, p: Gst.Pipeline, pad: Gst.Pad, st: Gst.Structure) -> None:
        """The camera's audio: depay ! parse ! appsink (its frames follow the video's
        timeline, ``_deliver_audio``)."""
        found = audio_codec_of_rtp(st.get_string("encoding-name"))
        if found is None:
            if not self.audio_warned:  # once per camera, not per reconnection
                self.audio_warned = True
                log.warning("/%s: the camera's %s audio is not relayed (%s); video only",
                            self.name, st.get_string("encoding-name") or "?", CARRIED_AUDIO)
            return
        codec, depayloader = found
        chain = [make_element(depayloader), make_element(AUDIO_CODECS[codec].parser),
                 make_element("appsink", "asink", sync=False, max_buffers=200, drop=True,
                              emit_signals=False)]
        for el in chain:
            p.add(el)
        for a, b in zip(chain, chain[1:], strict=False):
            a.link(b)
        for el in chain:
            el.sync_state_with_parent()
        if pad.link(chain[0].get_static_pad("sink")) == Gst.PadLinkReturn.OK:
            self.audio = codec
            self.asink = chain[-1]

    def _pump(self) -> None:
        assert self.sink is not None and self.pipeline is not None
        sample = self.sink.emit("try-pull-sample", int(POLL * Gst.SECOND))
        now = time.monotonic()
        if sample is not None:
            self._deliver(sample, now)
        asink = self.asink
        while asink is not None and (audio := asink.emit("try-pull-sample", 0)) is not None:
            self._deliver_audio(audio)
        bus = self.pipeline.get_bus()
        msg = bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.EOS)
        if msg is not None:
            if msg.type == Gst.MessageType.EOS:
                self._failed("the camera ended its stream")
            else:
                self._failed(msg.parse_error()[0].message)
            return
        # frames before the first keyframe count as life (a long GOP is no outage), but a
        # camera that never sends a keyframe is one
        since = self.last_data if self.session_data else self.attempt_at
        if now - since > self.policy.timeout:
            self._failed(f"no frames for {self.policy.timeout:g} s" if self.session_data
                         else f"no answer within {self.policy.timeout:g} s")
        elif not self.session_fed and now - self.attempt_at > KEYFRAME_WAIT:
            self._failed(f"no keyframe within {KEYFRAME_WAIT:g} s")

    def _deliver(self, sample: Gst.Sample, now: float) -> None:
        buf = sample.get_buffer()
        self.session_data = True
        first = not self.session_fed
        if not self.session_fed:
            if buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
                self.last_data = now
                return  # a reconnection starts at a keyframe: nothing undecodable in between
            self.session_fed = True
            if self.outage.down or not self.outage.ever_up:
                line = self.outage.restored(now)
                if line:
                    log.info("%s", line)
            self.reconnects += 1
            self.backoff.reset()
        self.last_data = now
        caps = sample.get_caps()
        pts = None if buf.pts == Gst.CLOCK_TIME_NONE else buf.pts
        dts = None if buf.dts == Gst.CLOCK_TIME_NONE else buf.dts
        # an origin's envelope (a framecast or Publisher upstream) leaves the AU once, here,
        # and each consumer's injector writes it back with our stamps in its "hops"
        raw = buf.extract_dup(0, buf.get_size())
        data, origin = take_origin(raw, self.codec)
        if first:  # the depayloader's copy of the SDP's parameter sets goes
            data = single_parameter_sets(data, self.codec)
            self.profile = stream_profile(caps, data, self.codec) or self.profile
        with self.lock:
            consumers = list(self.consumers)
        for c in consumers:
            if c.ended:
                continue
            if c.session != self.session:
                c.session = self.session
                c.mapper.rebase()
            running = _running_now(c.appsrc)
            clocked = running is not None
            if running is None:
                running = 0 if c.mapper.last is None else c.mapper.last
            out_pts, out_dts = c.mapper.map(pts, dts, running, clocked)
            if data is raw:
                out = buf.copy()
            else:
                out = Gst.Buffer.new_wrapped(data)
                out.set_flags(buf.get_flags())
            if origin is not None and (c.injector is not None or self._find_injector(c)):
                c.injector.put(out_pts if out_pts is not None else 0, origin)
            out.pts = Gst.CLOCK_TIME_NONE if out_pts is None else out_pts
            out.dts = Gst.CLOCK_TIME_NONE if out_dts is None else out_dts
            if caps is not None and (c.caps is None or not c.caps.is_equal(caps)):
                c.appsrc.set_property("caps", caps)
                c.caps = caps
            c.appsrc.emit("push-buffer", out)
            c.fed = True

    def _deliver_audio(self, sample: Gst.Sample) -> None:
        """An audio frame on each consumer's video timeline: the same offset as the video of
        this session (rtspsrc syncs the camera's streams), none before its first keyframe."""
        buf = sample.get_buffer()
        if not self.session_fed or buf.pts == Gst.CLOCK_TIME_NONE:
            return
        caps = sample.get_caps()
        with self.lock:
            consumers = list(self.consumers)
        for c in consumers:
            offset = c.mapper.offset
            if c.ended or c.audio is None or c.session != self.session or offset is None:
                continue
            pts = buf.pts + offset
            if pts <= c.audio_last:
                continue  # never back into gst-rtsp-server's TCP backlog
            c.audio_last = pts
            out = buf.copy()
            out.pts = out.dts = pts
            if caps is not None and (c.audio_caps is None or not c.audio_caps.is_equal(caps)):
                c.audio.set_property("caps", caps)
                c.audio_caps = caps
            c.audio.emit("push-buffer", out)

    def _find_injector(self, c: Consumer) -> bool:
        c.injector = c.owner.get_by_name(f"inject-{self.name}")
        return c.injector is not None

    def _failed(self, reason: str) -> None:
        now = time.monotonic()
        self._stop_pipeline()
        line = self.outage.lost(reason, now)
        if line:
            log.warning("%s", line)
        delay = self.backoff.next_delay()
        self.retry_at = now + delay
        log.debug("/%s: attempt %d failed (%s); next in %.1f s", self.name, self.attempts,
                  reason, delay)
        # a media that never had a frame is still answering its client's DESCRIBE: fail it
        # now (503) instead of letting it wait for a camera that may never come
        with self.lock:
            waiting = [c for c in self.consumers if not c.fed and not c.ended]
        for c in waiting:
            c.ended = True
            c.owner.error_logged = True  # the outage line above says it; no second line
            err = GLib.Error.new_literal(Gst.ResourceError.quark(),
                                         f"camera unreachable ({reason})",
                                         int(Gst.ResourceError.OPEN_READ))
            c.appsrc.post_message(Gst.Message.new_error(c.appsrc, err, reason))

    def _check_grace(self, now: float) -> None:
        if not self.outage.down or self.outage.down_for(now) < self.policy.grace:
            return
        with self.lock:
            # RTSP medias (with on_end) end; a WebRTC producer keeps waiting for the camera
            # (its viewers have their own timeouts) and resumes with it
            ending = [c for c in self.consumers if c.fed and not c.ended and c.on_end]
        if not ending:
            return
        log.warning("/%s: camera down for %.0f s: ending %d stream%s", self.name,
                    self.outage.down_for(now), len(ending), "" if len(ending) == 1 else "s")
        for c in ending:
            c.ended = True
            c.appsrc.emit("end-of-stream")
            try:
                c.on_end()  # type: ignore[misc]
            except Exception as exc:  # ending clients must not kill the hub
                log.debug("/%s: on_end: %s", self.name, exc)

    def _stop_pipeline(self) -> None:
        p, self.pipeline, self.sink, self.asink = self.pipeline, None, None, None
        if p is not None:
            p.set_state(Gst.State.NULL)


def stream_profile(caps: Gst.Caps | None, au: bytes, codec: str) -> str | None:
    """The profile the caps say, else the one the keyframe's SPS says (None: neither)."""
    if caps is not None and caps.get_size():
        named = caps.get_structure(0).get_string("profile")
        if named:
            return named
    found = profile_of_au(au, codec)  # type: ignore[arg-type]
    return found.profile if found is not None else None


@dataclass
class CameraProbe:
    answered: bool = False          # its SDP came (DESCRIBE answered, pads made)
    audio: str | None = None        # "aac" / "opus" if it has audio we can relay
    profile: str | None = None      # from its first keyframe (when asked for)


def probe_camera(source: str, codec: Codec = "h264", timeout: float = 5.0,
                 keyframe: bool = True) -> CameraProbe:
    """What a camera sends: its audio (from the SDP) and, with ``keyframe``, its video profile
    (from its first keyframe). Gives up after ``timeout`` s with what it has."""
    found = CameraProbe()
    p = Gst.Pipeline.new("relay-probe")
    t_us = int(timeout * 1_000_000)
    src = make_element("rtspsrc", location=source, latency=0, tcp_timeout=t_us, timeout=t_us)
    depay = make_element(DEPAYLOADERS[codec])
    chain = [depay, make_element(PARSERS[codec]),
             make_element("capsfilter", caps=Gst.Caps.from_string(
                 f"video/x-{codec},stream-format=byte-stream,alignment=au")),
             make_element("appsink", sync=False, max_buffers=30, drop=True)]
    for el in (src, *chain):
        p.add(el)
    for a, b in zip(chain, chain[1:], strict=False):
        a.link(b)

    def on_pad(_src: Gst.Element, pad: Gst.Pad) -> None:
        st = (pad.get_current_caps() or pad.query_caps(None)).get_structure(0)
        sinkpad = depay.get_static_pad("sink")
        if st.get_string("media") == "video" and not sinkpad.is_linked():
            pad.link(sinkpad)
        elif st.get_string("media") == "audio":
            got = audio_codec_of_rtp(st.get_string("encoding-name"))
            found.audio = found.audio or (got[0] if got else None)
            sink = make_element("fakesink", sync=False)
            sink.set_property("async", False)
            p.add(sink)
            sink.sync_state_with_parent()
            pad.link(sink.get_static_pad("sink"))

    src.connect("pad-added", on_pad)
    src.connect("no-more-pads", lambda _src: setattr(found, "answered", True))
    sink, bus = chain[-1], p.get_bus()
    end = time.monotonic() + timeout
    try:
        if p.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            return found
        while time.monotonic() < end:
            if bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.EOS) is not None:
                return found
            if found.answered and (found.profile or not keyframe):
                return found
            sample = sink.emit("try-pull-sample", int(POLL * Gst.SECOND))
            if keyframe and not found.profile and sample is not None \
                    and not sample.get_buffer().has_flags(Gst.BufferFlags.DELTA_UNIT):
                buf = sample.get_buffer()
                found.profile = stream_profile(sample.get_caps(),
                                               buf.extract_dup(0, buf.get_size()), codec)
        return found
    finally:
        p.set_state(Gst.State.NULL)


def _probe(hub: RelayHub, keyframe: bool) -> None:
    try:
        got = probe_camera(hub.source, hub.codec, hub.policy.timeout + 2.0, keyframe)
        if got.answered:
            hub.described = True
            hub.audio = got.audio
        hub.profile = got.profile or hub.profile
    finally:
        hub.sdp_done.set()


def _describe(hub: RelayHub) -> None:
    """The SDP first (a media being built waits for its audio), then the profile from a
    keyframe (WebRTC decides on it when its first viewer comes)."""
    _probe(hub, keyframe=False)
    if hub.described and hub.profile is None:
        _probe(hub, keyframe=True)


def known_camera_profile(mount: Any) -> str | None:
    """A relay mount's camera profile as far as known now (never waits)."""
    return hub_for(mount).profile


def known_camera_audio(mount: Any) -> str | None:
    """A relay mount's camera audio codec as far as known now (never waits)."""
    return hub_for(mount).audio


def describe_soon(mount: Any) -> threading.Thread | None:
    """Learn the camera's SDP in the background unless known (a mount being added calls it,
    so its first client does not wait); the probe thread, or None if nothing to learn."""
    hub = hub_for(mount)
    with hub.lock:
        if hub.described:
            return None
        if hub.prober is None or not hub.prober.is_alive():
            hub.sdp_done.clear()
            hub.prober = threading.Thread(target=_describe, args=(hub,), daemon=True,
                                          name=f"relay-probe-{hub.name}")
            hub.prober.start()
        return hub.prober


def camera_audio(mount: Any, wait: float = SDP_WAIT) -> str | None:
    """A relay mount's camera audio codec, as far as known within ``wait`` s: a media is
    built on the RTSP server's thread, which must not hang on a camera that does not answer
    (its media then fails anyway, and the next one has the audio)."""
    if describe_soon(mount) is not None:
        hub_for(mount).sdp_done.wait(wait)
    return hub_for(mount).audio


_hubs: dict[tuple[str, str, str], RelayHub] = {}
_hubs_lock = threading.Lock()


def hub_for(mount: Any) -> RelayHub:
    """The hub of a relay mount (one per name, source and codec in the process)."""
    codec: Codec = getattr(mount, "codec", "h264") or "h264"
    key = (mount.name, mount.source, codec)
    policy = RelayPolicy(retry_max=float(getattr(mount, "relay_retry_max", 10.0)),
                         grace=float(getattr(mount, "relay_grace", 20.0)),
                         timeout=float(getattr(mount, "relay_timeout", 3.0)))
    with _hubs_lock:
        hub = _hubs.get(key)
        if hub is None or hub.policy != policy:
            hub = _hubs[key] = RelayHub(mount.name, mount.source, codec, policy)
        return hub


def make_relay_source(mount: Any) -> tuple[Gst.Element,
                                           Callable[[Gst.Element, Gst.Element | None], Consumer]]:
    """The served side's source: a live appsrc, and ``attach(owner_bin, audio_appsrc)`` to
    start feeding it (and the audio appsrc, if any: :func:`make_relay_audio_source`)."""
    codec = getattr(mount, "codec", "h264") or "h264"
    appsrc = make_element("appsrc", "relaysrc", is_live=True, format=Gst.Format.TIME,
                          do_timestamp=False, max_bytes=8_000_000, block=False,
                          caps=Gst.Caps.from_string(
                              f"video/x-{codec},stream-format=byte-stream,alignment=au"))
    try:
        appsrc.set_property("leaky-type", 2)  # downstream: drop the oldest when full (1.20+)
    except TypeError:
        pass
    hub = hub_for(mount)
    return appsrc, lambda owner, audio=None: hub.add(appsrc, owner, audio)


def make_relay_audio_source(mount: Any) -> tuple[Gst.Element, str] | None:
    """A live appsrc for the camera's audio and its codec, or None if it has none we relay."""
    codec = camera_audio(mount)
    if codec is None:
        return None
    appsrc = make_element("appsrc", "relayasrc", is_live=True, format=Gst.Format.TIME,
                          do_timestamp=False, max_bytes=1_000_000, block=False)
    try:
        appsrc.set_property("leaky-type", 2)
    except TypeError:
        pass
    return appsrc, codec


def end_media_after_outage(consumer: Consumer, media: Any, server: Any,
                           context: GLib.MainContext) -> None:
    """When ``consumer``'s camera stayed down past the grace (its appsrc got EOS, so clients
    get RTCP BYE): close the clients of ``media`` and unprepare it (``ending.close_later``)."""
    from framecast.gst.ending import close_later

    consumer.on_end = lambda: close_later(server, media, context)
