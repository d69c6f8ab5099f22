"""A Python WebRTC consumer: ``webrtcbin`` (recvonly) + a WHEP POST, as a source bin.

``make_webrtc_source("webrtc://host:8080/<mount>")`` returns a :class:`WebRTCSource` bin whose
ghost ``src`` pad produces ``video/x-h264,stream-format=byte-stream,alignment=au`` (SEI kept).
The HTTP exchange runs on a worker thread (never on the GLib thread or a streaming thread);
going to NULL sends the WHEP ``DELETE``. Failures are posted as element errors on the bus.
``audio=True`` also offers a recvonly Opus section; if the server sends audio, a second ghost
pad ``audio`` (``audio/x-opus``) appears (the bin's ``pad-added``).

URL forms: ``webrtc://host:port/mount`` (WHEP at ``http://host:port/whep/mount``),
``whep://…`` or ``http(s)://…/whep/mount`` (used as is).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

from framecast.codecs import VIDEO_PT, video_codec  # noqa: E402
from framecast.gst.element import make_element  # noqa: E402
from framecast.gst.nice import no_upnp, on_rtp_sessions  # noqa: E402
from framecast.gst.plumbing import add_chain, link_pad  # noqa: E402
from framecast.gst.runtime import init_gst  # noqa: E402
from framecast.sei import Codec  # noqa: E402

init_gst()  # the element classes below need an initialised GStreamer

log = logging.getLogger("framecast.whep")
OPUS_PT = 111  # the audio section's payload type (Chromium's; the answer may pick another)


def whep_url(url: str) -> str:
    """The HTTP WHEP endpoint for a ``webrtc://`` (or ``whep://``/``http://``) URL."""
    parts = urllib.parse.urlsplit(url)
    mount = parts.path.strip("/")
    if parts.scheme in ("http", "https"):
        return url
    if parts.scheme not in ("webrtc", "whep") or not parts.hostname or not mount:
        raise ValueError(f"{url}: expected webrtc://host:port/<mount>")
    if mount.startswith("whep/"):
        mount = mount[5:]
    host = parts.netloc
    if parts.port is None:
        from framecast.config import DEFAULTS

        host = f"{host}:{DEFAULTS.http_port}"
    return f"http://{host}/whep/{urllib.parse.quote(mount)}"


def unbundle_only(sdp: str) -> str:
    """webrtcbin's max-bundle offer gives every section after the first port 0 and
    ``a=bundle-only``; browsers send port 9 and no such line, and WHEP servers (ours
    included) read port 0 as a rejected section. Offer as browsers do: same BUNDLE group."""
    if "a=bundle-only" not in sdp:
        return sdp
    out = []
    for line in sdp.splitlines():
        if line == "a=bundle-only":
            continue
        if line.startswith("m=") and line.split(" ")[1:2] == ["0"]:
            kind, _port, rest = line.split(" ", 2)
            line = f"{kind} 9 {rest}"
        out.append(line)
    return "\r\n".join(out) + "\r\n"


