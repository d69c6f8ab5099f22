"""``framecast serve`` and :class:`Server`: every mount wired to every output, in one place.

A mount's source is described once (a file is probed once; the probe also sees B-frames) and
:class:`Server` feeds RTSP (``framecast.gst.rtsp``) and WebRTC/HTTP (``framecast.http``, through
a :class:`framecast.producer.MountSpec`) from that one description — config file and relay
mounts, app-frame mounts (``framecast.Publisher``) and the built-in demo alike.

Threads: the RTSP server and every pipeline live on the GLib thread of a
:class:`framecast.gst.runtime.Bridge`; the HTTP side on its asyncio loop. ``framecast serve``
gives its own loop (main thread) and uses :meth:`Server.astart`/:meth:`Server.astop`; a
script's ``Server(...).start()`` runs the loop on a thread of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import signal
import ssl
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from framecast.config import Config, ConfigError, Mount, Settings, load_config, merge_cli
from framecast.producer import MountSpec
from framecast.streaminfo import StreamInfo
from framecast.urls import http_url, rtsp_url

log = logging.getLogger("framecast.server")


@dataclass
class MountState:
    """A mount the server offers (on RTSP, and over WebRTC when ``webrtc`` is set)."""

    mount: Mount
    info: Any = None        # framecast.gst.probe.MediaInfo for file mounts (the one probe)
    factory: Any = None     # framecast.gst.rtsp.MountFactory
    stamp: Any = None       # framecast.filestamp.FileStamp of the file when probed
    webrtc: MountSpec | None = None  # how the HTTP side makes its WebRTC producer

    @property
    def name(self) -> str:
        return self.mount.name

    @property
    def loop_count(self) -> int:
        return self.factory.loop_count if self.factory is not None else 0


class HttpPortError(OSError):
    """The HTTP side could not listen (one line: which port and why)."""


class _LoopThread:
    """An asyncio loop on a thread of its own: the HTTP side of a server started from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="framecast-http", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> _LoopThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class Server:
    """RTSP and (unless ``settings.http`` is off) HTTP/WebRTC for ``mounts``.

    ``start()``/``stop()`` from sync code; ``await astart()``/``astop()`` from asyncio (the
    blocking work — probing files, binding — runs off the loop). Without a ``bridge`` it makes
    its own GLib thread (and, with HTTP, its own asyncio loop thread).
    """

    def __init__(self, settings: Settings | None = None, mounts: tuple[Mount, ...] = (),
                 bridge: Any = None) -> None:
        from framecast.gst.rtsp import RtspServer, make_auth
        from framecast.gst.runtime import Bridge, GLibThread

        self.settings = settings or Settings()
        self._own_glib: Any = None
        self._own_loop: _LoopThread | None = None
        self._own_bridge: Any = None
        if bridge is None and self.settings.http:
            self._own_loop = _LoopThread().start()
            bridge = self._own_bridge = Bridge(self._own_loop.loop)
        self.bridge = bridge
        if bridge is not None:
            self.glib = bridge.glib
        else:
            self._own_glib = GLibThread("framecast-rtsp").start()
            self.glib = self._own_glib
        s = self.settings
        auth = make_auth([(u.name, u.password) for u in s.users], s.auth, s.tls_cert, s.tls_key)
        self.rtsp = self.glib.call_sync(lambda: RtspServer(s.bind, s.rtsp_port, auth, s))
        self.mounts: dict[str, MountState] = {}
        self.errors: dict[str, str] = {}     # mount -> one-line reason it is not served
        self.port: int | None = None
        self.http: Any = None  # framecast.http.server.HttpServer while serving HTTP
        self._pending = list(mounts)  # config mounts, probed by start()/astart()

    # -- mounts ---------------------------------------------------------------------------
    def add_config_mount(self, mount: Mount) -> MountState | None:
        """Add a file or relay mount; a bad file is logged (one line) and skipped. Blocks
        while the file is probed (from asyncio: ``await asyncio.to_thread(...)``)."""
        from framecast.filestamp import FileStamp
        from framecast.gst.media import build_media_bin
        from framecast.gst.probe import MediaError, check_path, probe_file

        info = None
        stamp = None
        if mount.file is not None:
            stamp = FileStamp.of(mount.file)  # before probing: a change during it is seen
            try:
                info = probe_file(mount.file)  # the mount's one probe (B-frames included)
            except MediaError as exc:
                self.errors[mount.name] = str(exc)
                log.error("/%s: %s", mount.name, exc)
                return None
        state = MountState(mount, info, stamp=stamp)
        if mount.source is not None:  # its camera's SDP (audio?) before its first client asks
            from framecast.gst.relay import describe_soon

            describe_soon(mount)

        def build() -> Any:
            if mount.file is not None:
                now = FileStamp.of(mount.file)
                if now is not None and state.stamp is not None and now != state.stamp:
                    # replaced or changed since probed: what was learnt (period, frames) may
                    # be wrong; probe again
                    try:
                        state.info, state.stamp = probe_file(mount.file), now
                    except MediaError as exc:
                        log.error("/%s: %s", mount.name, exc)
                        return _failing_bin(build_media_bin(mount, state.info))
            b = build_media_bin(mount, state.info)
            if mount.file is not None:  # fine at start-up, but the file may be gone since
                try:
                    check_path(Path(mount.file))
                except MediaError as exc:
                    # say why in one line; the bin still fails in filesrc, so the client gets
                    # 503 and the media's own error lines are not repeated
                    log.error("/%s: %s", mount.name, exc)
                    b.error_logged = True
                b.file_stamp = state.stamp  # the media ends if the file changes in place
            return b

        self.mounts[mount.name] = state
        self._wire(state, build, self._config_spec(state, build))
        return state

    def _config_spec(self, state: MountState, build: Callable[[], Any]) -> MountSpec:
        """The WebRTC side of a file/relay mount: its RTSP bin minus payloaders, described by
        the same probe."""
        from framecast.gst.webrtc import producer_factory
        from framecast.gst.webrtcsource import source_for_mount

        source, info, status = source_for_mount(state.mount, state.info, build)
        describe = None
        if state.mount.source is not None:  # a relay's profile is learnt after start-up
            from framecast.gst.webrtcsource import relay_stream_info

            mount = state.mount
            describe = lambda: relay_stream_info(mount)  # noqa: E731
        return MountSpec(state.name, producer_factory(state.name, source, info,
                                                      describe=describe), status=status)

    def add_mount(self, name: str, bin_factory: Callable[[], Any], shared: bool = True,
                  stream: StreamInfo | None = None) -> Any:
        """Serve ``bin_factory()`` at /name: a Gst.Bin with payloaders ``pay0`` (``pay1``…),
        on RTSP and over WebRTC. ``stream`` says what ``pay0`` carries (default: H.264 of an
        unknown profile, which WebRTC transcodes once); a constrained-baseline stream passes.

        Called on the GLib thread when a client asks for the media (once while shared). A
        :class:`framecast.gst.media.MediaBin` with a ``looper`` loops; any other bin plays as is.
        """
        from framecast.gst.webrtc import producer_factory
        from framecast.gst.webrtcsource import bin_source

        state = self.mounts.get(name) or MountState(Mount(name=name))
        self.mounts[name] = state
        info = stream or StreamInfo("h264", None)
        spec = MountSpec(name, producer_factory(name, bin_source(bin_factory), info))
        self._wire(state, bin_factory, spec, shared)
        return state.factory

    def _wire(self, state: MountState, bin_factory: Callable[[], Any], spec: MountSpec,
              shared: bool = True) -> None:
        """The one place a mount meets its outputs: RTSP now, HTTP/WebRTC if it is serving."""
        state.factory = self.glib.call_sync(self.rtsp.add, state.name, bin_factory, shared)
        state.webrtc = spec
        if self.port is not None:
            log.info("serving %s", self.rtsp_url(state.name))
        if self.http is not None:
            self._on_loop(self.http.add_mount(self._http_spec(state)))

    def remove_mount(self, name: str) -> None:
        """Stop serving ``name`` everywhere (WebRTC viewers get endSession)."""
        self.glib.call_sync(self.rtsp.remove, name)
        self.mounts.pop(name, None)
        if self.http is not None:
            self._on_loop(self.http.remove_mount(name))

    def _http_spec(self, state: MountState) -> MountSpec:
        assert state.webrtc is not None
        return replace(state.webrtc, rtsp_url=self.rtsp_url(state.name))

    def _on_loop(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Run ``coro`` on the HTTP side's loop: waited for from another thread (so a mount is
        listed when the call returns), scheduled when already on that loop."""
        loop = self.bridge.aio
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is loop:
            task = running.create_task(coro)
            task.add_done_callback(_log_failure)
            return task
        if self.glib.in_thread:  # the coroutine needs this thread (bridge.run): do not wait
            asyncio.run_coroutine_threadsafe(coro, loop).add_done_callback(_log_failure)
            return None
        try:
            return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)
        except concurrent.futures.TimeoutError:
            log.error("HTTP side did not answer in %.0f s", timeout)
            return None

    # -- life -----------------------------------------------------------------------------
    def _add_pending(self) -> None:
        pending, self._pending = self._pending, []
        for m in pending:
            self.add_config_mount(m)

    def _listen_rtsp(self) -> None:
        from framecast.gst.rtsp import raise_fd_limit

        raise_fd_limit()
        self.port = self.glib.call_sync(self.rtsp.attach, self.glib.context)

    def start(self) -> Server:
        """Probe the mounts and listen; raises :class:`framecast.gst.rtsp.PortInUse` (RTSP) or
        :class:`HttpPortError`. From asyncio code use ``await astart()``."""
        self._add_pending()
        self._listen_rtsp()
        if self.settings.http:
            try:
                self._on_loop(self._start_http())
            except BaseException:
                self.stop()
                raise
        return self

    async def astart(self) -> Server:
        """:meth:`start` without blocking the running loop (which must be the bridge's)."""
        await asyncio.to_thread(self._add_pending)
        await asyncio.to_thread(self._listen_rtsp)
        if self.settings.http:
            await self._start_http()
        return self

    async def _start_http(self) -> None:
        from framecast.http.server import HttpLimits, HttpServer

        s = self.settings
        ctx = None
        if s.tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(s.tls_cert), str(s.tls_key))  # both set: s.tls
        idle = s.webrtc_idle_stop if s.webrtc_idle_stop >= 0 else None
        specs = [self._http_spec(st) for st in self.mounts.values() if st.webrtc is not None]
        http = HttpServer(self.bridge, specs, host=s.bind, port=s.http_port,
                          users={u.name: u.password for u in s.users}, ssl_context=ctx,
                          idle_stop=idle, limits=HttpLimits.of(s))
        try:
            await http.start()
        except OSError as exc:
            await http.stop()
            raise HttpPortError(f"HTTP port {s.http_port}: {exc.strerror or exc} "
                                "(choose another HTTP port, or turn HTTP off)") from None
        except BaseException:
            await http.stop()
            raise
        self.http = http

    @property
    def http_port(self) -> int | None:
        return self.http.port if self.http is not None else None

    @property
    def http_url(self) -> str | None:
        """The viewer's URL (None without HTTP)."""
        if self.http is None:
            return None
        return http_url(self.settings.bind, self.http.port, self.settings.tls)

    def stop(self) -> None:
        if self.http is not None:
            http, self.http = self.http, None
            try:
                self._on_loop(http.stop())
            except Exception as exc:  # stopping must not raise over a stuck client
                log.debug("http stop: %s", exc)
        self._stop_rtsp()

    async def astop(self) -> None:
        if self.http is not None:
            http, self.http = self.http, None
            try:
                await http.stop()
            except Exception as exc:
                log.debug("http stop: %s", exc)
        await asyncio.to_thread(self._stop_rtsp)

    def _stop_rtsp(self) -> None:
        if self.port is not None:
            try:
                self.glib.call_sync(self.rtsp.detach, timeout=10)
            except Exception as exc:  # stopping must not raise over a stuck client
                log.debug("detach: %s", exc)
            self.port = None
        if self._own_bridge is not None:
            self._own_bridge.close()
            self._own_bridge = None
        if self._own_loop is not None:
            self._own_loop.stop()
            self._own_loop = None
        if self._own_glib is not None:
            self._own_glib.stop()
            self._own_glib = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def scheme(self) -> str:
        return "rtsps" if self.settings.tls else "rtsp"

    def rtsp_url(self, mount: str) -> str:
        port = self.port if self.port is not None else self.settings.rtsp_port
        return rtsp_url(self.settings.bind, port, mount, self.settings.tls)


