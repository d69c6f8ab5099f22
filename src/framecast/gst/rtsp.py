"""gst-rtsp-server glue: one shared media factory per mount, looping media, auth, TLS, logs.

Traps worked around here (measured on 1.22, see /work/shared/GSTREAMER-NOTES.md):
- a second client's ``PLAY Range: npt=0-`` would seek the shared media back to 0 (flushing, so
  everyone gets EOS): every payloader answers the SEEKING query "not seekable", so the media
  never seeks. (Publishing CLOCK_AND_OFFSET did that too, but then 1.22 answers every PAUSE
  with 400, and rtspsrc, VLC & co. error out when they pause or stop);
- the PLAY reply's ``Range: npt=0-<clip length>`` makes rtspsrc stop after one loop:
  ``do_query_stop`` returns False so the range is open-ended;
- the first FLUSH|SEGMENT seek only works once the media is ``prepared``;
- SEGMENT_DONE arrives through ``handle-message::segment-done``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gi

gi.require_version("GstRtsp", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402, I001

from framecast.authguard import FailureGuard
from framecast.config import Settings
from framecast.errors import PortInUse
from framecast.logs import RateLimiter, bounded
from framecast.gst.looping import Looper
from framecast.gst.media import MediaBin
from framecast.gst.rtspguard import ClientGuard
from framecast.gst.timestamps import monotonic_payloader_input

log = logging.getLogger("framecast.rtsp")

BinFactory = Callable[[], Gst.Element]


_DONE = (GstRtspServer.RTSPMediaStatus.UNPREPARED, GstRtspServer.RTSPMediaStatus.ERROR)


class LoopingMedia(GstRtspServer.RTSPMedia):
    """A media whose stop position is unknown (open-ended PLAY range) and that never seeks."""

    __gtype_name__ = "FramecastLoopingMedia"

    def do_query_stop(self, *_args: Any) -> bool:
        # 1.22's GIR lacks the out annotation: the override gets a dummy argument.
        return False


def _not_seekable(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    # HANDLED answers the query as it was made: a new SEEKING query says "not seekable"
    query = info.get_query()
    if query is not None and query.type == Gst.QueryType.SEEKING:
        return Gst.PadProbeReturn.HANDLED
    return Gst.PadProbeReturn.OK


def _refuse_seeking(element: Gst.Element | None) -> None:
    """Every stream of a shared media plays on: no client's PLAY Range may seek it."""
    if not isinstance(element, Gst.Bin):
        return
    for i in range(8):
        pay = element.get_by_name(f"pay{i}")
        if pay is None:
            break
        pay.get_static_pad("src").add_probe(Gst.PadProbeType.QUERY_UPSTREAM, _not_seekable)


class MountFactory(GstRtspServer.RTSPMediaFactory):
    """Builds the mount's bin per (shared) media and wires looping and logging to it."""

    __gtype_name__ = "FramecastMountFactory"

    def __init__(self, name: str, bin_factory: BinFactory, shared: bool = True) -> None:
        super().__init__()
        self.mount_name = name
        self.bin_factory = bin_factory
        self.medias: list[GstRtspServer.RTSPMedia] = []
        self.last_looper: Looper | None = None
        self.owner: RtspServer | None = None  # set by RtspServer.add
        self.set_shared(shared)
        self.set_media_gtype(LoopingMedia)
        self.set_stop_on_disconnect(True)
        self.connect("media-configure", self._on_media_configure)

    def do_create_element(self, url: GstRtspServer.RTSPUrl) -> Gst.Element | None:
        try:
            element = self.bin_factory()
            if isinstance(element, Gst.Bin):
                # timestamps must never go back into gst-rtsp-server's TCP backlog (it aborts)
                # a DTS is derived for files with B-frames but no DTS (Matroska); files with
                # DTS get a timeline where every DTS has a running time (media.py), kept by
                # identity; relays stamp a monotonic DTS themselves (relaypolicy.TimeMapper:
                # 1.22's timestamper stalls an appsrc-fed media) and encoders (app mounts)
                # write one
                info = element.info if isinstance(element, MediaBin) else None
                derive = info is not None and info.reordered and not info.has_dts
                monotonic_payloader_input(element, derive_dts=derive)
            return element
        except Exception as exc:  # a request-time failure costs this request only
            log.error("/%s: %s", self.mount_name, exc)
            return None

    def _on_media_configure(self, _factory: Any, media: GstRtspServer.RTSPMedia) -> None:
        element = media.get_element()
        looper = element.looper if isinstance(element, MediaBin) else None
        self.last_looper = looper
        _refuse_seeking(element)
        name = self.mount_name
        if looper is not None:
            pay0 = element.get_by_name("pay0")
            settle = pay0.get_static_pad("src") if pay0 is not None else None
            media.connect("prepared", lambda _m: looper.start(settle))
            media.connect("handle-message::segment-done", lambda _m, _msg: looper.on_segment_done()
                          or True)
        if self.owner is not None and self.owner.context is not None:
            from framecast.gst.ending import watch_media  # a lost camera, a changed file

            watch_media(media, element, name, self.owner.server, self.owner.context)
        media.connect("handle-message::error", self._on_error)
        media.connect("handle-message::warning", self._on_warning)
        media.connect("unprepared", lambda _m: log.debug("/%s: media stopped", name))
        self.medias.append(media)
        media.connect("unprepared", lambda m: self.medias.remove(m) if m in self.medias else None)

    def _on_error(self, media: Any, msg: Gst.Message) -> bool:
        # one line per failed media: the follow-up errors (state change failed…) add nothing
        element = media.get_element()
        if getattr(media, "_framecast_failed", False) or getattr(element, "error_logged", False):
            return True
        media._framecast_failed = True
        err, _dbg = msg.parse_error()
        src = msg.src.get_name() if msg.src else "?"
        log.error("/%s: %s (%s)", self.mount_name, err.message, src)
        return True

    def _on_warning(self, _media: Any, msg: Gst.Message) -> bool:
        err, _dbg = msg.parse_warning()
        log.debug("/%s: warning: %s", self.mount_name, err.message)
        return True

    @property
    def loop_count(self) -> int:
        return self.last_looper.loop_count if self.last_looper is not None else 0


