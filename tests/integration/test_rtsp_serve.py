"""`framecast serve` as users run it: URLs, bad input, ports, auth, TLS, clients that vanish."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from ports import free_port
from rtsp_helpers import RtspsrcClient, check_pts, ffprobe_packets, wait_until

from framecast.config import Mount, Settings, User
from framecast.gst.clips import make_clip
from framecast.gst.probe import MediaError, probe_file
from framecast.server import Server

FRAMES = 20


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("serve")
    good = make_clip(d / "good.mp4", frames=FRAMES, gop=10)
    other = make_clip(d / "other.mkv", container="mkv", codec="h265", frames=FRAMES, gop=10)
    data = good.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])  # mdat without its moov
    (d / "corrupt.mp4").write_bytes(os.urandom(40_000))
    vp9 = make_clip(d / "vp9.webm", codec="vp9", container="webm", frames=5)
    mjpeg = make_clip(d / "mjpeg.mkv", codec="mjpeg", container="mkv", frames=5)
    novideo = d / "novideo.mp4"
    subprocess.run(["gst-launch-1.0", "-q", "audiotestsrc", "num-buffers=20", "!", "avenc_aac",
                    "!", "mp4mux", "!", "filesink", f"location={novideo}"], check=True)
    (d / "adir.mp4").mkdir()
    return {"good": good, "other": other, "truncated": d / "truncated.mp4",
            "corrupt": d / "corrupt.mp4", "vp9": vp9, "mjpeg": mjpeg, "novideo": novideo,
            "missing": d / "missing.mp4", "dir": d / "adir.mp4"}


# name -> the one-line reason (the message starts with the file name)
BAD = {
    "missing": "missing.mp4: no such file",
    "dir": "adir.mp4: is a directory, not a file",
    "truncated": "truncated.mp4: corrupt or truncated",
    "corrupt": "corrupt.mp4: not a video file",
    "novideo": "novideo.mp4: no video stream",
    "vp9": "vp9.webm: unsupported video codec VP9 (framecast serves H.264 and H.265)",
    "mjpeg": "mjpeg.mkv: unsupported video codec MJPEG (framecast serves H.264 and H.265)",
}


@pytest.mark.parametrize("kind", list(BAD), ids=list(BAD))
def test_probe_bad_input_one_line(media: dict[str, Path], kind: str) -> None:
    with pytest.raises(MediaError) as exc:
        probe_file(media[kind])
    msg = str(exc.value)
    assert msg.startswith(BAD[kind]), msg
    assert "\n" not in msg


def test_probe_unreadable_file(media: dict[str, Path]) -> None:
    # root reads anything: probe as an unprivileged user, as a real deployment would run
    d = Path(tempfile.mkdtemp(prefix="framecast-unreadable-"))
    d.chmod(0o755)  # the directory is open to all, only the file is not
    f = d / "secret.mp4"
    shutil.copy(media["good"], f)
    f.chmod(0)
    code = ("import sys\nfrom framecast.gst.probe import probe_file, MediaError\n"
            "try:\n    probe_file(sys.argv[1])\nexcept MediaError as e:\n    print(e)\n")
    cmd = [sys.executable, "-c", code, str(f)]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "nobody", "--", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HOME": "/tmp"})
    shutil.rmtree(d)
    assert out.stdout.strip() == "secret.mp4: cannot read (Permission denied)", \
        out.stdout + out.stderr


def test_probe_facts(media: dict[str, Path]) -> None:
    info = probe_file(media["other"])
    assert (info.container, info.video_codec, info.width, info.height) == ("mkv", "h265", 320,
                                                                           240)
    assert info.framerate == (30, 1) and info.frames == FRAMES
    # (last - first) + one frame, made a whole number of frames: Matroska rounds PTS to ms
    assert abs(info.period_ns - (info.video_pts[-1] - info.video_pts[0] + info.frame_ns)) < 1e6
    assert info.period_ns == FRAMES * info.frame_ns or \
        abs(info.period_ns - FRAMES * 1_000_000_000 * 1 / 30) < 2
    assert list(info.video_pts) == sorted(info.video_pts)


# -- the command ------------------------------------------------------------------------------

class Serve:
    """``framecast serve`` in a subprocess; collects stdout (URLs) and stderr (log lines)."""

    def __init__(self, framecast_bin: str, *args: str, env: dict | None = None) -> None:
        self.proc = subprocess.Popen([framecast_bin, "serve", "--no-http", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        self.urls: list[str] = []

    def wait_urls(self, n: int, timeout: float = 30) -> list[str]:
        end = time.monotonic() + timeout
        while len(self.urls) < n and time.monotonic() < end:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("rtsp"):
                self.urls.append(line.strip())
        return self.urls

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _out, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        return self.proc.returncode, err


def test_serve_files_bad_ones_reported_others_keep_serving(framecast_bin: str,
                                                           media: dict[str, Path]) -> None:
    port = free_port()
    files = [str(media["good"]), str(media["other"])] + [str(media[k]) for k in BAD]
    srv = Serve(framecast_bin, "--rtsp-port", str(port), *files)
    try:
        urls = srv.wait_urls(2)
        assert urls == [f"rtsp://127.0.0.1:{port}/good", f"rtsp://127.0.0.1:{port}/other"]
        for url in urls:
            rep = check_pts(ffprobe_packets(url, 1.5), 1 / 30)
            assert rep.clean and rep.frames > 30
    finally:
        code, err = srv.stop()
    assert code == 0, err
    lines = err.splitlines()
    for kind, reason in BAD.items():
        hits = [ln for ln in lines if reason in ln]
        assert len(hits) == 1, f"{kind}: expected one line with {reason!r} in:\n{err}"
    assert "Traceback" not in err
    assert any("client 127.0.0.1 connected to /good" in ln for ln in lines), err
    assert any("client 127.0.0.1 disconnected from /good" in ln for ln in lines), err


def test_no_usable_mount_exits_nonzero(framecast_bin: str, media: dict[str, Path]) -> None:
    out = subprocess.run([framecast_bin, "serve", "--no-http", "--rtsp-port", str(free_port()),
                          str(media["vp9"]), str(media["missing"])],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "vp9.webm: unsupported video codec VP9" in out.stderr
    assert "missing.mp4: no such file" in out.stderr
    assert "no usable mount" in out.stderr and "Traceback" not in out.stderr


def test_port_in_use_is_a_clear_error(framecast_bin: str, media: dict[str, Path]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = subprocess.run([framecast_bin, "serve", "--no-http", "--rtsp-port", str(port),
                              str(media["good"])], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert f"RTSP port 127.0.0.1:{port} is already in use" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_bad_config_key_is_named(framecast_bin: str, tmp_path: Path) -> None:
    cfg = tmp_path / "framecast.toml"
    cfg.write_text('[mounts.cam]\nfile = "x.mp4"\nloop = "yes"\n')
    out = subprocess.run([framecast_bin, "serve", "--config", str(cfg)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.strip() == \
        "framecast: error: framecast.toml: mounts.cam.loop: expected a boolean"


def test_config_mounts_and_ctrl_c(framecast_bin: str, media: dict[str, Path],
                                  tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "framecast.toml"
    cfg.write_text(f'[server]\nrtsp_port = {port}\n\n[mounts.cam]\nfile = "{media["good"]}"\n'
                   'loop = true\n')
    srv = Serve(framecast_bin, "--config", str(cfg))
    try:
        assert srv.wait_urls(1) == [f"rtsp://127.0.0.1:{port}/cam"]
        assert ffprobe_packets(srv.urls[0], 0.5)
    finally:
        code, err = srv.stop(signal.SIGINT)
    assert code == 0, err
    assert "stopping" in err and "Traceback" not in err


def test_demo_without_arguments(framecast_bin: str) -> None:
    port = free_port()
    srv = Serve(framecast_bin, "--rtsp-port", str(port))
    try:
        assert srv.wait_urls(2, timeout=120) == [f"rtsp://127.0.0.1:{port}/demo",
                                                 f"rtsp://127.0.0.1:{port}/demo-high"]
        for url in srv.urls:  # passthrough and transcode demos both play over RTSP
            assert len(ffprobe_packets(url, 1.0)) >= 25
    finally:
        code, err = srv.stop()
    assert code == 0, err


# -- in-process server: request-time errors, vanishing clients, auth, TLS -----------------

def test_file_gone_at_request_time_costs_only_that_mount(media: dict[str, Path],
                                                         tmp_path: Path, caplog) -> None:
    caplog.set_level("INFO")
    doomed = shutil.copy(media["good"], tmp_path / "doomed.mp4")
    mounts = (Mount(name="doomed", file=str(doomed)), Mount(name="good", file=str(media["good"])))
    with Server(Settings(rtsp_port=0, http=False), mounts) as srv:
        Path(doomed).unlink()  # known only when a client asks
        bad = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp",
                              srv.rtsp_url("doomed")], capture_output=True, text=True,
                             timeout=30)
        assert bad.returncode != 0
        assert "5XX" in bad.stderr or "503" in bad.stderr, bad.stderr
        assert check_pts(ffprobe_packets(srv.rtsp_url("good"), 1.0), 1 / 30).clean
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == ["/doomed: doomed.mp4: no such file"], errors


def test_client_vanishing_mid_stream_costs_nothing(media: dict[str, Path]) -> None:
    good = (Mount(name="good", file=str(media["good"])),)
    with Server(Settings(rtsp_port=0, http=False), good) as srv:
        url = srv.rtsp_url("good")
        for transport in ("tcp", "udp"):
            p = subprocess.Popen(["ffmpeg", "-v", "error", "-rtsp_transport", transport, "-i",
                                  url, "-c", "copy", "-f", "null", "-"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            p.kill()  # no TEARDOWN, socket just gone
            p.wait()
        rep = check_pts(ffprobe_packets(url, 1.5), 1 / 30)
        assert rep.clean and rep.frames > 30


@pytest.mark.parametrize("method", ["basic", "digest"])
def test_auth_accepts_good_and_refuses_bad_credentials(media: dict[str, Path],
                                                       method: str) -> None:
    settings = Settings(rtsp_port=0, http=False, users=(User("alice", "s3cret"),), auth=method)
    with Server(settings, (Mount(name="cam", file=str(media["good"])),)) as srv:
        url = srv.rtsp_url("cam")
        # the challenge offers exactly the configured scheme
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
            reply = s.recv(4096).decode()
        assert reply.startswith("RTSP/1.0 401"), reply
        assert f"WWW-Authenticate: {method.capitalize()} " in reply, reply
        good = url.replace("rtsp://", "rtsp://alice:s3cret@")
        assert ffprobe_packets(good, 0.5)
        for creds in ("alice:wrong@", "bob:s3cret@", ""):
            out = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp",
                                  "-show_packets", url.replace("rtsp://", f"rtsp://{creds}")],
                                 capture_output=True, text=True, timeout=30)
            assert out.returncode != 0 and "401" in out.stderr, out.stderr
            assert "[PACKET]" not in out.stdout
        # GStreamer's client too
        client = RtspsrcClient(url, user="alice", password="s3cret").run_for(1.0)
        client.stop()
        assert len(client.video) > 10, client.errors


def test_tls_rtsps(media: dict[str, Path], tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    settings = Settings(rtsp_port=0, http=False, tls_cert=str(cert), tls_key=str(key),
                        users=(User("alice", "s3cret"),))
    with Server(settings, (Mount(name="cam", file=str(media["good"])),)) as srv:
        url = srv.rtsp_url("cam")
        assert url.startswith("rtsps://")
        client = RtspsrcClient(url, user="alice", password="s3cret", tls=True).run_for(1.5)
        client.stop()
        assert len(client.video) > 20, client.errors
        rep = check_pts(ffprobe_packets(url.replace("rtsps://", "rtsps://alice:s3cret@"), 1.0),
                        1 / 30)
        assert rep.clean and rep.frames > 10  # (less: the TLS handshake eats some)


def test_relay_mount_passes_a_camera_through(media: dict[str, Path]) -> None:
    cam_mount = (Mount(name="cam", file=str(media["good"])),)
    with Server(Settings(rtsp_port=0, http=False), cam_mount) as cam:
        relay_mount = Mount(name="relay", source=cam.rtsp_url("cam"), stamps=False)
        with Server(Settings(rtsp_port=0, http=False), (relay_mount,)) as relay:
            factory = relay.mounts["relay"].factory
            packets = ffprobe_packets(relay.rtsp_url("relay"), 2.0)
            assert len(packets) > 30
            rep = check_pts(packets, 1 / 30, tol=0.004)  # re-timestamped by the relay's clock
            assert rep.duplicates == rep.backwards == 0
            # while a client plays: the relay's pipeline holds no decoder or encoder
            from framecast.gst.media import codec_elements
            client = RtspsrcClient(relay.rtsp_url("relay")).start()
            try:
                assert wait_until(lambda: len(client.video) > 5, 10)
                medias = list(factory.medias)
                assert medias and codec_elements(medias[0].get_element()) == []
            finally:
                client.stop()


def test_loop_off_plays_once_then_ends(media: dict[str, Path]) -> None:
    mount = Mount(name="once", file=str(media["good"]), loop=False)
    with Server(Settings(rtsp_port=0, http=False), (mount,)) as srv:
        client = RtspsrcClient(srv.rtsp_url("once")).run_for(FRAMES / 30 + 2.0)
        client.stop()
    assert client.errors == ["EOS"]
    assert len(client.video) == FRAMES
