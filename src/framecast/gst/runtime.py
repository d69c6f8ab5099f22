"""GStreamer initialisation and the one bridge between the GLib main loop and asyncio.

asyncio owns the main thread. One GLib thread owns a private ``GLib.MainContext`` (pushed as
thread-default, so bus watches and the RTSP server attach to it) and runs ``GLib.MainLoop``.
Work crosses over only through :meth:`GLibThread.call` (an idle source on that context) and,
the other way, ``loop.call_soon_threadsafe``. Nothing blocks either loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstBase", "1.0")
gi.require_version("GstRtspServer", "1.0")
# GstBase before any element exists: if an appsrc is made first, PyGObject wraps GstBaseSrc
# without its vfuncs and a Python BaseSrc subclass (framecastrangesrc) loses do_create
from gi.repository import GLib, Gst, GstBase  # noqa: E402, F401

T = TypeVar("T")

_init_lock = threading.Lock()
_initialised = False


def init_gst() -> None:
    """Initialise GStreamer once per process (safe to call from anywhere)."""
    global _initialised
    with _init_lock:
        if not _initialised:
            Gst.init(None)
            _silence_floating_warning()
            _initialised = True


def _silence_floating_warning() -> None:
    """Drop PyGObject 3.42's harmless "element should be floating" CRITICAL for Python elements;
    every other GStreamer message still goes to the default handler."""
    flags = GLib.LogLevelFlags.LEVEL_CRITICAL | GLib.LogLevelFlags.FLAG_FATAL

    def handler(domain: str, level: GLib.LogLevelFlags, message: str, *_: Any) -> None:
        if "should be floating" not in message:
            GLib.log_default_handler(domain, level, message)

    GLib.log_set_handler("GStreamer", flags, handler)


class GLibThread:
    """A GLib main loop running on its own thread with a private main context."""

    def __init__(self, name: str = "glib") -> None:
        init_gst()
        self.context = GLib.MainContext.new()
        self.loop = GLib.MainLoop.new(self.context, False)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()

    def start(self) -> GLibThread:
        self._thread.start()
        self._started.wait()
        return self

    def _run(self) -> None:
        self.context.push_thread_default()
        try:
            self._started.set()
            self.loop.run()
        finally:
            self.context.pop_thread_default()

    @property
    def in_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def call(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Run ``fn(*args)`` on the GLib thread; returns a future with its result."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> bool:
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(*args))
                except BaseException as exc:  # handed to the caller, not swallowed
                    fut.set_exception(exc)
            return GLib.SOURCE_REMOVE

        if self.in_thread:
            run()
        else:
            source = GLib.idle_source_new()
            source.set_callback(lambda *_: run())
            source.attach(self.context)
        return fut

    def call_sync(self, fn: Callable[..., T], *args: Any, timeout: float | None = 30) -> T:
        """Run ``fn`` on the GLib thread and wait for it (never from the GLib thread itself)."""
        return self.call(fn, *args).result(timeout)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Await ``fn(*args)`` run on the GLib thread, from asyncio."""
        return await asyncio.wrap_future(self.call(fn, *args))

    def stop(self) -> None:
        if self._thread.is_alive():
            self.context.invoke_full(GLib.PRIORITY_DEFAULT, lambda *_: self.loop.quit())
            self._thread.join(5)


class Bridge:
    """The meeting point: an asyncio loop (main thread) plus one :class:`GLibThread`."""

    def __init__(self, aio_loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.aio = aio_loop or asyncio.get_event_loop()
        self.glib = GLibThread().start()

    def to_asyncio(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule ``fn(*args)`` on the asyncio loop from any thread (GLib callbacks use this)."""
        if not self.aio.is_closed():
            self.aio.call_soon_threadsafe(fn, *args)

    def call(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        return self.glib.call(fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.glib.run(fn, *args)

    def close(self) -> None:
        self.glib.stop()