class GuardedAuth(GstRtspServer.RTSPAuth):
    """RTSPAuth that reports each failed check of offered credentials to ``on_failure``."""

    __gtype_name__ = "FramecastGuardedAuth"

    def __init__(self) -> None:
        super().__init__()
        self.on_failure: Callable[[Any], None] | None = None

    def do_check(self, ctx: Any, check: str) -> bool:
        ok = GstRtspServer.RTSPAuth.do_check(self, ctx, check)
        if not ok and self.on_failure is not None and _offered_credentials(ctx):
            try:
                self.on_failure(ctx)
            except Exception as exc:  # never turn a 401 into a crash
                log.debug("auth failure hook: %s", exc)
        return ok


def make_auth(users: list[tuple[str, str]], method: str = "digest",
              cert: str | None = None, key: str | None = None) -> GstRtspServer.RTSPAuth | None:
    """RTSPAuth with Basic or Digest users (all may watch every mount) and optional TLS."""
    if not users and not cert:
        return None
    auth = GuardedAuth()
    if cert and key:
        auth.set_tls_certificate(Gio.TlsCertificate.new_from_files(cert, key))
    if users:
        methods = {"basic": GstRtsp.RTSPAuthMethod.BASIC,
                   "digest": GstRtsp.RTSPAuthMethod.DIGEST}
        auth.set_supported_methods(methods[method])
        for name, password in users:
            token = GstRtspServer.RTSPToken()
            token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
            if method == "basic":
                auth.add_basic(GstRtspServer.RTSPAuth.make_basic(name, password), token)
            else:
                auth.add_digest(name, password, token)
    else:  # TLS only: everybody is a user
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.set_default_token(token)
    return auth


def allow_users(factory: GstRtspServer.RTSPMediaFactory) -> None:
    """Role 'user' may see and build this factory's media (needed once an auth is set)."""
    factory.add_role_from_structure(Gst.Structure.from_string(
        "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")[0])


def _state_settled(media: GstRtspServer.RTSPMedia) -> bool:
    """No state change in flight in the media's pipeline.

    A PLAY adds its transport's sinks to the shared pipeline. Added while an earlier PLAY's
    PAUSED→PLAYING change is still in flight, a new sink waits for a preroll buffer that never
    comes (the prerolled branches hold the tee), the change never completes and the mount
    stalls for everyone (measured: 12 clients starting at once, ~1 start in 6)."""
    element = media.get_element()
    pipeline = element.get_parent() if element is not None else None
    if pipeline is None:
        return True
    ret, _current, pending = pipeline.get_state(0)
    return ret != Gst.StateChangeReturn.ASYNC and pending == Gst.State.VOID_PENDING


