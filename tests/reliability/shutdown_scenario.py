"""Run by test_rtsp_shutdown: N mounts, a client each (TCP and UDP alternating) that leaves
without TEARDOWN, then the server stops at once. Its stderr is what the test reads."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from raw_rtsp import RawRtsp  # noqa: E402

from framecast.config import Mount, Settings  # noqa: E402
from framecast.gst.clips import make_clip  # noqa: E402
from framecast.server import Server  # noqa: E402


def main(workdir: str, mounts: int) -> None:
    clip = make_clip(Path(workdir) / "s.mp4", frames=10, fps=30, width=160, height=120)
    srv = Server(Settings(rtsp_port=0, http=False),
                 tuple(Mount(name=f"m{i}", file=str(clip)) for i in range(mounts))).start()
    raws = []
    for i in range(mounts):
        url = srv.rtsp_url(f"m{i}")
        raw = RawRtsp(srv.port)
        raw.request("DESCRIBE", url)
        transport = (f"RTP/AVP;unicast;client_port={41000 + 2 * i}-{41001 + 2 * i}" if i % 2
                     else "RTP/AVP/TCP;unicast;interleaved=0-1")
        assert raw.request("SETUP", f"{url}/stream=0", {"Transport": transport})[0] == 200
        assert raw.request("PLAY", url)[0] == 200
        raws.append(raw)
    time.sleep(0.5)
    for raw in raws:  # leave without TEARDOWN …
        raw.close()
    t0 = time.monotonic()
    srv.stop()       # … and stop right away
    print(f"stopped in {time.monotonic() - t0:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
