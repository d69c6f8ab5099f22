"""The README's examples, run as written (only ports, paths and the endless loop bounded), with
the shape of their output checked against what the README shows. An example that changes in
the README changes here; one that is no longer found fails the test."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BIN = ROOT / ".venv" / "bin"


def code_blocks(lang: str | None = None) -> list[str]:
    """Fenced blocks of the README (``lang`` "" for blocks without a language)."""
    blocks = re.findall(r"^( *)```(\w*)\n(.*?)^\1```", README, re.S | re.M)
    return [textwrap.dedent(body) for _, tag, body in blocks if lang is None or tag == lang]


def block_with(text: str, lang: str | None = None) -> str:
    found = [b for b in code_blocks(lang) if text in b]
    assert found, f"README: no {lang or ''} code block with {text!r} any more"
    return found[0]


def line_with(text: str) -> str:
    for block in code_blocks("sh"):
        for line in block.splitlines():
            if text in line:
                return line.split("  #")[0].strip()  # drop the trailing comment
    raise AssertionError(f"README: no shell line with {text!r} any more")


def example_json(line: str) -> Any:
    """A README output line with ``...`` elisions made into JSON."""
    return json.loads(re.sub(r",\s*\.\.\.", "", line))


def assert_shape(example: Any, actual: Any, where: str = "") -> None:
    """Every key the example shows is in the output, holding the same kind of value."""
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for k, v in example.items():
            assert k in actual, f"{where}.{k}: shown in the README, missing in {actual!r}"
            assert_shape(v, actual[k], f"{where}.{k}")
    elif isinstance(example, list):
        assert isinstance(actual, list) and (actual or not example), f"{where}: {actual!r}"
        for e in example[:1]:
            assert_shape(e, actual[0], f"{where}[0]")
    elif isinstance(example, bool):
        assert isinstance(actual, bool), f"{where}: {actual!r}"
    elif isinstance(example, int | float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), where


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    rtsp_port: int
    http_port: int
    cwd: Path
    log: Path
    err: Path  # stderr: the log lines

    def localise(self, text: str) -> str:
        """The README's default ports, made ours."""
        text = re.sub(r"(127\.0\.0\.1|localhost):8554", f"127.0.0.1:{self.rtsp_port}", text)
        return re.sub(r"(127\.0\.0\.1|localhost):8080", f"127.0.0.1:{self.http_port}", text)


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "GST_DEBUG": os.environ.get("GST_DEBUG", "1")}


