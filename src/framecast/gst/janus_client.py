"""A Python consumer through a Janus edge: ``webrtcbin`` answering the streaming plugin's offer.

``janus://host:port/<mount or mountpoint id>`` (Janus HTTP API at ``http://host:port/janus``;
``janus://host:port/some/base/<mount>`` for another base path). A mount name is looked up
among the mountpoints framecast made (their description names the mount). The bin's ghost
``src`` pad gives the same Annex B access units as :mod:`framecast.gst.whep_client` (SEI kept).

The Janus exchange (create, attach, watch, long-poll for the offer, start with our answer)
runs on a worker thread; the long poll then keeps the session alive until the bin goes to NULL,
which destroys the session.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from gi.repository import Gst, GstSdp, GstWebRTC

from framecast.edge import janus_api as api
from framecast.gst.nice import no_upnp
from framecast.gst.runtime import init_gst
from framecast.gst.whep_client import WebRTCSource

init_gst()

log = logging.getLogger("framecast.janus")


def janus_target(url: str) -> tuple[str, str]:
    """(HTTP API URL, mount name or mountpoint id) for a ``janus://`` URL."""
    parts = urllib.parse.urlsplit(url)
    path = [p for p in parts.path.split("/") if p]
    if parts.scheme != "janus" or not parts.hostname or not path:
        raise ValueError(f"{url}: expected janus://host:port/<mount or mountpoint id>")
    base = "/" + "/".join(path[:-1]) if len(path) > 1 else "/janus"
    host = parts.netloc if parts.port is not None else f"{parts.netloc}:8088"
    return f"http://{host}{base}", urllib.parse.unquote(path[-1])