def _segments_ready(media: GstRtspServer.RTSPMedia) -> bool:
    element = media.get_element()
    if element is None or not isinstance(element, Gst.Bin):
        return True
    for i in range(8):
        pay = element.get_by_name(f"pay{i}")
        if pay is None:
            break
        peer = pay.get_static_pad("src").get_peer()
        if peer is None or peer.get_sticky_event(Gst.EventType.SEGMENT, 0) is None:
            return False
    return True


_gst_warnings = RateLimiter(burst=5, interval_s=10.0)
_log_handlers: dict[str, Any] = {}  # domain -> the ctypes callback (kept alive)


def bound_rtsp_warnings() -> None:
    """GStreamer's RTSP libraries g_warning() with the peer's text (a 20 kB Transport header
    came out as a 20 kB line, raw bytes included): route their warnings and criticals through
    our log, one bounded, rate-limited line each. Through ctypes, because the text may not be
    UTF-8 (GI's handler would raise). Once per process; errors (which abort) are left alone."""
    import ctypes
    import ctypes.util

    if _log_handlers:
        return
    glib = ctypes.CDLL(ctypes.util.find_library("glib-2.0") or "libglib-2.0.so.0")
    func_t = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                              ctypes.c_void_p)
    glib.g_log_set_handler.restype = ctypes.c_uint
    glib.g_log_set_handler.argtypes = [ctypes.c_char_p, ctypes.c_int, func_t, ctypes.c_void_p]

    def handler(domain: bytes | None, _level: int, message: bytes | None, _data: Any) -> None:
        name = (domain or b"").decode("ascii", "replace")
        ok, suppressed = _gst_warnings.allow(name)
        if ok:
            text = (message or b"")[:1000].decode("utf-8", "replace")
            more = f" ({suppressed} more suppressed)" if suppressed else ""
            log.warning("%s: %s%s", name, bounded(text, 200), more)

    levels = int(GLib.LogLevelFlags.LEVEL_WARNING | GLib.LogLevelFlags.LEVEL_CRITICAL)
    for domain in ("GStreamer-RTSP", "GStreamer-RTSP-Server"):
        cb = func_t(handler)
        glib.g_log_set_handler(domain.encode(), levels, cb, None)
        _log_handlers[domain] = cb


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (each client costs fds); returns the soft one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.debug("cannot raise the fd limit: %s", exc)
    return soft


# requests whose pre-signal may refuse (503). Not OPTIONS: 1.22's handle_options_request
# frees the response twice when its pre-signal fails (munmap_chunk(): invalid pointer, abort)
_REQUESTS = ("describe", "setup", "play", "pause", "teardown", "get-parameter",
             "set-parameter", "announce", "record")


def _teardown_session(_pool: Any, session: GstRtspServer.RTSPSession,
                      *_a: Any) -> GstRtspServer.RTSPFilterResult:
    """What a TEARDOWN does to each of ``session``'s medias, then drop the session."""
    def teardown(_s: Any, sm: GstRtspServer.RTSPSessionMedia, *_b: Any) -> Any:
        sm.set_state(Gst.State.NULL)  # its transports leave the streams
        return GstRtspServer.RTSPFilterResult.REMOVE

    session.filter(teardown)
    return GstRtspServer.RTSPFilterResult.REMOVE


def _abspath(ctx: Any) -> str:
    """The request's path, "" if none or not text (GI raises on bytes that are not UTF-8)."""
    try:
        uri = ctx.uri
        return uri.abspath or "" if uri is not None else ""
    except (UnicodeDecodeError, TypeError):
        return ""


def _offered_credentials(ctx: Any) -> bool:
    req = ctx.request
    if req is None:
        return False
    res, _value = req.get_header(GstRtsp.RTSPHeaderField.AUTHORIZATION, 0)
    return res == GstRtsp.RTSPResult.OK


