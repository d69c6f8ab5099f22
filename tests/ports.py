"""Free ports for test servers and clients (importable from any test folder: tests/ is on
sys.path; the benchmarks put it there too)."""

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_pair() -> tuple[socket.socket, socket.socket]:
    """Two bound UDP sockets on consecutive ports, RTP even and RTCP odd (RFC 3550)."""
    for _ in range(200):
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        port = a.getsockname()[1]
        if port % 2 == 0:
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                b.bind(("127.0.0.1", port + 1))
                return a, b
            except OSError:
                b.close()
        a.close()
    raise OSError("no consecutive UDP ports")
