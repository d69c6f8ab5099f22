"""``framecastinject``: a GStreamer element (in Python) that writes per-frame metadata as SEI.

It sits after a parser (au-aligned H.264/H.265, AVC/HVC length-prefixed or Annex B byte-stream)
— i.e. in *decode* order — and inserts one SEI user-data-unregistered message (framecast UUID,
msgpack or JSON map) before the first slice of every access unit. The map is keyed by the
*presented* frame: with B-frames, the i-th frame on screen gets sidecar line i, because the
index comes from the buffer's PTS, never from arrival order.

Providers, combined per frame (later ones override earlier user fields; stamps always win):
1. built-in stamps (on by default): ``seq``, ``loop``, ``pts_ns``, ``wallclock_ns``;
2. a sidecar table (presented index → fields), for file mounts;
3. callbacks ``fn(FrameInfo) -> dict | None`` and ``put(pts_ns, dict)`` keyed by buffer PTS;
4. a ``GstVideoSEIUserDataUnregisteredMeta`` already on the buffer becomes its own SEI message
   (unless the access unit already carries those exact bytes, as after ``h264parse``).

Why an element with chain/event/query functions and not a pad probe: a probe cannot replace a
buffer, and without our own event function caps would never reach downstream.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from gi.repository import GLib, GObject, Gst  # noqa: I001 - framecast.gst pinned versions

from framecast import metadata as md
from framecast import sei
from framecast.codecs import Codec
from framecast.gst.element import AccessUnitElement
from framecast.gst.runtime import init_gst
from framecast.hops import with_hop
from framecast.metadata import Format

init_gst()  # the pad templates below need an initialised Gst
log = logging.getLogger("framecast.inject")

ELEMENT_NAME = "framecastinject"
CAPS = Gst.Caps.from_string(
    "video/x-h264, stream-format=(string){ avc, avc3, byte-stream }, alignment=(string)au; "
    "video/x-h265, stream-format=(string){ hvc1, hev1, byte-stream }, alignment=(string)au"
)
_MAX_PENDING = 4096  # put() entries kept for PTS not seen yet (an app that runs ahead)
_MAX_WARNINGS = 10  # per element and reason, then one "suppressed" line


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """What a provider callback learns about the access unit being stamped."""

    pts_ns: int  # the buffer's PTS (for file mounts: the file's own PTS)
    running_ns: int  # position on the served stream's timeline (continuous across loops)
    index: int  # presented-frame index within the file (live: since stream start)
    loop: int
    seq: int  # presented-frame index since stream start, counting across loops
    keyframe: bool


Provider = Callable[[FrameInfo], Mapping[str, Any] | None]


# -- GstVideoSEIUserDataUnregisteredMeta through ctypes (GI cannot read or add it) ----------

class _GstMeta(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint), ("info", ctypes.c_void_p)]


class _SeiMeta(ctypes.Structure):
    _fields_ = [("meta", _GstMeta), ("uuid", ctypes.c_uint8 * 16),
                ("data", ctypes.POINTER(ctypes.c_uint8)), ("size", ctypes.c_size_t)]


class _Libs:
    def __init__(self) -> None:
        gst = ctypes.CDLL(ctypes.util.find_library("gstreamer-1.0") or "libgstreamer-1.0.so.0")
        video = ctypes.CDLL(ctypes.util.find_library("gstvideo-1.0") or "libgstvideo-1.0.so.0")
        self.iterate = gst.gst_buffer_iterate_meta_filtered
        self.iterate.restype = ctypes.c_void_p
        self.iterate.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]
        api = video.gst_video_sei_user_data_unregistered_meta_api_get_type
        api.restype = ctypes.c_size_t
        self.api = api()
        self.add = video.gst_buffer_add_video_sei_user_data_unregistered_meta
        self.add.restype = ctypes.c_void_p
        self.add.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        self.writable = gst.gst_mini_object_is_writable
        self.writable.restype = ctypes.c_int
        self.writable.argtypes = [ctypes.c_void_p]


_libs: _Libs | None = None


def _lib() -> _Libs:
    global _libs
    if _libs is None:
        _libs = _Libs()
    return _libs


def _buffer_ptr(buf: Gst.Buffer) -> int:
    # PyGBoxed keeps the C pointer right after PyObject_HEAD; hash() of a boxed is that pointer.
    return ctypes.c_void_p.from_address(id(buf) + ctypes.sizeof(ctypes.c_ssize_t) * 2).value or 0


def sei_metas(buf: Gst.Buffer) -> list[tuple[bytes, bytes]]:
    """The (uuid, data) of every GstVideoSEIUserDataUnregisteredMeta on ``buf``."""
    lib = _lib()
    ptr = _buffer_ptr(buf)
    state = ctypes.c_void_p(None)
    out: list[tuple[bytes, bytes]] = []
    while True:
        m = lib.iterate(ptr, ctypes.byref(state), lib.api)
        if not m:
            return out
        meta = _SeiMeta.from_address(m)
        out.append((bytes(meta.uuid), ctypes.string_at(meta.data, meta.size) if meta.size else b""))


def add_sei_meta(buf: Gst.Buffer, uuid: bytes, data: bytes) -> None:
    """Attach a GstVideoSEIUserDataUnregisteredMeta to a writable ``buf``."""
    if len(uuid) != 16:
        raise ValueError("SEI user data UUID must be 16 bytes")
    lib, ptr = _lib(), _buffer_ptr(buf)
    if not lib.writable(ptr):
        raise ValueError("buffer is not writable")
    if not lib.add(ptr, uuid, data, len(data)):
        raise RuntimeError("gst_buffer_add_video_sei_user_data_unregistered_meta failed")


def user_data_tolerant(au: bytes, codec: Codec,
                       length_size: int | None = None) -> list[tuple[bytes, bytes]]:
    """Every user-data message of an AU; a malformed SEI NAL is skipped, not fatal.

    Relayed streams may carry broken or foreign SEI: we pass it on untouched and still read
    (and never duplicate) the messages around it.
    """
    try:
        return sei.extract_user_data(au, codec, length_size)
    except sei.SEIError:
        pass
    try:
        nals = (sei.split_annexb(au) if length_size is None
                else sei.split_length_prefixed(au, length_size))
    except sei.SEIError:
        return []
    out: list[tuple[bytes, bytes]] = []
    for nal in nals:
        if not nal:
            continue
        try:
            out.extend(sei.parse_sei_nal(nal, codec))
        except sei.SEIError:
            continue  # not SEI, or a broken one
    return out


# -- presented-frame indexing --------------------------------------------------------------

class FrameIndexer:
    """Presented index / loop / seq from a buffer's PTS (decode order in, presentation out).

    File mode (the file's sorted presented PTS and loop period known): index = position of the
    PTS in that list, loop from the segment base (``base = n × period``) — or, if a looper
    offsets PTS instead, from the PTS itself. Live mode: index from the running time and the
    frame duration, or an arrival counter when the duration is unknown (exact without B-frames).
    """

    def __init__(self, video_pts: Sequence[int] | None = None, period_ns: int | None = None,
                 frame_ns: int | None = None, counter: bool = False) -> None:
        self.counter = counter  # live without B-frames: arrival order is presentation order
        self.video_pts = list(video_pts or [])
        self.period_ns = int(period_ns or 0)
        self.frame_ns = int(frame_ns or 0)
        self._first_rt: int | None = None
        self._count = 0

    @property
    def file_mode(self) -> bool:
        return bool(self.video_pts) and self.period_ns > 0

    def reset(self) -> None:
        self._first_rt = None
        self._count = 0

    def locate(self, pts: int, running: int, base: int) -> tuple[int, int, int]:
        """(index, loop, seq) for a buffer with ``pts``, running time and segment base."""
        if self.file_mode:
            vp, period = self.video_pts, self.period_ns
            rel = pts - vp[0]
            extra = rel // period if rel >= period else 0  # looper that offsets PTS
            p = pts - extra * period
            i = bisect.bisect_left(vp, p)
            if i == len(vp) or (i > 0 and p - vp[i - 1] < vp[i] - p):
                i -= 1
            loop = (base + period // 2) // period + extra
            return i, loop, loop * len(vp) + i
        if self.frame_ns > 0 and running >= 0 and not self.counter:
            if self._first_rt is None:
                self._first_rt = running
            i = (running - self._first_rt + self.frame_ns // 2) // self.frame_ns
            return i, 0, i
        i = self._count
        self._count += 1
        return i, 0, i


class _Warner:
    """One log line per bad frame, capped per reason so a broken source cannot flood logs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: dict[str, int] = {}

    def __call__(self, reason: str, detail: str) -> None:
        n = self.counts.get(reason, 0) + 1
        self.counts[reason] = n
        if n <= _MAX_WARNINGS:
            log.warning("%s: %s", self.name, detail)
        if n == _MAX_WARNINGS:
            log.warning("%s: further '%s' warnings suppressed", self.name, reason)


# -- the element ----------------------------------------------------------------------------

_SCAN_PREFIX = 4096  # bytes read to find the first slice in Annex B (headers come first)


class FramecastInject(AccessUnitElement, Gst.Element):
    """Insert framecast SEI (and SEI from buffer metas) into every access unit."""

    __gstmetadata__ = (
        "framecast SEI metadata injector",
        "Filter/Video/Metadata",
        "Inserts per-frame metadata as H.264/H.265 SEI user data unregistered before the "
        "first slice, keyed by presented PTS",
        "framecast",
    )
    __gsttemplates__ = (
        Gst.PadTemplate.new("sink", Gst.PadDirection.SINK, Gst.PadPresence.ALWAYS, CAPS),
        Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS, CAPS),
    )
    __gproperties__ = {
        "stamps": (bool, "Stamps", "Add seq/loop/pts_ns/wallclock_ns", True,
                   GObject.ParamFlags.READWRITE),
        "format": (str, "Format", "Payload format: msgpack or json", "msgpack",
                   GObject.ParamFlags.READWRITE),
        "limit": (int, "Limit", "Per-frame metadata size limit (bytes)", 16, 1 << 24, 65536,
                  GObject.ParamFlags.READWRITE),
        "sidecar": (str, "Sidecar", "JSON Lines sidecar (line i = presented frame i)", None,
                    GObject.ParamFlags.READWRITE),
        "period-ns": (GObject.TYPE_UINT64, "Loop period",
                      "Loop period in ns (file mounts; 0 = live indexing)", 0,
                      GLib.MAXUINT64, 0, GObject.ParamFlags.READWRITE),
    }

    def __init__(self) -> None:
        super().__init__()
        self.init_pads()

        self.stamps = True
        self.fmt: Format = "msgpack"
        self.limit = 65536
        self.sidecar_path: str | None = None
        self._sidecar: Any = None  # a Sidecar whose pts lines still wait for frame times
        self.table: dict[int, dict[str, Any]] = {}
        self.providers: list[Provider] = []
        self.indexer = FrameIndexer()
        self._period_prop = 0
        self._pending: dict[int, Mapping[str, Any]] = {}
        self._lock = threading.Lock()
        self._codec: Codec | None = None
        self._length_size: int | None = None
        self._segment = Gst.Segment()
        self._segment.init(Gst.Format.TIME)
        self._warn = _Warner(self.get_name() or ELEMENT_NAME)
        self.hop: str | None = None  # relays: their mount; an origin's stamps stay (hops.py)
        self.frames = 0  # access units given SEI (for tests and stats)
        self.buffers = 0  # access units seen

    # properties (gst-launch and GObject users) ------------------------------------------
    def do_get_property(self, prop: GObject.ParamSpec) -> Any:
        name = prop.name
        if name == "stamps":
            return self.stamps
        if name == "format":
            return self.fmt
        if name == "limit":
            return self.limit
        if name == "sidecar":
            return self.sidecar_path
        if name == "period-ns":
            return self.indexer.period_ns
        raise AttributeError(name)

    def do_set_property(self, prop: GObject.ParamSpec, value: Any) -> None:
        name = prop.name
        if name == "stamps":
            self.stamps = bool(value)
        elif name == "format":
            if value not in ("msgpack", "json"):
                raise ValueError(f"format must be msgpack or json, not {value!r}")
            self.fmt = cast(Format, value)
        elif name == "limit":
            self.limit = int(value)
        elif name == "sidecar":
            self.load_sidecar(value)
        elif name == "period-ns":
            self.indexer.period_ns = int(value)
        else:
            raise AttributeError(name)

    # Python API ----------------------------------------------------------------------------
    def configure(self, *, video_pts: Sequence[int] | None = None,
                  period_ns: int | None = None, frame_ns: int | None = None,
                  counter: bool = False, table: Mapping[int, Mapping[str, Any]] | None = None,
                  stamps: bool | None = None, fmt: str | None = None,
                  limit: int | None = None) -> FramecastInject:
        """Set up for a file mount (``video_pts`` + ``period_ns``) or a live source."""
        self.indexer = FrameIndexer(video_pts, period_ns, frame_ns, counter)
        if table is not None:
            self.table = {int(k): dict(v) for k, v in table.items()}
        if stamps is not None:
            self.stamps = stamps
        if fmt is not None:
            self.set_property("format", fmt)
        if limit is not None:
            self.limit = limit
        self._resolve_sidecar()
        return self

    def load_sidecar(self, path: str | None) -> None:
        """Read a sidecar file into the table (bad lines: one warning each).

        ``pts``-keyed lines need the frame times: without the file's PTS (``configure``)
        they are placed once the caps give the frame rate.
        """
        from framecast.sidecar import load_sidecar

        self.sidecar_path = path
        self._sidecar = None
        if not path:
            self.table = {}
            return
        sc = load_sidecar(path)
        for w in sc.warnings:
            log.warning("%s", w)
        self._sidecar = sc
        self._resolve_sidecar()

    def _resolve_sidecar(self) -> None:
        sc = self._sidecar
        if sc is None:
            return
        ix = self.indexer
        if sc.by_pts and not ix.video_pts and not ix.frame_ns:
            self.table = dict(sc.by_index)  # pts lines wait for the frame rate
            return
        done = len(sc.warnings)
        self.table = sc.resolve(ix.video_pts or None, ix.frame_ns or None)
        for w in sc.warnings[done:]:
            log.warning("%s", w)
        if not sc.by_pts:
            self._sidecar = None

    def add_provider(self, fn: Provider) -> None:
        """Call ``fn(FrameInfo)`` for every frame; its dict joins that frame's metadata."""
        self.providers.append(fn)

    def put(self, pts_ns: int, fields: Mapping[str, Any]) -> None:
        """Metadata for the frame whose running time (or buffer PTS) is ``pts_ns``.

        Thread-safe, any order. Running time matches what an app stamped on its raw frames
        even after an encoder shifted the PTS.
        """
        with self._lock:
            self._pending[int(pts_ns)] = fields
            if len(self._pending) > _MAX_PENDING:
                for k in sorted(self._pending)[: len(self._pending) - _MAX_PENDING]:
                    del self._pending[k]

    # pads ----------------------------------------------------------------------------------
    def on_sink_event(self, event: Gst.Event) -> None:
        t = event.type
        if t == Gst.EventType.CAPS:
            self._set_caps(event.parse_caps())
        elif t == Gst.EventType.SEGMENT:
            self._segment = event.parse_segment()
        elif t == Gst.EventType.FLUSH_STOP:
            self.indexer.reset()

    def _set_caps(self, caps: Gst.Caps) -> None:
        s = caps.get_structure(0)
        self._codec = "h265" if s.get_name() == "video/x-h265" else "h264"
        self._length_size = None
        if s.get_value("stream-format") not in ("byte-stream", None):
            cd = s.get_value("codec_data")
            if cd is not None:
                with cd.map(Gst.MapFlags.READ) as info:
                    data = bytes(info.data)
                self._length_size = sei.length_size_from_codec_data(data, self._codec)
            else:
                self._length_size = 4
        ok, num, den = s.get_fraction("framerate")
        if ok and num > 0 and den > 0 and not self.indexer.file_mode and \
                not self.indexer.counter:
            self.indexer.frame_ns = Gst.util_uint64_scale(den, Gst.SECOND, num)
            self._resolve_sidecar()

    # per buffer ----------------------------------------------------------------------------
    def chain(self, pad: Gst.Pad, parent: Gst.Object, buf: Gst.Buffer) -> Gst.FlowReturn:
        self.buffers += 1
        codec = self._codec
        if codec is None:
            return self.srcpad.push(buf)
        messages = self._messages(buf)
        metas = sei_metas(buf)
        if not messages and not metas:
            return self.srcpad.push(buf)
        size = buf.get_size()
        if metas:
            present = set(user_data_tolerant(buf.extract_dup(0, size), codec, self._length_size))
            messages.extend(m for m in metas if m not in present)
        if not messages:
            return self.srcpad.push(buf)
        try:
            offset = self._splice_point(buf, size, codec)
            nal = sei.build_sei_nal(codec, messages)
            ls = self._length_size
            if ls is not None and len(nal) >= 1 << (8 * ls):
                raise sei.SEIError(f"SEI of {len(nal)} bytes does not fit a {ls}-byte length")
            head = b"\x00\x00\x00\x01" if ls is None else len(nal).to_bytes(ls, "big")
        except sei.SEIError as exc:
            self._warn("bitstream", f"access unit at pts {buf.pts} left as is: {exc}")
            return self.srcpad.push(buf)
        # Splice by sharing the input's memory around the new NAL: no copy of the slice data.
        out = Gst.Buffer.new()
        out.copy_into(buf, Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.TIMESTAMPS
                      | Gst.BufferCopyFlags.META, 0, size)
        if offset:
            out.copy_into(buf, Gst.BufferCopyFlags.MEMORY, 0, offset)
        sei_buf = Gst.Buffer.new_wrapped(head + nal)
        out.copy_into(sei_buf, Gst.BufferCopyFlags.MEMORY, 0, sei_buf.get_size())
        out.copy_into(buf, Gst.BufferCopyFlags.MEMORY, offset, size - offset)
        self.frames += 1
        return self.srcpad.push(out)

    def _splice_point(self, buf: Gst.Buffer, size: int, codec: Codec) -> int:
        """Offset of the first VCL NAL, reading only the NAL units before it."""
        ls = self._length_size
        if ls is None:  # Annex B: scan a prefix (parameter sets, SEI); the whole AU if needed
            head = buf.extract_dup(0, min(size, _SCAN_PREFIX))
            try:
                return sei.find_first_vcl_offset(head, codec, None)
            except sei.SEIError:
                if len(head) == size:
                    raise
                return sei.find_first_vcl_offset(buf.extract_dup(0, size), codec, None)
        pos, hdr_len = 0, ls + (2 if codec == "h265" else 1)
        while pos + hdr_len <= size:  # length-prefixed: hop from header to header
            hdr = buf.extract_dup(pos, hdr_len)
            if sei.is_vcl(hdr[ls:], codec):
                return pos
            pos += ls + int.from_bytes(hdr[:ls], "big")
        raise sei.SEIError("access unit has no VCL NAL unit (no coded slice)")

    def _messages(self, buf: Gst.Buffer) -> list[tuple[bytes, bytes]]:
        pts = buf.pts
        if pts == Gst.CLOCK_TIME_NONE:
            return []
        seg = self._segment
        running = seg.to_running_time(Gst.Format.TIME, pts)
        running = -1 if running == Gst.CLOCK_TIME_NONE else running
        index, loop, seq = self.indexer.locate(pts, running, seg.base)

        user: dict[str, Any] = {}
        fields = self.table.get(index)
        if fields:
            user.update(fields)
        if self.providers:
            fi = FrameInfo(pts, running, index, loop, seq,
                           not buf.has_flags(Gst.BufferFlags.DELTA_UNIT))
            for fn in self.providers:
                try:
                    extra = fn(fi)
                except Exception as exc:  # an app bug must not stall the stream
                    self._warn("provider", f"metadata provider failed at seq {seq}: {exc!r}")
                    continue
                if extra:
                    user.update(extra)
        if self._pending:
            # by running time first: encoders may shift PTS (x264enc adds 1000 h) but keep it
            with self._lock:
                extra = self._pending.pop(running, None) if running >= 0 else None
                if extra is None:
                    extra = self._pending.pop(pts, None)
            if extra:
                user.update(extra)
        if not self.stamps and not user:
            return []
        stamps = (md.stamps(seq, loop, running if running >= 0 else pts, time.time_ns())
                  if self.stamps else {})
        try:
            payload = md.encode_metadata(with_hop(user, stamps, self.hop), fmt=self.fmt,
                                         limit=self.limit)
        except (md.MetadataError, TypeError, ValueError, OverflowError) as exc:
            kind = "too large" if isinstance(exc, md.MetadataTooLarge) else "not serialisable"
            self._warn(kind, f"metadata of frame seq {seq} (pts {pts / 1e9:.3f} s) {kind}, "
                       f"user fields dropped: {exc}")
            if not stamps:
                return []
            payload = md.encode_metadata(stamps, fmt=self.fmt, limit=self.limit)
        return [(md.FRAMECAST_UUID, payload)]


GObject.type_register(FramecastInject)
_registered = False


def register() -> None:
    """Register ``framecastinject`` so ``Gst.ElementFactory.make``/parse_launch can name it."""
    global _registered
    init_gst()
    if not _registered:
        Gst.Element.register(None, ELEMENT_NAME, Gst.Rank.NONE, FramecastInject)
        _registered = True


def make_injector(name: str | None = None, **config: Any) -> FramecastInject:
    """A new injector element; ``config`` goes to :meth:`FramecastInject.configure`."""
    register()
    el = Gst.ElementFactory.make(ELEMENT_NAME, name)
    if el is None:
        raise RuntimeError(f"cannot create {ELEMENT_NAME}")
    if config:
        el.configure(**config)
    return el