class JanusSource(Gst.Bin):
    """webrtcbin + depayloader + parser behind a ghost ``src`` pad (see module doc)."""

    __gtype_name__ = "FramecastJanusSource"

    def __init__(self, url: str, timeout: float = 10.0, codec: str = "h264") -> None:
        super().__init__()
        self.url = url
        self.api_url, self.target = janus_target(url)
        self.timeout = timeout
        self.codec = codec
        self.session: int | None = None
        self.handle: int | None = None
        self._closed = threading.Event()
        self._answered = False
        self.srcpad = Gst.GhostPad.new_no_target("src", Gst.PadDirection.SRC)
        self.add_pad(self.srcpad)
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        no_upnp(self.webrtc)
        self.add(self.webrtc)
        self.webrtc.connect("notify::ice-gathering-state", self._on_gathering)
        self.webrtc.connect("pad-added", self._on_pad_added)
        self._started = False

    # -- the Janus exchange (worker thread) --------------------------------------------------

    def _post(self, path: str, kind: str, **fields: Any) -> dict[str, Any]:
        body = json.dumps(api.request(kind, **fields)).encode()
        req = urllib.request.Request(self.api_url + path, body,
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            return dict(api.check(json.load(r)))

    def _mountpoint_id(self) -> int:
        if self.target.isdigit():
            return int(self.target)
        answer = self._post(f"/{self.session}/{self.handle}", "message",
                            body={"request": "list"})
        prefix = api.description(self.target, "")[:-len(" from ")] + " from "
        for mp in api.plugin_data(answer).get("list") or []:
            if str(mp.get("description", "")).startswith(prefix):
                return int(mp["id"])
        raise api.JanusError(api.ERR_NO_MOUNTPOINT, f"no mountpoint for /{self.target}")

    def _run(self) -> None:
        try:
            self.session = api.new_id(self._post("", "create"))
            self.handle = api.new_id(self._post(f"/{self.session}", "attach",
                                                plugin=api.STREAMING))
            mp = self._mountpoint_id()
            self._post(f"/{self.session}/{self.handle}", "message",
                       body={"request": "watch", "id": mp})
            while not self._closed.is_set():
                # the long poll (≤30 s) brings the offer, then keeps the session alive
                with urllib.request.urlopen(f"{self.api_url}/{self.session}?maxev=5",
                                            timeout=40) as r:
                    events = json.load(r)
                for ev in events if isinstance(events, list) else [events]:
                    self._on_event(ev)
        except (OSError, ValueError, http.client.HTTPException, api.JanusError) as exc:
            if not self._closed.is_set():
                self._error(f"janus {self.api_url}: {getattr(exc, 'reason', exc)}")
        finally:
            self._destroy()

    def _on_event(self, ev: dict[str, Any]) -> None:
        if ev.get("janus") == "hangup" and not self._closed.is_set():
            self._error(f"janus hung up: {ev.get('reason', '')}")
            return
        data = (ev.get("plugindata") or {}).get("data") or {}
        if "error" in data:
            self._error(f"janus: {data['error']}")
            return
        jsep = ev.get("jsep")
        if jsep and jsep.get("type") == "offer" and not self._answered:
            self._answered = True
            res, msg = GstSdp.SDPMessage.new_from_text(jsep["sdp"])
            if res != GstSdp.SDPResult.OK:
                self._error("janus sent an offer that is not SDP")
                return
            offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, msg)
            promise = Gst.Promise.new_with_change_func(self._on_offer_set, None)
            self.webrtc.emit("set-remote-description", offer, promise)

    def _on_offer_set(self, _promise: Gst.Promise, _data: Any) -> None:
        promise = Gst.Promise.new_with_change_func(self._on_answer, None)
        self.webrtc.emit("create-answer", None, promise)

    def _on_answer(self, promise: Gst.Promise, _data: Any) -> None:
        reply = promise.get_reply()
        answer = reply.get_value("answer") if reply is not None else None
        if answer is None:
            self._error("webrtcbin could not answer Janus's offer")
            return
        self.webrtc.emit("set-local-description", answer, None)

    def _on_gathering(self, webrtc: Gst.Element, _pspec: Any) -> None:
        state = webrtc.get_property("ice-gathering-state")
        if state != GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            return
        desc = webrtc.get_property("local-description")
        if desc is None:
            return
        sdp = desc.sdp.as_text()
        # non-trickle: the answer carries every candidate (from a worker thread: HTTP)
        threading.Thread(target=self._start, args=(sdp,), name="janus-start",
                         daemon=True).start()

    def _start(self, sdp: str) -> None:
        try:
            self._post(f"/{self.session}/{self.handle}", "message",
                       body={"request": "start"}, jsep={"type": "answer", "sdp": sdp})
        except (OSError, ValueError, http.client.HTTPException, api.JanusError) as exc:
            self._error(f"janus start: {getattr(exc, 'reason', exc)}")

    def _on_pad_added(self, webrtc: Gst.Element, pad: Gst.Pad) -> None:
        WebRTCSource._on_pad_added(self, webrtc, pad)  # same chain

    def _error(self, text: str) -> None:
        WebRTCSource._error(self, text)

    # -- teardown ----------------------------------------------------------------------------

    def do_change_state(self, transition: Gst.StateChange) -> Gst.StateChangeReturn:
        if transition == Gst.StateChange.PAUSED_TO_READY:
            self.close()
        ret = Gst.Bin.do_change_state(self, transition)
        if transition == Gst.StateChange.READY_TO_PAUSED and not self._started:
            self._started = True  # webrtcbin is up: ask Janus for its offer
            threading.Thread(target=self._run, name="janus-watch", daemon=True).start()
        return ret

    def close(self) -> None:
        """Leave Janus (the session is destroyed by the worker or here); idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        threading.Thread(target=self._destroy, name="janus-destroy", daemon=True).start()

    def _destroy(self) -> None:
        sid, self.session = self.session, None
        if sid is None:
            return
        try:
            self._post(f"/{sid}", "destroy")
        except (OSError, ValueError, http.client.HTTPException, api.JanusError) as exc:
            log.debug("janus session destroy: %s", exc)


def make_janus_source(url: str, timeout: float = 10.0, codec: str = "h264") -> JanusSource:
    """The consumer bin for a ``janus://`` URL; raises ValueError for a bad URL."""
    init_gst()
    janus_target(url)  # a bad URL fails here, before anything starts
    return JanusSource(url, timeout=timeout, codec=codec)

