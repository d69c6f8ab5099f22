"""``framecast inject``: metadata embedded without re-encoding, read back by PyAV and FFmpeg."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from sei_helpers import av_frames, write_index_sidecar

from framecast.gst.clips import make_clip
from framecast.metadata import FRAMECAST_UUID, FRAMECAST_UUID_STR, decode_metadata

N = 30


def inject(framecast_bin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([framecast_bin, "inject", *args], capture_output=True, text=True,
                          timeout=120)


def video_md5(path: Path) -> list[str]:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f",
                          "framemd5", "-"], capture_output=True, text=True, check=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines()
            if line and not line.startswith("#")]


@pytest.mark.parametrize("codec,container,bframes,audio", [
    ("h264", "mp4", 2, "aac"), ("h265", "ts", 2, "aac"), ("h264", "mkv", 0, "opus"),
    ("h265", "mov", 2, None),
], ids=["h264-mp4-bframes-aac", "h265-ts-bframes-aac", "h264-mkv-opus", "h265-mov-bframes"])
def test_inject_then_pyav_and_ffmpeg_agree(tmp_path: Path, framecast_bin: str, codec: str,
                                           container: str, bframes: int,
                                           audio: str | None) -> None:
    clip = make_clip(tmp_path / f"in.{container}", codec=codec, container=container, frames=N,
                     bframes=bframes, audio=audio, gop=15)
    side = tmp_path / "meta.jsonl"
    write_index_sidecar(side, N)
    out = tmp_path / f"out.{container}"
    proc = inject(framecast_bin, str(clip), str(out), "--sidecar", str(side), "--stamps")
    assert proc.returncode == 0, proc.stderr
    assert f"{N}/{N} frames" in proc.stderr  # the progress bar reached the end
    assert not list(tmp_path.glob(".*.part"))

    # PyAV: every presented frame's pixel index equals its metadata index; stamps follow
    frames = list(av_frames(str(out)))
    assert [f.pixel_index for f in frames] == list(range(N))
    for f in frames:
        (md,) = f.metadata
        assert md["index"] == f.pixel_index == md["seq"] and md["loop"] == 0

    # no re-encode: every decoded picture is bit-identical to the input's
    assert video_md5(out) == video_md5(clip)
    # the other streams are copied
    streams = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0"]
    assert (subprocess.run([*streams, str(out)], capture_output=True, text=True).stdout.split()
            == subprocess.run([*streams, str(clip)], capture_output=True, text=True)
            .stdout.split())

    # ffprobe names the SEI on every video frame
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_frames",
                            str(out)], capture_output=True, text=True, check=True).stdout
    per_frame = probe.split("[/FRAME]")[:-1]
    assert len(per_frame) == N
    assert all("User Data Unregistered SEI" in fr for fr in per_frame)

    # ffmpeg showinfo prints UUID and data: decode ours and find every index once
    log = subprocess.run(["ffmpeg", "-hide_banner", "-i", str(out), "-map", "0:v", "-vf",
                          "showinfo", "-f", "null", "-"], capture_output=True,
                         text=True).stderr
    pairs = re.findall(r"UUID=([0-9a-f-]+)\s*\n.*?User Data=([0-9a-f]+)", log)
    ours = [decode_metadata(bytes.fromhex(data)) for uid, data in pairs
            if uid == FRAMECAST_UUID_STR]
    assert sorted(m["index"] for m in ours) == list(range(N))
    assert len(FRAMECAST_UUID) == 16


def test_json_format_and_sidecar_only(tmp_path: Path, framecast_bin: str) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=10)
    side = tmp_path / "meta.jsonl"
    side.write_text('{"label": "zero"}\n\n{"pts": 0.1, "label": "three"}\n')
    out = tmp_path / "out.mp4"
    proc = inject(framecast_bin, str(clip), str(out), "--sidecar", str(side), "--format",
                  "json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "" or "CRITICAL" in proc.stderr  # no progress when quiet
    frames = list(av_frames(str(out)))
    assert {f.pixel_index: f.metadata for f in frames if f.metadata} == {
        0: [{"label": "zero"}], 3: [{"label": "three"}]}  # no stamps without --stamps


def test_bad_sidecar_lines_warn_with_file_and_line(tmp_path: Path, framecast_bin: str) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=6)
    side = tmp_path / "meta.jsonl"
    side.write_text('{"ok": 0}\n{broken\n[1]\n{"ok": 3}\n')
    out = tmp_path / "out.mp4"
    proc = inject(framecast_bin, str(clip), str(out), "--sidecar", str(side), "--quiet")
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("framecast: warning:")]
    assert warnings == [f"framecast: warning: {side}:2: not JSON (Expecting property name "
                        "enclosed in double quotes)",
                        f"framecast: warning: {side}:3: expected a JSON object, got list"]
    frames = list(av_frames(str(out)))
    assert {f.pixel_index: f.metadata for f in frames if f.metadata} == {
        0: [{"ok": 0}], 3: [{"ok": 3}]}


@pytest.mark.parametrize("args,message", [
    (["IN", "OUT.mp4"], "nothing to inject: give --sidecar FILE and/or --stamps"),
    (["MISSING.mp4", "OUT.mp4", "--stamps"], "MISSING.mp4: no such file"),
    (["IN", "OUT.mkv", "--stamps"], "OUT.mkv: must be the same container family as in.mp4"
                                    " (mp4)"),
    (["IN", "OUT.mp4", "--sidecar", "NOPE.jsonl"], "NOPE.jsonl: sidecar file not found"),
    (["JUNK.mp4", "OUT.mp4", "--stamps"], "JUNK.mp4: not a video file"),
    (["IN", "IN", "--stamps"], "IN: output must not be the input file"),
], ids=["nothing", "missing-input", "other-family", "missing-sidecar", "junk", "same-file"])
def test_bad_input_is_one_line(tmp_path: Path, framecast_bin: str, args: list[str],
                               message: str) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    (tmp_path / "JUNK.mp4").write_bytes(b"junk" * 100)
    names = {"IN": str(clip)}
    argv = [names.get(a, str(tmp_path / a) if a.isupper() or "." in a else a)
            if not a.startswith("--") else a for a in args]
    proc = inject(framecast_bin, *argv)
    assert proc.returncode == 2
    expected = message.replace("IN", str(clip)) if message.startswith("IN") else message
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("framecast: error:")]
    assert len(errors) == 1 and expected in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "OUT.mp4").exists()


def test_progress_is_json_free_stdout(tmp_path: Path, framecast_bin: str) -> None:
    clip = make_clip(tmp_path / "in.ts", container="ts", frames=5)
    proc = inject(framecast_bin, str(clip), str(tmp_path / "o.ts"), "--stamps")
    assert proc.returncode == 0 and proc.stdout == ""
    json.dumps(proc.stderr)
