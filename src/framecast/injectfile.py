"""``framecast inject IN OUT --sidecar meta.jsonl [--stamps]``: embed metadata, no re-encode.

    filesrc ! demux ─ video ─ h26xparse ! framecastinject ! queue ─┐
                   └─ audio ─ queue ─────────────────────────────── mux ! filesink (OUT.part)

OUT is the same container family as IN (MP4/MOV, Matroska, MPEG-TS); it is written to a
temporary name and renamed when complete, so a failed run never leaves a half file behind.
Line i of the sidecar goes to the i-th *presented* frame (B-frames included).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framecast.codecs import video_codec
from framecast.errors import InjectError, InputError

if TYPE_CHECKING:
    from framecast.gst.probe import MediaInfo
    from framecast.metadata import Format

FAMILIES = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mp4", ".mkv": "mkv", ".webm": "mkv",
            ".ts": "ts", ".m2ts": "ts", ".mts": "ts"}
MUXERS = {".mov": "qtmux", "mp4": "mp4mux", "mkv": "matroskamux", "ts": "mpegtsmux"}
BAR = 30
QUEUE_BYTES = 256 << 20  # per stream; time and buffer counts unlimited, see _run
STALL_S = 15.0  # no frame and no byte written for this long: give up with an error


class _Progress:
    def __init__(self, total: int, quiet: bool) -> None:
        self.total = max(1, total)
        self.quiet = quiet
        self.last = 0.0
        self.shown = False
        self.done = -1

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not final and now - self.last < 0.1) or \
                (final and self.shown and done == self.done):
            if final and self.shown:
                sys.stderr.write("\n")
            return
        self.done = done
        self.last = now
        frac = min(1.0, done / self.total)
        filled = int(frac * BAR)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (BAR - filled)}] {frac * 100:5.1f}%  "
                         f"{done}/{self.total} frames")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()
        self.shown = True


def _audio_parser(caps: Any) -> str | None:
    s = caps.get_structure(0)
    name = s.get_name()
    if name == "audio/mpeg":
        ok, version = s.get_int("mpegversion")
        return "mpegaudioparse" if ok and version == 1 else "aacparse"
    return {"audio/x-opus": "opusparse", "audio/x-ac3": "ac3parse",
            "audio/x-eac3": "ac3parse", "audio/x-flac": "flacparse"}.get(name)


def _muxer_for(inp: Path, out: Path, container: str) -> str:
    family = FAMILIES.get(out.suffix.lower())
    if family is None:
        raise InputError(f"{out}: unknown output extension {out.suffix or '(none)'!r} "
                       f"(use the input's: {inp.suffix})")
    if family != container:
        raise InputError(f"{out}: must be the same container family as {inp.name} ({container})")
    return MUXERS.get(out.suffix.lower()) or MUXERS[family]


def inject_file(input: str | os.PathLike[str], output: str | os.PathLike[str], *,
                sidecar: str | os.PathLike[str] | None = None, stamps: bool = False,
                fmt: Format = "msgpack", quiet: bool = True) -> int:
    """Copy ``input`` to ``output`` with per-frame metadata in SEI (no re-encode); returns
    the frames written. Bad input raises a :class:`framecast.FramecastError` (one line)."""
    inp, out = Path(input), Path(output)
    if not sidecar and not stamps:
        raise InputError("nothing to inject: give --sidecar FILE and/or --stamps")
    if inp.exists() and out.exists() and inp.resolve() == out.resolve():
        raise InputError(f"{out}: output must not be the input file")
    from framecast.gst.probe import probe_file  # after the checks: they need no GStreamer
    from framecast.sidecar import load_sidecar

    info = probe_file(inp)
    mux_name = _muxer_for(inp, out, info.container)
    if sidecar:
        sc = load_sidecar(sidecar)
        table = sc.resolve(info.video_pts, info.frame_ns or None)
        for w in sc.warnings:
            logging.getLogger("framecast.inject").warning("%s", w)
    else:
        table = {}
    if not out.parent.exists():
        raise InputError(f"{out}: directory {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.part")
    try:
        frames = _run(inp, tmp, info, mux_name, table, stamps, fmt,
                      _Progress(info.frames, quiet))
        if info.container == "mp4":
            _keep_rotation(inp, tmp)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    if not quiet:
        print(f"framecast: wrote {out} ({frames} frames, {len(table)} with sidecar metadata)",
              file=sys.stderr)
    return frames


def _keep_rotation(inp: Path, out: Path) -> None:
    """qtmux 1.22 ignores the image-orientation tag: copy the input's display matrix."""
    from framecast.isobmff import set_video_matrix, video_matrix

    try:
        matrix = video_matrix(inp)
        if matrix is not None and matrix != video_matrix(out):
            set_video_matrix(out, matrix)
    except OSError as exc:
        logging.getLogger("framecast.inject").warning("%s: rotation not copied (%s)",
                                                      inp.name, exc)


def _video_format(info: MediaInfo, caps: Any) -> str:
    """The stream format the muxer gets: the input's own for MP4 (hev1 stays hev1, avc3
    stays avc3: parameter sets in band), else what the muxer wants."""
    # what the muxer wants from the video parser
    default = "byte-stream" if info.container == "ts" else video_codec(info.video_codec).mp4_format
    own = caps.get_structure(0).get_string("stream-format")
    if info.container == "mp4" and own in ("avc", "avc3", "hvc1", "hev1"):
        return str(own)
    return default


