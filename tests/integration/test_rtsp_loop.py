"""Seamless RTSP looping, as real clients see it (ffprobe over TCP and UDP, GStreamer rtspsrc).

Every codec × container × B-frame variant is served by one in-process server; each test is a
client of it. Clips are 20 frames at 30 fps (0.67 s), so 3 loop boundaries take ~2 s.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from rtsp_helpers import RtspsrcClient, check_pts, ffprobe_packets, wait_until

from framecast.config import Mount, Settings
from framecast.gst.clips import make_clip
from framecast.gst.media import build_media_bin, codec_elements
from framecast.gst.probe import probe_file
from framecast.server import Server

FPS = 30
FRAMES = 20
FRAME_S = 1 / FPS
PERIOD_S = FRAMES / FPS
VARIANTS = [(codec, cont, b) for codec in ("h264", "h265") for cont in ("mp4", "mkv", "ts")
            for b in (0, 2)]


def _name(codec: str, cont: str, b: int) -> str:
    return f"{codec}-{cont}-b{b}"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("loopclips")
    out = {}
    for codec, cont, b in VARIANTS:
        out[_name(codec, cont, b)] = make_clip(
            d / f"{_name(codec, cont, b)}.{cont}", codec=codec, container=cont, frames=FRAMES,
            fps=FPS, bframes=b, gop=10)
    out["av"] = make_clip(d / "av.mp4", frames=10, fps=FPS, bframes=2, gop=10, audio="aac")
    out["vfr"] = make_vfr_clip(d / "vfr.mp4")
    out["editlist"] = make_edit_list_clip(d)
    for codec, b in CUT_VARIANTS:
        out[f"cut-{codec}-b{b}"] = make_cut_clip(d, codec, b)
    return out


CUT_S = 0.3  # 9 frames into a 15-frame GOP: 9 decode-only frames before the edit
CUT_FRAMES = 30 - 9
CUT_VARIANTS = [("h264", 2), ("h264", 0), ("h265", 2)]


def make_cut_clip(d: Path, codec: str, bframes: int) -> Path:
    """MP4 cut mid-GOP by stream copy: its edit list starts 9 frames after the keyframe."""
    src = make_clip(d / f"cut-src-{codec}-b{bframes}.mp4", codec=codec, frames=30, fps=FPS,
                    bframes=bframes, gop=15)
    out = d / f"cut-{codec}-b{bframes}.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", str(CUT_S), "-i", str(src), "-c",
                    "copy", str(out)], check=True, timeout=30)
    return out


def make_edit_list_clip(d: Path) -> Path:
    """MP4 whose edit list is a 0.5 s empty edit then 1 s of media (ffmpeg output seeking)."""
    src = make_clip(d / "editlist-src.mp4", frames=60, fps=FPS, bframes=2, gop=30)
    out = d / "editlist.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-ss", "0.5", "-c", "copy",
                    str(out)], check=True, timeout=30)
    return out


VFR_STEPS_NS = (33_333_333, 50_000_000, 40_000_000)


def make_vfr_clip(path: Path, frames: int = 15) -> Path:
    """Variable frame rate H.264 in MP4 (durations cycle through VFR_STEPS_NS)."""
    from gi.repository import Gst

    from framecast.pixelindex import render_frame

    pipeline = Gst.parse_launch(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width=320,height=240,"
        "framerate=0/1 ! videoconvert ! video/x-raw,format=I420 ! x264enc key-int-max=5 "
        f"bframes=0 ! h264parse ! mp4mux ! filesink location={path}")
    src = pipeline.get_by_name("src")
    pipeline.set_state(Gst.State.PLAYING)
    pts = 0
    for i in range(frames):
        buf = Gst.Buffer.new_wrapped(render_frame(i, 320, 240).tobytes())
        buf.pts, buf.duration = pts, VFR_STEPS_NS[i % len(VFR_STEPS_NS)]
        pts += buf.duration
        src.emit("push-buffer", buf)
    src.emit("end-of-stream")
    msg = pipeline.get_bus().timed_pop_filtered(30 * Gst.SECOND, Gst.MessageType.EOS
                                                | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    assert msg is not None and msg.type == Gst.MessageType.EOS
    return path


@pytest.fixture(scope="module")
def server(clips: dict[str, Path]):
    mounts = tuple(Mount(name=n, file=str(p)) for n, p in clips.items())
    srv = Server(Settings(rtsp_port=0, http=False), mounts).start()
    assert not srv.errors
    yield srv
    srv.stop()


@pytest.mark.parametrize("variant", VARIANTS, ids=[_name(*v) for v in VARIANTS])
def test_pts_seamless_across_loops(server: Server, variant: tuple[str, str, int]) -> None:
    codec, cont, b = variant
    # B-frame variants over UDP, the others over TCP: every codec × container sees both
    transport = "udp" if b else "tcp"
    url = server.rtsp_url(_name(*variant))
    packets = ffprobe_packets(url, seconds=3 * PERIOD_S + 0.6, transport=transport)
    rep = check_pts(packets, FRAME_S)
    assert rep.span >= 3 * PERIOD_S, f"only {rep.span:.2f}s of stream: fewer than 3 boundaries"
    assert rep.clean, (f"{_name(*variant)} over {transport}: {rep.duplicates} duplicated, "
                       f"{rep.gaps} missing, {rep.backwards} backwards; steps "
                       f"{sorted({round(s * 1000, 1) for s in rep.steps})} ms")
    assert server.mounts[_name(*variant)].loop_count >= 3


def test_edit_list_loops_seamlessly(server: Server) -> None:
    # qtdemux pushes one SEGMENT per edit (the empty one, then the media) after every seek
    info = server.mounts["editlist"].info
    period_s = info.period_ns / 1e9
    assert info.frames == 30 and abs(period_s - 1.0) < 1e-3  # the empty edit is not looped
    packets = ffprobe_packets(server.rtsp_url("editlist"), seconds=3 * period_s + 1.2)
    rep = check_pts(packets, FRAME_S)
    assert rep.span >= 3 * period_s, f"only {rep.span:.2f}s of stream: the loop stalls"
    assert rep.clean, (f"{rep.duplicates} duplicated, {rep.gaps} missing, {rep.backwards} "
                       f"backwards; steps {sorted({round(s * 1000, 1) for s in rep.steps})} ms")
    assert server.mounts["editlist"].loop_count >= 3


@pytest.mark.parametrize("variant", CUT_VARIANTS, ids=[f"{c}-b{b}" for c, b in CUT_VARIANTS])
def test_cut_mid_gop_probe_serves_the_lead_in(clips: dict[str, Path],
                                              variant: tuple[str, int]) -> None:
    codec, b = variant
    path = clips[f"cut-{codec}-b{b}"]
    info = probe_file(path)
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts_time,flags", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    rows = [line.split(",") for line in out.split()]
    discard = [float(t) for t, f in rows if "D" in f]  # FFmpeg's "decode, do not show"
    assert len(discard) == 30 - CUT_FRAMES, "the cut should leave decode-only frames"
    # RTP cannot carry "decode, do not show": the lead-in is served as frames of the loop
    assert info.frames == 30 and info.lead_frames == len(discard)
    assert abs(info.period_ns - 30 * 1e9 / FPS) < 1e3
    assert abs(info.lead_ns / 1e9 + min(discard)) < 1e-3  # the keyframe, before the edit


@pytest.mark.parametrize("variant", CUT_VARIANTS, ids=[f"{c}-b{b}" for c, b in CUT_VARIANTS])
def test_cut_mid_gop_loops_seamlessly(server: Server, variant: tuple[str, int]) -> None:
    """Every loop starts at the GOP's keyframe (before the edit) and every frame steps by
    exactly one frame across the boundaries, as TCP and UDP clients at once see it."""
    from concurrent.futures import ThreadPoolExecutor

    codec, b = variant
    name = f"cut-{codec}-b{b}"
    info = server.mounts[name].info
    period = info.period_ns / 1e9
    with ThreadPoolExecutor(2) as pool:
        captures = dict(zip(("tcp", "udp"), pool.map(
            lambda t: ffprobe_packets(server.rtsp_url(name), seconds=3 * period + 0.8,
                                      transport=t), ("tcp", "udp")), strict=True))
    for transport, packets in captures.items():
        rep = check_pts(packets, FRAME_S)
        assert rep.span >= 3 * period, f"{transport}: only {rep.span:.2f}s of stream"
        assert rep.clean, (f"{name} over {transport}: {rep.duplicates} duplicated, "
                           f"{rep.gaps} missing, {rep.backwards} backwards; steps "
                           f"{sorted({round(s * 1000, 1) for s in rep.steps})} ms")
        keys = sorted(float(p["pts_time"]) for p in packets
                      if "K" in p.get("flags", "") and p.get("pts_time") not in (None, "N/A"))
        loop_starts = [t for t in keys if abs((t - keys[0]) / period - round(
            (t - keys[0]) / period)) < 0.002]
        assert len(loop_starts) >= 3, keys  # a keyframe opens every loop


def test_cut_mid_gop_decodes_and_stamps_every_frame(server: Server) -> None:
    """A decoder gets every reference and sees the whole GOP each loop, the lead-in first
    (frame i shows original frame i); the stamps follow: index i for the i-th, 3 loops."""
    import av
    from sei_helpers import sei_of

    from framecast.pixelindex import read_index

    info = server.mounts["cut-h264-b2"].info
    shown: list[tuple[int, dict]] = []
    with av.open(server.rtsp_url("cut-h264-b2"), options={"rtsp_transport": "tcp"},
                 timeout=15) as container:
        for frame in container.decode(video=0):
            ours, _ = sei_of(frame)
            if not shown and not (frame.key_frame and len(ours) == 1):
                continue  # a joining client starts at a complete keyframe
            assert len(ours) == 1, ours
            shown.append((read_index(frame.to_ndarray(format="rgb24")), ours[0]))
            if len(shown) >= 3 * info.frames + 5:
                break
    loops = {md["loop"] for _, md in shown}
    assert len(loops) >= 3, loops
    for pixel, md in shown:
        assert pixel == md["seq"] - md["loop"] * info.frames, f"pixel {pixel} carries {md}"
    seqs = [md["seq"] for _, md in shown]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # TCP: every frame, in order
    assert [p for p, _ in shown].count(0) >= 3  # the keyframe before the edit, every loop


def test_variable_frame_rate_loops_seamlessly(server: Server) -> None:
    info = server.mounts["vfr"].info
    steps = {b - a for a, b in zip(info.video_pts, info.video_pts[1:], strict=False)}
    assert max(steps) - min(steps) > 10_000_000, f"the clip should have variable steps: {steps}"
    # one frame after the last = the last frame's own duration
    assert abs(info.frame_ns - VFR_STEPS_NS[(info.frames - 1) % len(VFR_STEPS_NS)]) < 200_000
    period = info.period_ns / 1e9
    packets = ffprobe_packets(server.rtsp_url("vfr"), seconds=3 * period + 0.5)
    rep = check_pts(packets, FRAME_S, tol=1.0)  # any step: only order and duplicates count
    assert rep.duplicates == rep.backwards == 0 and rep.span >= 3 * period
    allowed = [s / 1e9 for s in VFR_STEPS_NS]
    odd = [s for s in rep.steps if min(abs(s - a) for a in allowed) > 0.0015]
    assert not odd, f"steps outside the file's own frame durations: {odd}"


def test_rtspsrc_keeps_receiving_past_several_loops(server: Server) -> None:
    # rtspsrc honours the PLAY Range: with a closed range it would stop after one loop
    client = RtspsrcClient(server.rtsp_url("h264-mp4-b2"), transport="tcp").run_for(
        5 * PERIOD_S + 0.8)
    try:
        errors = client.poll_errors()
        with client.lock:
            pts = sorted(client.video)
    finally:
        client.stop()
    assert not errors, errors
    assert pts[-1] - pts[0] >= 4 * PERIOD_S * 1e9, "rtspsrc stopped receiving"
    steps = [(b - a) / 1e9 for a, b in zip(pts, pts[1:], strict=False)][:-3]
    assert all(abs(s - FRAME_S) < 0.0015 for s in steps), sorted(set(steps))


def test_audio_stays_within_a_frame_of_video_after_20_loops(server: Server) -> None:
    info = server.mounts["av"].info
    assert info.audio_codec == "aac"
    period = info.period_ns / 1e9
    client = RtspsrcClient(server.rtsp_url("av"), transport="tcp", audio=True)
    try:
        client.start()
        assert wait_until(lambda: bool(client.video and client.audio), 10)
        assert wait_until(lambda: (client.video[-1] - client.video[0]) / 1e9 >= 20 * period
                          or bool(client.poll_errors()), 20 * period + 10)
        assert not client.poll_errors()
        with client.lock:
            a_pts = [p for p, _d in client.audio]
            v_span = max(client.video) - min(client.video)
    finally:
        client.stop()
    a_steps = [b - a for a, b in zip(a_pts, a_pts[1:], strict=False)]
    P = info.period_ns
    # Audio packet k of loop n sits at loop_start(n) + k * packet. Loops are exactly P apart
    # (video is checked seamless elsewhere), so each loop's audio must sit at the same phase
    # modulo P as in the first loop. Any drift against video shows up as a phase shift.
    a0 = a_pts[0]
    first = sorted((p - a0) % P for p in a_pts if p - a0 < P)
    last = [(p - a0) % P for p in a_pts if p > a_pts[-1] - P + 30_000_000]

    def dist(x: int) -> int:
        return min(min(abs(x - f), P - abs(x - f)) for f in first)

    shift = max(dist(x) for x in last)
    print(f"\naudio phase shift after {v_span / P:.0f} loops: {shift / 1e6:.2f} ms")
    assert v_span >= 20 * P - info.frame_ns
    assert shift <= info.frame_ns, f"audio drifted {shift / 1e6:.1f} ms against the loop"
    assert shift < 2_000_000, f"audio moved {shift / 1e6:.1f} ms (more than jitter)"
    assert min(a_steps) > 0, "audio timestamps went backwards at a loop boundary"


def test_two_clients_second_does_not_reset_first(server: Server) -> None:
    url = server.rtsp_url("h265-mkv-b2")
    first = RtspsrcClient(url, transport="udp").start()
    try:
        assert wait_until(lambda: len(first.video) > 10, 10)
        time.sleep(0.5)
        # ffprobe's PLAY carries "Range: npt=0.000-": on a seekable media it would seek the
        # shared pipeline back to 0 (flushing) and the first client would get EOS
        second = ffprobe_packets(url, 2 * PERIOD_S, transport="tcp")
        assert check_pts(second, FRAME_S).clean
        third = RtspsrcClient(url, transport="tcp").run_for(1.0)
        third.stop()
        time.sleep(0.3)
        assert not first.poll_errors(), first.errors
        assert not third.errors, third.errors
        with first.lock:
            pts = list(first.video)
    finally:
        first.stop()
    assert third.ttff is not None, "the third client got no frame"
    print(f"\ntime to first buffer for a joining client: {third.ttff * 1000:.0f} ms")
    # the first client played on through the joins: steady clock, no jump back, no hole
    s = sorted(pts)
    steps = [(b - a) / 1e9 for a, b in zip(s, s[1:], strict=False)][:-3]
    assert all(abs(x - FRAME_S) < 0.0015 for x in steps), sorted({round(x, 4) for x in steps})
    assert (s[-1] - s[0]) / 1e9 > 3 * PERIOD_S


@pytest.mark.parametrize("variant", VARIANTS[::3] + [VARIANTS[-1]],
                         ids=[_name(*v) for v in VARIANTS[::3] + [VARIANTS[-1]]])
def test_pipeline_has_no_decoder_or_encoder(clips: dict[str, Path], variant) -> None:
    info = probe_file(clips[_name(*variant)])
    b = build_media_bin(Mount(name="x", file=info.path), info)
    names = [el.get_factory().get_name() for el in b.iterate_elements()]
    assert "pay0" in [el.get_name() for el in b.iterate_elements()]
    assert codec_elements(b) == [], names


def test_pipeline_with_audio_has_no_decoder_or_encoder(clips: dict[str, Path]) -> None:
    info = probe_file(clips["av"])
    b = build_media_bin(Mount(name="x", file=info.path), info)
    names = {el.get_name() for el in b.iterate_elements()}
    assert {"pay0", "pay1"} <= names
    assert codec_elements(b) == []


@pytest.mark.parametrize("name", ["h264-mp4-b2", "h265-ts-b2", "h264-mkv-b0"])
def test_looper_contract_on_a_plain_pipeline(clips: dict[str, Path], name: str) -> None:
    """What the injector downstream relies on: loop n arrives as a SEGMENT with
    base = n × period_ns, carrying the file's original PTS (any pipeline, full speed)."""
    from gi.repository import Gst

    from framecast.gst.looping import Looper
    from framecast.gst.runtime import GLibThread

    info = probe_file(clips[name])
    pipeline = Gst.parse_launch(
        f'filesrc location="{info.path}" ! {info.demuxer} name=d d. ! {info.parser} name=p ! '
        "fakesink sync=false")
    looper = Looper(info.period_ns, name)
    looper.attach_demuxer(pipeline.get_by_name("d"))
    bases: list[int] = []
    pts: dict[int, list[int]] = {}

    def on_pad(_pad: Gst.Pad, pinfo: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        if pinfo.type & Gst.PadProbeType.BUFFER:
            if bases:
                pts.setdefault(len(bases) - 1, []).append(pinfo.get_buffer().pts)
        elif pinfo.get_event().type == Gst.EventType.FLUSH_STOP:
            bases.clear()
            pts.clear()
        elif pinfo.get_event().type == Gst.EventType.SEGMENT:
            bases.append(pinfo.get_event().parse_segment().base)
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("p").get_static_pad("src").add_probe(
        Gst.PadProbeType.BUFFER | Gst.PadProbeType.EVENT_DOWNSTREAM | Gst.PadProbeType.EVENT_FLUSH,
        on_pad)
    glib = GLibThread().start()
    try:
        glib.call_sync(lambda: looper.watch_bus(pipeline))
        pipeline.set_state(Gst.State.PAUSED)
        assert pipeline.get_state(10 * Gst.SECOND)[0] == Gst.StateChangeReturn.SUCCESS
        assert looper.start()
        pipeline.set_state(Gst.State.PLAYING)
        assert wait_until(lambda: looper.loop_count >= 4, 20)
    finally:
        pipeline.set_state(Gst.State.NULL)
        glib.stop()
    assert bases[:4] == [n * info.period_ns for n in range(4)]
    for n in range(3):
        assert sorted(pts[n]) == list(info.video_pts), f"loop {n}"
