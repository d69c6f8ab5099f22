"""Raw-socket RTSP clients for hostile tests: they do exactly what they are told, no more."""

from __future__ import annotations

import socket
import time


class RawRtsp:
    """One TCP connection speaking RTSP by hand (``rcvbuf`` shrinks the receive buffer)."""

    def __init__(self, port: int, host: str = "127.0.0.1", rcvbuf: int | None = None,
                 timeout: float = 10.0) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.cseq = 0
        self.session: str | None = None
        self.buf = b""

    def request(self, method: str, url: str, headers: dict[str, str] | None = None) -> tuple[
            int, dict[str, str], bytes]:
        self.cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}"]
        if self.session and method not in ("OPTIONS", "DESCRIBE", "SETUP"):
            lines.append(f"Session: {self.session}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return self.response()

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """The next RTSP response, skipping interleaved ``$`` frames."""
        while True:
            while len(self.buf) < 4 or (self.buf[:1] != b"$" and b"\r\n\r\n" not in self.buf):
                self._fill()
            if self.buf[:1] == b"$":
                size = int.from_bytes(self.buf[2:4], "big")
                while len(self.buf) < 4 + size:
                    self._fill()
                self.buf = self.buf[4 + size:]
                continue
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            hdrs = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            n = int(hdrs.get("content-length", "0"))
            while len(rest) < n:
                self.buf = head + b"\r\n\r\n" + rest
                self._fill()
                head, _, rest = self.buf.partition(b"\r\n\r\n")
            self.buf = rest[n:]
            if "session" in hdrs:
                self.session = hdrs["session"].split(";")[0]
            return status, hdrs, rest[:n]

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the server")
        self.buf += data

    def play_tcp(self, url: str) -> None:
        """OPTIONS, DESCRIBE, SETUP (interleaved) and PLAY; the PLAY reply is not awaited."""
        assert self.request("OPTIONS", url)[0] == 200
        st, _, sdp = self.request("DESCRIBE", url, {"Accept": "application/sdp"})
        assert st == 200, st
        controls = [line.split(":", 1)[1].strip() for line in sdp.decode().splitlines()
                    if line.startswith("a=control:") and "stream=" in line]
        for i, ctl in enumerate(controls or ["stream=0"]):
            target = ctl if "://" in ctl else f"{url}/{ctl}"
            st, _, _ = self.request("SETUP", target, {
                "Transport": f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"})
            assert st == 200, st
        self.cseq += 1
        self.sock.sendall(f"PLAY {url} RTSP/1.0\r\nCSeq: {self.cseq}\r\n"
                          f"Session: {self.session}\r\n\r\n".encode())

    def drained_to_eof(self, timeout: float) -> bool:
        """Read everything until the server closes; False if it is still open at timeout."""
        end = time.monotonic() + timeout
        self.sock.settimeout(0.5)
        while time.monotonic() < end:
            try:
                if not self.sock.recv(1 << 20):
                    return True
            except TimeoutError:
                continue
            except OSError:
                return True  # reset: closed too
        return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