def _run(inp: Path, out: Path, info: MediaInfo, mux_name: str,
         table: dict[int, dict[str, Any]], stamps: bool, fmt: Format, progress: _Progress) -> int:
    from framecast.gst.element import make_element  # noqa: I001 - before gi: pins versions
    from framecast.gst.inject import make_injector
    from framecast.gst.plumbing import add_chain, drain, error_text, wait_bus
    from framecast.gst.runtime import init_gst
    from gi.repository import Gst

    init_gst()
    codec = info.video_codec
    pipeline = Gst.Pipeline.new("framecast-inject")
    demux = make_element(info.demuxer)
    mux = make_element(mux_name, "mux")
    add_chain(pipeline, [make_element("filesrc", location=str(inp)), demux])
    add_chain(pipeline, [mux, make_element("filesink", location=str(out))])
    inj = make_injector("inject", video_pts=info.video_pts, period_ns=info.period_ns,
                        table=table, stamps=stamps, fmt=fmt)
    linked = {"video": False}
    dropped: list[str] = []  # media types of the streams not copied

    def to_mux(pad: Gst.Pad, elements: list[Gst.Element]) -> bool:
        """pad ! elements ! mux; False (and nothing left behind) if the muxer refuses."""
        add_chain(pipeline, elements)
        if not elements[-1].link(mux):
            for el in elements:
                el.set_state(Gst.State.NULL)
                pipeline.remove(el)
            return False
        for el in reversed(elements):
            el.sync_state_with_parent()
        return bool(pad.link(elements[0].get_static_pad("sink")) == Gst.PadLinkReturn.OK)

    def end_after_last(pad: Gst.Pad) -> None:
        """EOS down this stream right after its last buffer: the demuxer sends EOS on every
        pad only at the end of the file, and the muxer, waiting for a stream that has
        ended, would stall the demuxer once the other stream's queue is full."""
        expected = info.pad_buffers.get(pad.get_name(), 0)
        if expected <= 0:
            return
        seen = [0]

        def on_buffer(p: Gst.Pad, pinfo: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
            seen[0] += 1
            if seen[0] != expected:
                return Gst.PadProbeReturn.OK
            peer = p.get_peer()
            if peer is None:
                return Gst.PadProbeReturn.OK
            peer.chain(pinfo.get_buffer())  # the last buffer, then EOS, in order
            peer.send_event(Gst.Event.new_eos())
            return Gst.PadProbeReturn.DROP

        pad.add_probe(Gst.PadProbeType.BUFFER, on_buffer)

    def on_pad(_demux: Gst.Element, pad: Gst.Pad) -> None:
        end_after_last(pad)
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name()
        if name == video_codec(codec).caps and not linked["video"]:
            linked["video"] = True
            vc = video_codec(codec)
            cf = make_element("capsfilter", caps=Gst.Caps.from_string(
                f"{vc.caps},stream-format={_video_format(info, caps)},alignment=au"))
            to_mux(pad, [make_element(vc.parser), cf, inj, _queue()])
            return
        if name.startswith("audio/"):
            chain = [_queue()]
            parser = _audio_parser(caps)
            if parser:  # demuxers give unframed audio; muxers want it parsed
                chain.insert(0, make_element(parser))
            if to_mux(pad, chain):
                return
        dropped.append(name)
        drain(pipeline, pad)

    def _queue() -> Gst.Element:
        # no time limit: the muxer interleaves by running time, and a file whose streams are
        # skewed (an MP4 cut mid-GOP: decode-only video before the edit) needs seconds of
        # one stream queued before the other is taken; 1 s queues deadlocked the demuxer
        return make_element("queue", max_size_time=0, max_size_buffers=0,
                            max_size_bytes=QUEUE_BYTES)

    demux.connect("pad-added", on_pad)
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    progress_mark, last_change = (-1, -1), time.monotonic()
    try:
        while True:
            msg = wait_bus(bus, Gst.SECOND // 10)
            progress.update(inj.buffers)
            if msg is None:
                mark = (inj.buffers, out.stat().st_size if out.exists() else 0)
                if mark != progress_mark:
                    progress_mark, last_change = mark, time.monotonic()
                elif time.monotonic() - last_change > STALL_S:  # never hang: say so
                    if progress.shown:
                        sys.stderr.write("\n")
                    raise InjectError(f"{inp}: stalled for {STALL_S:.0f} s at frame "
                                   f"{inj.buffers} of {info.frames} (the muxer waits for a "
                                   "stream that sends nothing)")
                continue
            if msg.type == Gst.MessageType.ERROR:
                if progress.shown:
                    sys.stderr.write("\n")
                raise InjectError(f"{inp}: {error_text(msg)}")
            break
    finally:
        pipeline.set_state(Gst.State.NULL)
    progress.update(inj.buffers, final=True)
    for name in dropped:
        logging.getLogger("framecast.inject").warning(
            "%s: stream %s not copied (the %s muxer does not take it)", inp.name, name, mux_name)
    return inj.buffers
