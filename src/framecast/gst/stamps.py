"""The compiled stamps injector (``framecaststamps``, C): the hot path of ``framecastinject``.

A mount whose only metadata is the built-in stamps (the default for file mounts) gets this
element instead of the Python one: a Python element costs ~65 µs per buffer before doing any
work (GI, the GIL), which made every stamped 1080p mount cost ~2.5× an unstamped one. Output
is byte for byte the Python element's (tests compare both on real clips); anything else —
sidecars, providers, relays (hops), ``put``, size limits — stays with the Python element.

``scripts/setup.sh`` builds ``native/libgstframecaststamps.so``; without it (a bare
``pip install``) :func:`make_stamps_injector` returns None and the Python element is used.
``FRAMECAST_NATIVE_STAMPS=0`` forces the Python element (benchmarks compare the two).
"""

from __future__ import annotations

import array
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from gi.repository import GLib, Gst

from framecast.gst.runtime import init_gst

log = logging.getLogger("framecast.inject")

FACTORY = "framecaststamps"
LIBRARY = Path(__file__).resolve().parent / "native" / "libgstframecaststamps.so"
_lock = threading.Lock()
_loaded: bool | None = None


def available() -> bool:
    """True once the compiled plugin is loaded (built by ``make setup``)."""
    global _loaded
    with _lock:
        if _loaded is None:
            init_gst()
            if Gst.ElementFactory.find(FACTORY) is not None:
                _loaded = True
            elif not LIBRARY.exists():
                log.warning("compiled SEI stamps element not built (%s missing: run make "
                            "setup): stamped mounts use the slower Python injector", LIBRARY)
                _loaded = False
            else:
                try:
                    Gst.Plugin.load_file(str(LIBRARY))
                    _loaded = Gst.ElementFactory.find(FACTORY) is not None
                except GLib.Error as exc:
                    log.warning("cannot load %s (%s): stamped mounts use the Python injector",
                                LIBRARY, exc.message)
                    _loaded = False
        return _loaded


def enabled() -> bool:
    """Use the compiled element for stamps-only mounts (unless FRAMECAST_NATIVE_STAMPS=0)."""
    return os.environ.get("FRAMECAST_NATIVE_STAMPS", "1") != "0" and available()


def make_stamps_injector(name: str | None = None, *, video_pts: Sequence[int] = (),
                         period_ns: int = 0, frame_ns: int | None = None,
                         counter: bool = False, fmt: str = "msgpack") -> Gst.Element | None:
    """A ``framecaststamps`` configured like ``make_injector(..., stamps=True)``; None if the
    compiled plugin is not available."""
    if fmt not in ("msgpack", "json"):
        raise ValueError(f"format must be msgpack or json, not {fmt!r}")
    if not available():
        return None
    el = Gst.ElementFactory.make(FACTORY, name)
    if el is None:
        return None
    el.set_property("video-pts", GLib.Bytes.new(array.array("q", video_pts).tobytes()))
    el.set_property("period-ns", int(period_ns or 0))
    el.set_property("frame-ns", int(frame_ns or 0))
    el.set_property("counter", bool(counter))
    el.set_property("format", fmt)
    return el


def is_stamps_injector(el: Gst.Element) -> bool:
    f = el.get_factory()
    return f is not None and f.get_name() == FACTORY


def injected_frames(el: Gst.Element) -> int:
    """Access units given SEI by either injector (Python ``frames`` or the C property)."""
    if is_stamps_injector(el):
        return int(el.get_property("frames"))
    return int(getattr(el, "frames", 0))
