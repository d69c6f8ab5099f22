"""``framecast serve``: files looped over RTSP (and, unless --no-http, WebRTC/HTTP).

asyncio owns the main thread; the RTSP server lives on the GLib thread of a
:class:`framecast.gst.runtime.Bridge`. :class:`Server` is the programmatic face (the metadata
layer's ``Publisher`` adds app-frame mounts with :meth:`Server.add_mount`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from framecast.config import Config, ConfigError, Mount, Settings, load_config, merge_cli

log = logging.getLogger("framecast.server")


@dataclass
class MountState:
    """A mount the RTSP server offers."""

    mount: Mount
    info: Any = None        # framecast.gst.probe.MediaInfo for file mounts
    factory: Any = None     # framecast.gst.rtsp.MountFactory
    stamp: Any = None       # framecast.filestamp.FileStamp of the file when probed

    @property
    def name(self) -> str:
        return self.mount.name

    @property
    def loop_count(self) -> int:
        return self.factory.loop_count if self.factory is not None else 0


class Server:
    """An RTSP server for ``mounts`` with ``settings``; start() listens, stop() ends it.

    Without a ``bridge`` it makes its own GLib thread (handy in scripts and tests).
    """

    def __init__(self, settings: Settings | None = None, mounts: tuple[Mount, ...] = (),
                 bridge: Any = None) -> None:
        from framecast.gst.rtsp import RtspServer, make_auth
        from framecast.gst.runtime import GLibThread

        self.settings = settings or Settings()
        self.bridge = bridge
        self._own_glib = None
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
        for m in mounts:
            self.add_config_mount(m)

    # -- mounts ---------------------------------------------------------------------------
    def add_config_mount(self, mount: Mount) -> MountState | None:
        """Add a file or relay mount; a bad file is logged (one line) and skipped."""
        from framecast.filestamp import FileStamp
        from framecast.gst.media import build_media_bin
        from framecast.gst.probe import MediaError, check_path, probe_file

        info = None
        stamp = None
        if mount.file is not None:
            stamp = FileStamp.of(mount.file)  # before probing: a change during it is seen
            try:
                info = probe_file(mount.file)
            except MediaError as exc:
                self.errors[mount.name] = str(exc)
                log.error("/%s: %s", mount.name, exc)
                return None
        state = MountState(mount, info, stamp=stamp)

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

        state.factory = self.add_mount(mount.name, build)
        self.mounts[mount.name] = state
        return state

    def add_mount(self, name: str, bin_factory: Callable[[], Any], shared: bool = True) -> Any:
        """Serve ``bin_factory()`` at /name: a Gst.Bin with payloaders ``pay0`` (``pay1``…).

        Called on the GLib thread when a client asks for the media (once while shared). A
        :class:`framecast.gst.media.MediaBin` with a ``looper`` loops; any other bin plays as is.
        """
        factory = self.glib.call_sync(self.rtsp.add, name, bin_factory, shared)
        if name not in self.mounts:
            self.mounts[name] = MountState(Mount(name=name), None, factory)
        else:
            self.mounts[name].factory = factory
        if self.port is not None:
            log.info("serving %s", self.rtsp_url(name))
        return factory

    def remove_mount(self, name: str) -> None:
        self.glib.call_sync(self.rtsp.remove, name)
        self.mounts.pop(name, None)

    # -- life -----------------------------------------------------------------------------
    def start(self) -> Server:
        """Listen; raises :class:`framecast.gst.rtsp.PortInUse`."""
        from framecast.gst.rtsp import raise_fd_limit

        raise_fd_limit()
        self.port = self.glib.call_sync(self.rtsp.attach, self.glib.context)
        return self

    def stop(self) -> None:
        if self.port is not None:
            try:
                self.glib.call_sync(self.rtsp.detach, timeout=10)
            except Exception as exc:  # stopping must not raise over a stuck client
                log.debug("detach: %s", exc)
            self.port = None
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
        host = self.settings.bind
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        port = self.port if self.port is not None else self.settings.rtsp_port
        return f"{self.scheme}://{host}:{port}/{mount}"


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
                       sidecars=getattr(args, "sidecar", None) or [],
                       janus=getattr(args, "janus", None) or [],
                       janus_feed=getattr(args, "janus_feed", None))
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
    http = None
    edges = None
    try:
        server = Server(config.settings, config.mounts, bridge)
        if not server.mounts:
            print("framecast: error: no usable mount (see the errors above)", file=sys.stderr)
            return 1
        try:
            server.start()
        except PortInUse as exc:
            print(f"framecast: error: {exc}", file=sys.stderr)
            return 1
        for name in server.mounts:
            print(server.rtsp_url(name), flush=True)
        settings = replace(config.settings, rtsp_port=server.port or config.settings.rtsp_port)

        # -- HTTP / WebRTC (viewer, signalling, WHEP, /api): skipped with --no-http --------
        if settings.http:
            try:
                http = await _start_http(bridge, server, settings)
            except OSError as exc:
                print(f"framecast: error: HTTP port {settings.http_port}: {exc.strerror or exc}",
                      file=sys.stderr)
                return 1

        if config.edges:  # Janus edges (framecast.edge): their own tasks, never fatal
            from framecast.edge.serve import start_edges

            edges = await start_edges(config.edges, bridge, server, http)

        log.info("ready (Ctrl-C stops)")
        await _wait_for_stop()
        log.info("stopping")
        return 0
    finally:
        if edges is not None:  # our mountpoints leave the edges before the RTSP side goes
            try:
                await edges.stop()
            except Exception as exc:
                log.debug("edges stop: %s", exc)
        if http is not None:
            try:
                await http.stop()
            except Exception as exc:
                log.debug("http stop: %s", exc)
        if server is not None:
            server.stop()
        bridge.close()


async def _start_http(bridge: Any, server: Server, settings: Settings) -> Any:
    """Start the HTTP/WebRTC side (framecast.http.server.start_http) for the served mounts."""
    try:
        from framecast.http.server import start_http
    except ImportError:
        return None
    mounts = [s.mount for s in server.mounts.values() if s.mount.file or s.mount.source]
    return await start_http(bridge, mounts, settings)


async def _wait_for_stop() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await stop.wait()