class WebRTCSource(Gst.Bin):
    """webrtcbin + depayloader + parser behind a ghost ``src`` pad (see module doc)."""

    __gtype_name__ = "FramecastWebRTCSource"

    def __init__(self, url: str, timeout: float = 10.0, codec: Codec = "h264",
                 audio: bool = False) -> None:
        super().__init__()
        self.url = url
        self.endpoint = whep_url(url)
        self.timeout = timeout
        self.codec = codec
        self.resource: str | None = None
        self._closed = threading.Event()
        self._posted = False
        self.srcpad = Gst.GhostPad.new_no_target("src", Gst.PadDirection.SRC)
        self.add_pad(self.srcpad)
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        no_upnp(self.webrtc)
        self.add(self.webrtc)
        vc = video_codec(codec)
        caps = Gst.Caps.from_string(
            f"application/x-rtp,media=video,encoding-name={vc.encoding_name},clock-rate=90000,"
            f"payload={VIDEO_PT}"
            # no profile-level-id: we take the mount's stream as it is (the server answers
            # with its profile)
            + (",packetization-mode=(string)1" if codec == "h264" else ""))
        video = self.webrtc.emit("add-transceiver",
                                 GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, caps)
        video.set_property("do-nack", True)  # ask for lost packets again (NACK → RTX)
        # NACKs go out with RTCP: at the default 5 s minimum interval, half of them reached
        # the sender after the jitterbuffer had given the packet up (0-300 ms late,
        # measured); 20 ms sends nearly all at once (a receiver report is ~100 bytes)
        on_rtp_sessions(self.webrtc, {"rtcp-min-interval": 20 * Gst.MSECOND})
        if audio:
            self.webrtc.emit("add-transceiver",
                             GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
                             Gst.Caps.from_string(
                                 f"application/x-rtp,media=audio,encoding-name=OPUS,"
                                 f"clock-rate=48000,payload={OPUS_PT}"))
        self.webrtc.connect("on-negotiation-needed", self._on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self._on_gathering)
        self.webrtc.connect("pad-added", self._on_pad_added)
        self._offer_sent = False

    # -- negotiation (webrtcbin's thread) --------------------------------------------------------

    def _on_negotiation_needed(self, webrtc: Gst.Element) -> None:
        if self._offer_sent:
            return
        self._offer_sent = True
        promise = Gst.Promise.new_with_change_func(self._on_offer, None)
        webrtc.emit("create-offer", None, promise)

    def _on_offer(self, promise: Gst.Promise, _data: Any) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            self._error("webrtcbin could not create an offer")
            return
        self.webrtc.emit("set-local-description", offer, None)

    def _on_gathering(self, webrtc: Gst.Element, _pspec: Any) -> None:
        state = webrtc.get_property("ice-gathering-state")
        if state != GstWebRTC.WebRTCICEGatheringState.COMPLETE or self._posted:
            return
        self._posted = True
        desc = webrtc.get_property("local-description")  # keep it referenced while reading
        sdp = unbundle_only(desc.sdp.as_text())
        # non-trickle WHEP: one POST with the complete offer, on a worker thread
        threading.Thread(target=self._post, args=(sdp,), name="whep-post", daemon=True).start()

    def _post(self, offer: str) -> None:
        req = urllib.request.Request(self.endpoint, data=offer.encode(), method="POST",
                                     headers={"Content-Type": "application/sdp"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                status, body = res.status, res.read().decode()
                location = res.headers.get("Location")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()[:200]
            self._error(f"WHEP POST answered {exc.code}: {detail}")
            return
        except OSError as exc:
            self._error(f"cannot reach {self.endpoint}: {getattr(exc, 'reason', exc)}")
            return
        if status != 201:
            self._error(f"WHEP POST answered {status}, expected 201")
            return
        if location:
            self.resource = urllib.parse.urljoin(self.endpoint, location)
        if self._closed.is_set():  # torn down while we waited: release the server side now
            self._delete()
            return
        res_, msg = GstSdp.SDPMessage.new_from_text(body)
        if res_ != GstSdp.SDPResult.OK:
            self._error("the WHEP answer is not SDP")
            return
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        self.webrtc.emit("set-remote-description", answer, None)

    def _on_pad_added(self, _webrtc: Gst.Element, pad: Gst.Pad) -> None:
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        if caps.get_structure(0).get_string("media") == "audio":
            depay = make_element("rtpopusdepay")
            add_chain(self, [depay], start=True)
            link_pad(pad, depay)
            ghost = Gst.GhostPad.new("audio", depay.get_static_pad("src"))
            ghost.set_active(True)
            self.add_pad(ghost)  # the reader links it (pad-added)
            return
        vc = video_codec(self.codec)
        depay = make_element(vc.depayloader)
        caps = make_element("capsfilter", caps=Gst.Caps.from_string(
            f"{vc.caps},stream-format=byte-stream,alignment=au"))
        add_chain(self, [depay, make_element(vc.parser, config_interval=-1), caps], start=True)
        link_pad(pad, depay)
        self.srcpad.set_target(caps.get_static_pad("src"))

    # -- teardown --------------------------------------------------------------------------------

    def do_change_state(self, transition: Gst.StateChange) -> Gst.StateChangeReturn:
        if transition == Gst.StateChange.PAUSED_TO_READY:
            self.close()
        return Gst.Bin.do_change_state(self, transition)

    def close(self) -> None:
        """Release the server-side viewer (WHEP DELETE, on a worker thread); idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self.resource:
            threading.Thread(target=self._delete, name="whep-delete", daemon=True).start()

    def _delete(self) -> None:
        resource, self.resource = self.resource, None
        if not resource:
            return
        try:
            urllib.request.urlopen(urllib.request.Request(resource, method="DELETE"),
                                   timeout=5).close()
        except OSError as exc:
            log.debug("WHEP DELETE %s: %s", resource, exc)

    def _error(self, text: str) -> None:
        log.debug("%s: %s", self.url, text)  # the reader reports it, prefixed with the URL
        err = GLib.Error.new_literal(Gst.ResourceError.quark(), text, Gst.ResourceError.READ)
        self.post_message(Gst.Message.new_error(self, err, text))


def make_webrtc_source(url: str, timeout: float = 10.0, codec: Codec = "h264",
                       audio: bool = False) -> WebRTCSource:
    """The consumer bin for ``url`` (see module doc); raises ValueError for a bad URL."""
    init_gst()
    return WebRTCSource(url, timeout=timeout, codec=codec, audio=audio)


class Consumers:
    """N WHEP consumers (one pipeline each: source ! fakesink) for load tests and benchmarks.

    ``Consumers(url, n).start()`` on any thread except the GLib one; ``frames`` counts access
    units per consumer; ``stop()`` sends every DELETE. Uses its own GLib thread.
    """

    def __init__(self, url: str, n: int,
                 make_source: Callable[[str], Gst.Element] = make_webrtc_source,
                 pace: float = 0.0) -> None:
        from framecast.gst.runtime import GLibThread

        self.url, self.n = url, n
        self.make_source = make_source  # e.g. janus_client.make_janus_source for an edge
        self.pace = pace  # s between two starts (a burst of ICE/DTLS set-ups starves 2 cores)
        self.frames = [0] * n
        self.errors: list[str] = []
        self.glib = GLibThread("whep-consumers")
        self.pipelines: list[Gst.Pipeline] = []

    def _build(self, i: int) -> Gst.Pipeline:
        pipe = Gst.Pipeline.new(f"consumer-{i}")
        src = self.make_source(self.url)
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        pipe.add(src)
        pipe.add(sink)
        src.link(sink)

        def count(_pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
            self.frames[i] += 1
            return Gst.PadProbeReturn.OK

        sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count)
        bus = pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", lambda _b, m: self.errors.append(m.parse_error()[0].message))
        pipe.set_state(Gst.State.PLAYING)
        return pipe

    def start(self) -> Consumers:
        self.glib.start()
        for i in range(self.n):
            self.pipelines.append(self.glib.call_sync(self._build, i))
            if self.pace:
                time.sleep(self.pace)
        return self

    def stop(self) -> None:
        for pipe in self.pipelines:
            self.glib.call_sync(pipe.set_state, Gst.State.NULL)
        self.pipelines = []
        self.glib.stop()
