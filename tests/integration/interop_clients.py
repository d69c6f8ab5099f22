"""One real RTSP client per function: each plays a URL and returns the frame index it reads
in the pixels of every picture it decoded, in the order it presented them.

Run as a script (``python interop_clients.py CLIENT URL TRANSPORT COUNT WIDTH HEIGHT``) so that
each client lives in its own process, as it would in the field; it prints a JSON list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import numpy as np

from framecast.pixelindex import read_index

Client = Callable[[str, str, int, int, int], list[int]]


def _raw_gray(cmd: list[str], count: int, width: int, height: int,
              env: dict[str, str] | None = None, plane: int | None = None) -> list[int]:
    """Run ``cmd`` writing raw pictures to stdout; read the index from each picture's luma.

    ``plane``: bytes per picture when the output is planar YUV (luma first), else gray."""
    size = plane or width * height
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    out: list[int] = []
    assert proc.stdout is not None
    try:
        while len(out) < count:
            data = proc.stdout.read(size)
            if len(data) < size:
                break
            luma = np.frombuffer(data[:width * height], np.uint8).reshape(height, width)
            out.append(read_index(luma))
    finally:
        proc.kill()
        proc.wait()
    return out


def ffmpeg(url: str, transport: str, count: int, width: int, height: int) -> list[int]:
    return _raw_gray(["ffmpeg", "-v", "error", "-rtsp_transport", transport, "-i", url, "-an",
                      "-frames:v", str(count), "-fps_mode", "passthrough", "-f", "rawvideo",
                      "-pix_fmt", "gray", "-"], count, width, height)


def mpv(url: str, transport: str, count: int, width: int, height: int) -> list[int]:
    # mpv's encoding mode writes what it would have shown: the presented pictures
    return _raw_gray(["mpv", "--no-config", "--really-quiet", url, f"--rtsp-transport={transport}",
                      f"--frames={count}", "--no-audio", "--vf=format=yuv420p", "--o=-",
                      "--of=rawvideo", "--ovc=rawvideo"], count, width, height,
                     plane=width * height * 3 // 2)


def _gst_tail(count: int) -> str:
    # identity passes eos-after - 1 buffers, then ends the stream
    return (f"videoconvert ! video/x-raw,format=GRAY8 ! identity eos-after={count + 1} "
            "! fdsink fd=1 sync=false")


def rtspsrc(url: str, transport: str, count: int, width: int, height: int) -> list[int]:
    return _raw_gray(["gst-launch-1.0", "-q", "rtspsrc", f"location={url}",
                      f"protocols={transport}", "latency=200", "!", "application/x-rtp,media=video",
                      "!", "decodebin", "!",
                      *_gst_tail(count).split()], count, width, height)


def playbin(url: str, transport: str, count: int, width: int, height: int) -> list[int]:
    # playbin picks the transport from the scheme: rtspt:// is TCP; rtsp:// tries UDP first
    uri = url.replace("rtsp://", "rtspt://", 1) if transport == "tcp" else url
    return _raw_gray(["gst-launch-1.0", "-q", "playbin", f"uri={uri}",
                      f"video-sink={_gst_tail(count)}", "audio-sink=fakesink"],
                     count, width, height)


def pyav(url: str, transport: str, count: int, width: int, height: int) -> list[int]:
    import av

    out: list[int] = []
    with av.open(url, options={"rtsp_transport": transport}, timeout=15) as container:
        for frame in container.decode(video=0):
            out.append(read_index(frame.to_ndarray(format="gray")))
            if len(out) >= count:
                break
    return out


def opencv(url: str, transport: str, count: int, width: int, height: int) -> list[int]:
    # OpenCV's FFmpeg backend reads its options from the environment, before the capture opens
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{transport}"
    import cv2

    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    out: list[int] = []
    try:
        while len(out) < count:
            ok, picture = cap.read()
            if not ok:
                break
            out.append(read_index(cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)))
    finally:
        cap.release()
    return out


CLIENTS: dict[str, Client] = {"ffmpeg": ffmpeg, "mpv": mpv, "rtspsrc": rtspsrc,
                              "playbin": playbin, "pyav": pyav, "opencv": opencv}


if __name__ == "__main__":
    name, url, transport, count, width, height = sys.argv[1:7]
    print(json.dumps(CLIENTS[name](url, transport, int(count), int(width), int(height))))