def sh(cmd: str, cwd: Path, timeout: float = 60) -> str:
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", cmd], cwd=cwd, env=_env(),
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd}\nexit {out.returncode}\n{out.stderr[-2000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[Served]:
    """``framecast serve clip.mp4 demo.mp4`` (the names the README's examples use), started
    the way the README's first example starts it."""
    from ports import free_port

    from framecast.gst.clips import make_clip

    cwd = tmp_path_factory.mktemp("readme")
    make_clip(cwd / "clip.mp4", frames=90, fps=30, profile="main", audio="aac")
    shutil.copy(cwd / "clip.mp4", cwd / "demo.mp4")
    shutil.copy(cwd / "clip.mp4", cwd / "in.mp4")
    rtsp_port, http_port = free_port(), free_port()
    first = line_with("framecast serve clip.mp4")
    cmd = first.replace("other.mkv", "demo.mp4").split()
    assert cmd[:3] == ["framecast", "serve", "clip.mp4"], first
    log = artifacts_dir / f"readme-serve-{http_port}.log"
    err = artifacts_dir / f"readme-serve-{http_port}.err"
    env = _env()
    env.pop("GST_DEBUG")  # as a newcomer runs it: the log shows what they would see
    proc = subprocess.Popen([*cmd, "--rtsp-port", str(rtsp_port), "--http-port", str(http_port)],
                            cwd=cwd, env=env, stdout=log.open("wb"), stderr=err.open("wb"))
    s = Served(proc, rtsp_port, http_port, cwd, log, err)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, err.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/streams", timeout=2):
                break
        except OSError:
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.3)
    yield s
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def test_watch_example_prints_what_the_readme_shows(served: Served) -> None:
    cmd = line_with("framecast watch rtsp://")
    block = block_with(cmd, "sh")
    lines = block.splitlines()
    shown = example_json(lines[lines.index(next(x for x in lines if cmd in x)) + 1])
    out = sh(served.localise(cmd), served.cwd).splitlines()
    assert len(out) == 3, out  # --count 3
    frames = [json.loads(x) for x in out]
    for f in frames:
        assert_shape(shown, f, "watch")
        md = f["metadata"][0]
        # the stamps the README names, and no field it shows that the stamps do not carry
        assert {"seq", "loop", "pts_ns", "wallclock_ns"} <= md.keys()
    assert [f["metadata"][0]["seq"] for f in frames] == [0, 1, 2]


def test_inject_example_with_the_readme_sidecar(served: Served) -> None:
    sidecar = block_with('{"boxes"', "")
    (served.cwd / "meta.jsonl").write_text(sidecar)
    cmd = line_with("framecast inject ")
    sh(cmd, served.cwd)
    out = sh("framecast watch out.mp4", served.cwd).splitlines()
    frames = [json.loads(x) for x in out]
    assert len(frames) == 90
    lines = [json.loads(x) if x.strip() else None for x in sidecar.splitlines()]
    first = frames[0]["metadata"][0]
    assert {k: first[k] for k in lines[0]} == lines[0]  # line 0 → presented frame 0
    timed = next(x for x in lines if x and "pts" in x)
    at = round(timed["pts"] * 30)  # the frame nearest that time
    md = frames[at]["metadata"][0]
    assert md.get("event") == timed["event"], md
    assert "--stamps" not in cmd or "seq" in first


def test_gst_launch_injector_example(served: Served) -> None:
    (served.cwd / "meta.jsonl").write_text(block_with('{"boxes"', ""))
    cmd = block_with("gst-launch-1.0", "sh").replace("\\\n", " ")
    cmd = cmd.replace("$PWD/src", str(ROOT / "src")).replace("out.mp4", "gst-out.mp4")
    sh(f"{cmd.strip()} -q", served.cwd)
    out = [json.loads(x) for x in sh("framecast watch gst-out.mp4 --count 2",
                                      served.cwd).splitlines()]
    assert out[0]["metadata"][0]["boxes"] == [[10, 20, 50, 60]], out[0]


def test_open_example_prints_frames(served: Served) -> None:
    import framecast.reader

    code = served.localise(block_with("framecast.open(", "python"))
    printed: list[tuple[Any, ...]] = []

    class Enough(Exception):
        pass

    def print_(*args: Any) -> None:  # the example loops forever over a looped mount
        printed.append(args)
        if len(printed) == 3:
            raise Enough

    with pytest.raises(Enough):
        exec(compile(code, "README.md", "exec"), {"print": print_})
    assert len(printed) == 3
    for pts, keyframe, md, raw in printed:
        assert isinstance(pts, float) and isinstance(keyframe, bool)
        assert isinstance(md, list) and {"seq", "loop", "pts_ns"} <= md[0].keys()
        assert isinstance(raw, list)  # other (third-party) SEI: none in this clip
    assert printed[0][1] is True  # a reader starts at a keyframe
    assert issubclass(framecast.reader.ReaderTimeout, TimeoutError)


def test_api_streams_curl_example_has_the_fields_of_the_route_table(served: Served) -> None:
    cmd = line_with("curl -s localhost:8080/api/streams")
    body = json.loads(sh(served.localise(cmd).replace("python3", str(BIN / "python")),
                         served.cwd))
    row = next(x for x in README.splitlines() if x.startswith("| `GET /api/streams`"))
    outer, inner = re.search(r"\{\"streams\": \[\{(.*)\}\]\}", row).group(1), ""
    if (m := re.search(r"webrtc: \{(.*?)\}", outer)) is not None:
        inner = m.group(1)
        outer = outer.replace(m.group(0), "webrtc")
    keys = [k.strip() for k in outer.split(",")]
    webrtc_keys = [k.strip() for k in inner.split(",") if k.strip()]
    assert len(keys) > 5 and len(webrtc_keys) > 3, row
    streams = {s["name"]: s for s in body["streams"]}
    assert set(streams) == {"clip", "demo"}
    for s in streams.values():
        missing = [k for k in keys if k not in s]
        assert not missing, f"README's /api/streams fields missing: {missing}"
        missing = [k for k in webrtc_keys if k not in s["webrtc"]]
        assert not missing, f"README's webrtc fields missing: {missing}"
    assert streams["clip"]["audio"] == "aac"


def test_webrtc_watch_example(served: Served) -> None:
    # WebRTC needs the private network namespace (tools/netns-run), as the README says
    if not any(x.strip().startswith("v0:") for x in open("/proc/self/net/dev")):
        pytest.skip("WebRTC needs tools/netns-run")
    cmd = line_with("framecast watch webrtc://")
    out = sh(served.localise(cmd), served.cwd, timeout=60).splitlines()
    assert len(out) == int(re.search(r"--count (\d+)", cmd).group(1))
    frames = [json.loads(line) for line in out]
    for f in frames:
        assert {"pts", "keyframe", "metadata"} <= f.keys()
    assert all(f["metadata"] and "seq" in f["metadata"][0] for f in frames), out


LOG_LINE = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} (DBG|INF|WRN|ERR) \[\w+\] ")