def _log_failure(task: asyncio.Future[Any] | concurrent.futures.Future[Any]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("HTTP side: %s", exc)


def _failing_bin(b: Any) -> Any:
    """``b`` made to fail as it starts (its filesrc cannot open), already reported: the client
    gets 503, as for a file that vanished (returning no bin would be a 400 and a CRITICAL)."""
    src = b.get_by_name("src")
    if src is not None:
        src.set_property("location", "/dev/null/unreadable")
    b.error_logged = True
    return b


# -- the command ----------------------------------------------------------------------------

def build_config(args: argparse.Namespace) -> Config:
    config = load_config(args.config) if getattr(args, "config", None) else Config()
    config = merge_cli(config, files=args.files or [], bind=args.bind,
                       rtsp_port=args.rtsp_port, http_port=args.http_port,
                       no_http=bool(getattr(args, "no_http", False)),
                       sidecars=getattr(args, "sidecar", None) or [])
    if not config.mounts:
        from framecast.gst.clips import demo_clip, demo_sidecar

        log.info("no files given: serving the built-in demo (/demo: WebRTC passthrough, "
                 "/demo-high: High profile with B-frames, transcoded for WebRTC)")
        boxes = str(demo_sidecar())
        config = replace(config, mounts=(
            Mount(name="demo", file=str(demo_clip("demo")), sidecar=boxes),
            Mount(name="demo-high", file=str(demo_clip("demo-high")), sidecar=boxes)))
    return config


def serve_main(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
    except ConfigError as exc:
        print(f"framecast: error: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(config))
    except KeyboardInterrupt:
        return 0


async def _serve(config: Config) -> int:
    from framecast.gst.rtsp import PortInUse
    from framecast.gst.runtime import Bridge

    bridge = Bridge(asyncio.get_running_loop())
    server = None
    try:
        server = Server(config.settings, config.mounts, bridge)
        try:
            await server.astart()
        except PortInUse as exc:
            print(f"framecast: error: {exc}", file=sys.stderr)
            return 1
        except HttpPortError as exc:  # --no-http skips it
            print(f"framecast: error: {exc}", file=sys.stderr)
            return 1
        if not server.mounts:
            print("framecast: error: no usable mount (see the errors above)", file=sys.stderr)
            return 1
        for name in server.mounts:
            print(server.rtsp_url(name), flush=True)
        log.info("ready (Ctrl-C stops)")
        await _wait_for_stop()
        log.info("stopping")
        return 0
    finally:
        if server is not None:
            await server.astop()
        bridge.close()


async def _wait_for_stop() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await stop.wait()