class RtspServer:
    """The RTSP server for a set of mounts, attached to a GLib main context.

    ``limits``: an object with the ``rtsp_*`` / ``auth_*`` fields of
    :class:`framecast.config.Settings` (defaults when None).
    """

    def __init__(self, bind: str = "127.0.0.1", port: int = 8554,
                 auth: GstRtspServer.RTSPAuth | None = None,
                 limits: Settings | None = None) -> None:
        lim = limits if limits is not None else Settings()
        bound_rtsp_warnings()
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address(bind)
        self.server.set_service(str(port))
        # the kernel drops SYNs beyond the backlog: 5 made 50 clients wait up to 63 s
        self.server.set_backlog(max(1, int(lim.rtsp_backlog)))
        self.auth = auth
        if auth is not None:
            self.server.set_auth(auth)
            if isinstance(auth, GuardedAuth):
                auth.on_failure = self._on_auth_failure
        self.factories: dict[str, MountFactory] = {}
        self.server.connect("client-connected", self._on_client)
        self._source: GLib.Source | None = None
        self.context: GLib.MainContext | None = None  # where it serves (set by attach)
        self.clients = 0
        self.max_per_mount = int(lim.rtsp_max_clients_per_mount)
        self.max_request_bytes = int(lim.rtsp_max_request_bytes)
        self.guard = ClientGuard(float(lim.rtsp_max_lag), float(lim.rtsp_first_request_timeout),
                                 int(lim.rtsp_max_clients), float(lim.rtsp_idle_timeout))
        self.auth_guard = FailureGuard(int(lim.auth_max_failures), float(lim.auth_failure_window))
        self._quiet = RateLimiter(burst=5, interval_s=10.0)

    def add(self, name: str, bin_factory: BinFactory, shared: bool = True) -> MountFactory:
        factory = MountFactory(name, bin_factory, shared)
        factory.owner = self
        if self.auth is not None:
            allow_users(factory)
        self.server.get_mount_points().add_factory(f"/{name}", factory)
        self.factories[name] = factory
        return factory

    def remove(self, name: str) -> None:
        if self.factories.pop(name, None) is not None:
            self.server.get_mount_points().remove_factory(f"/{name}")

    def attach(self, context: GLib.MainContext) -> int:
        """Listen (raises :class:`PortInUse`) and serve on ``context``; returns the port."""
        try:
            source = self.server.create_source(None)
        except GLib.Error as exc:
            addr = f"{self.server.get_address()}:{self.server.get_service()}"
            if "in use" in exc.message.lower():
                raise PortInUse(f"RTSP port {addr} is already in use") from None
            raise PortInUse(f"cannot listen on {addr}: {exc.message}") from None
        source.attach(context)
        self._source = source
        self.context = context
        self.guard.attach(context)
        return self.server.get_bound_port()

    def detach(self) -> None:
        self.guard.detach()
        if self._source is not None:
            self._source.destroy()
            self._source = None
        # drop every client and tear down their media now: once the GLib loop is gone nobody
        # would, and pipelines left playing (with Python elements in them) outlive the server.
        # In order and silently: gst-rtsp-server unprepares each media itself (its udpsrc /
        # appsrc are locked PLAYING outside our bin: a pipeline set to NULL behind its back is
        # disposed with them still PLAYING), and we run the loop until every one is done.
        context = GLib.MainContext.get_thread_default() or GLib.MainContext.default()

        def settle(medias: list[Any], done: tuple[Any, ...], seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while any(m.get_status() not in done for m in medias) and \
                    time.monotonic() < deadline:
                if not context.iteration(False):
                    time.sleep(0.002)

        # medias already stopping (their clients just left) finish first: removing their
        # clients meanwhile made gst-rtsp-server dispose udpsrc/appsrc still PLAYING
        medias = [m for f in self.factories.values() for m in f.medias]
        settle(medias, (*_DONE, GstRtspServer.RTSPMediaStatus.PREPARED), 3.0)
        # Every session torn down as a TEARDOWN does (its transports leave the streams first),
        # then the clients closed. Removing clients alone left UDP sessions alive (they outlive
        # their connection) and, with TCP ones, medias unprepared with transports still on
        # them: their udpsrc/appsrc were disposed PLAYING; removing TCP sessions from the pool
        # instead aborted in get_data_seq.
        pool = self.server.get_session_pool()
        if pool is not None:
            pool.filter(_teardown_session)
        self.server.client_filter(lambda _s, _c, *_a: GstRtspServer.RTSPFilterResult.REMOVE)
        medias = [m for f in self.factories.values() for m in f.medias]
        settle(medias, (*_DONE, GstRtspServer.RTSPMediaStatus.PREPARED), 1.0)
        for media in medias:  # not twice: one already unpreparing is left to finish
            if media.get_status() == GstRtspServer.RTSPMediaStatus.PREPARED:
                media.unprepare()
        settle(medias, _DONE, 5.0)
        for media in medias:
            if media.get_status() not in _DONE:  # stuck: stop it the hard way
                log.debug("media of %s did not unprepare in time", media)
                element = media.get_element()
                pipeline = element.get_parent() if element is not None else None
                if pipeline is not None:
                    pipeline.set_state(Gst.State.NULL)
        for factory in self.factories.values():
            factory.medias.clear()

    def _on_client(self, _server: Any, client: GstRtspServer.RTSPClient) -> None:
        conn = client.get_connection()
        peer = conn.get_ip() if conn is not None else "?"
        st = self.guard.add(client, peer)
        if not st.refused and self.auth_guard.blocked(peer):
            self.guard.refuse(st, "auth-block", "client %s refused: too many failed logins",
                              peer)
        self.clients += 1
        if self.max_request_bytes:
            # on the connection itself: the client copies its limit only when given one
            client.set_content_length_limit(self.max_request_bytes)
            if conn is not None:
                conn.set_content_length_limit(self.max_request_bytes)
        # handlers get the client as their first argument: no closure holds it (no cycle)
        for name in _REQUESTS:
            client.connect(f"pre-{name}-request", self._on_pre_request)
        client.connect("options-request", self._on_options)
        client.connect("describe-request", self._on_request)
        client.connect("setup-request", self._on_request)
        client.connect("closed", self._on_closed)
        client.connect("pre-play-request", self._before_play)

    def _on_pre_request(self, client: Any, ctx: Any) -> GstRtsp.RTSPStatusCode:
        st = self.guard.get(client)
        if st is None or st.refused:
            return GstRtsp.RTSPStatusCode.SERVICE_UNAVAILABLE
        self.guard.request(st)
        if self.auth_guard.blocked(st.peer):
            self.guard.say("auth-block", "client %s refused: too many failed logins", st.peer)
            return GstRtsp.RTSPStatusCode.SERVICE_UNAVAILABLE
        path = _abspath(ctx)
        if self.max_per_mount and path and not st.path:
            mount = "/" + path.strip("/").split("/")[0]
            if self.guard.count_on(mount, but=client) >= self.max_per_mount:
                self.guard.say(f"mount-limit{mount}", "client %s refused: %s has %d clients "
                                "(max_clients_per_mount)", st.peer, mount, self.max_per_mount)
                return GstRtsp.RTSPStatusCode.SERVICE_UNAVAILABLE
        return GstRtsp.RTSPStatusCode.OK

    def _on_auth_failure(self, ctx: Any) -> None:
        st = self.guard.get(ctx.client) if ctx.client is not None else None
        if st is None:
            return
        blocked = self.auth_guard.fail(st.peer)
        self.guard.say(f"auth{st.peer}", "client %s%s: authentication failed%s", st.peer,
                        st.where(), "; refusing it for a while" if blocked else "")

    def _on_options(self, client: Any, _ctx: Any) -> None:
        st = self.guard.get(client)
        if st is not None:
            self.guard.request(st)

    def _on_request(self, client: Any, ctx: Any) -> None:
        st = self.guard.get(client)
        path = _abspath(ctx)
        if st is not None and path and not st.path:
            # the mount, not the whole path: the rest is the client's text
            st.path = bounded("/" + path.strip("/").split("/")[0], 120)
            log.info("client %s connected to %s", st.peer, st.path)

    def _on_closed(self, client: Any) -> None:
        st = self.guard.get(client)
        self.guard.remove(client)
        self.clients -= 1
        if st is None or st.refused:
            return
        if st.path:
            log.info("client %s disconnected from %s", st.peer, st.path)
            return
        # never reached a mount (probes, scanners, fuzzers): a few lines per peer, then counts
        ok, suppressed = self._quiet.allow(st.peer)
        if ok:
            log.info("client %s disconnected%s", st.peer,
                     f" ({suppressed} more like it suppressed)" if suppressed else "")

    def _before_play(self, _client: Any, ctx: Any) -> GstRtsp.RTSPStatusCode:
        """Hold a PLAY until every stream of the media has a SEGMENT downstream of its
        payloader (right after the first (flushing) loop seek there is none for a moment, and
        gst-rtsp-server 1.22 aborts the process — g_assert in gst_rtsp_media_get_rates — if a
        PLAY lands in that window) and the pipeline has no state change in flight."""
        path = _abspath(ctx).strip("/")
        factory = self.factories.get(path.split("/")[0]) if path else None
        if factory is None:
            return GstRtsp.RTSPStatusCode.OK
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            if all(_segments_ready(m) and _state_settled(m) for m in list(factory.medias)):
                break
            time.sleep(0.005)
        else:
            log.warning("/%s: PLAY before the stream was ready", factory.mount_name)
        return GstRtsp.RTSPStatusCode.OK