def test_server_log_after_webrtc_sessions_is_time_stamped_without_gupnp(served: Served) -> None:
    """Runs after the examples above (file order): a newcomer's server log of RTSP and WebRTC
    sessions has a time stamp on every line, and no GUPnP warning from libnice."""
    text = served.err.read_text(errors="replace")
    if "WHEP viewer" not in text:
        pytest.skip("no WebRTC session in this run (WebRTC needs tools/netns-run)")
    lines = text.splitlines()
    assert not [x for x in lines if "gupnp" in x.lower()], text[-2000:]
    bare = [x for x in lines if not LOG_LINE.match(x)]
    assert not bare, f"log lines without a time stamp: {bare[:5]}"
    # stdout has only the URLs, one per mount
    assert served.log.read_text().split() == [
        f"rtsp://127.0.0.1:{served.rtsp_port}/{m}" for m in ("clip", "demo")]


def test_publisher_example_serves_its_frames_and_boxes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``framecast.Publisher`` example as written, with ``detections()`` supplied and its
    own server on a free port (the README's default 8554 may be taken)."""
    import threading

    import numpy as np

    import framecast
    from framecast.config import Settings
    from framecast.server import Server

    code = block_with("framecast.Publisher(", "python")
    server = Server(Settings(rtsp_port=0, http=False)).start()
    real = framecast.Publisher
    made: list[Any] = []

    def publisher(*args: Any, **kw: Any) -> Any:
        made.append(real(*args, server=server, **kw))
        return made[-1]

    monkeypatch.setattr(framecast, "Publisher", publisher)
    got: list[Any] = []

    def watch() -> None:  # the client wait_ready() waits for
        while not made:
            time.sleep(0.05)
        with framecast.open(made[0].url, timeout=10) as frames:
            for f in frames:
                got.append(f)
                if len(got) == 3:
                    return

    def detections() -> Iterator[tuple[np.ndarray, list[list[Any]]]]:
        for i in range(150):  # ≤ 5 s at 30 fps, until the client has its frames
            if len(got) >= 3:
                return
            time.sleep(1 / 30)
            yield np.full((480, 640, 3), i % 256, np.uint8), [[i, 20, 50, 60, "thing"]]

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        exec(compile(code, "README.md", "exec"), {"detections": detections})
        t.join(10)
    finally:
        server.stop()
    assert len(got) == 3, got
    for f in got:
        md = f.metadata[0]
        assert md["boxes"][0][1:] == [20, 50, 60, "thing"] and "seq" in md, md
