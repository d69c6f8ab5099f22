"""The ``framecast`` command: serve · watch · inject (one thin function per subcommand).

Each subcommand imports its implementation lazily so ``--help`` and ``--version`` start fast
and never load GStreamer. This is the one place that sets up logging and turns errors into
one ``framecast: error: …`` line and an exit status: the library only raises.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from framecast import __version__
from framecast.errors import FramecastError
from framecast.logs import LOG_FORMATS, setup_logging


def cmd_serve(args: argparse.Namespace) -> int:
    from framecast.server import serve_main

    return serve_main(args)


def cmd_watch(args: argparse.Namespace) -> int:
    from framecast.reader import watch

    watch(args.url, count=args.count, timeout=args.timeout, transport=args.transport,
          audio=args.audio)
    return 0


def cmd_inject(args: argparse.Namespace) -> int:
    from framecast.injectfile import inject_file

    inject_file(args.input, args.output, sidecar=args.sidecar, stamps=args.stamps,
                fmt=args.format, quiet=args.quiet)
    return 0


def _add_log_options(parser: argparse.ArgumentParser, default: object = None) -> None:
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=False if default is None else default, help="debug logging")
    parser.add_argument("--log-format", choices=LOG_FORMATS,
                        default="text" if default is None else default,
                        help="text (time-stamped lines, the default) or json (one object a line)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="framecast",
        description="Serve looped files, relayed cameras and app frames over RTSP and WebRTC, "
        "with per-frame metadata carried in the bitstream as SEI.",
    )
    parser.add_argument("--version", action="version", version=f"framecast {__version__}")
    _add_log_options(parser)
    # the same options after the command name (framecast serve -v); given there, they win
    common = argparse.ArgumentParser(add_help=False)
    _add_log_options(common, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common],
                           help="serve files looped forever over RTSP (and WebRTC)")
    serve.add_argument("files", nargs="*", help="video files; mount = file stem")
    serve.add_argument("--config", help="TOML config with mounts and server settings")
    serve.add_argument("--bind", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--rtsp-port", type=int, help="RTSP port (default 8554)")
    serve.add_argument("--http-port", type=int, help="HTTP/WebRTC port (default 8080)")
    serve.add_argument("--no-http", action="store_true", help="RTSP only")
    serve.add_argument("--sidecar", action="append", default=[], metavar="MOUNT=FILE.jsonl",
                       help="per-frame metadata for a file mount (JSON Lines)")
    serve.add_argument("--janus", action="append", default=[], metavar="URL",
                       help="publish every mount to this Janus (HTTP API URL); repeatable")
    serve.add_argument("--janus-feed", choices=["auto", "rtsp", "rtp"],
                       help="how Janus gets the video: it pulls RTSP, framecast pushes RTP, or "
                       "auto (default): RTSP, RTP transcoded once for mounts browsers can't play")
    serve.set_defaults(func=cmd_serve)

    watch = sub.add_parser("watch", parents=[common],
                           help="print one JSON object per frame of a stream or file")
    watch.add_argument("url", help="rtsp://…, webrtc://host:port/mount, "
                       "janus://host:port/mount (through a Janus edge), or a file")
    watch.add_argument("--count", type=int, default=0, help="stop after N frames (0 = forever)")
    watch.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for data")
    watch.add_argument("--transport", choices=["tcp", "udp"], default="tcp",
                       help="RTSP lower transport")
    watch.add_argument("--audio", action="store_true",
                       help="also a line per decoded audio chunk ({\"audio\": true, ...})")
    watch.set_defaults(func=cmd_watch)

    inject = sub.add_parser("inject", parents=[common],
                            help="embed per-frame metadata into a file, no re-encode")
    inject.add_argument("input")
    inject.add_argument("output")
    inject.add_argument("--sidecar", help="JSON Lines: line i = metadata of presented frame i")
    inject.add_argument("--stamps", action="store_true", help="add seq/loop/pts_ns/wallclock_ns")
    inject.add_argument("--format", choices=["msgpack", "json"], default="msgpack")
    inject.add_argument("--quiet", action="store_true", help="no progress bar")
    inject.set_defaults(func=cmd_inject)
    return parser


def error_line(exc: BaseException) -> str:
    """The one line a user sees for ``exc``."""
    if isinstance(exc, OSError) and not isinstance(exc, FramecastError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    # inject is a tool run by hand: its warnings are plain "framecast: warning: …" lines
    setup_logging(bool(args.verbose), args.log_format, tool=args.command == "inject")
    try:
        return int(args.func(args) or 0)
    except (FramecastError, OSError) as exc:
        print(f"framecast: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
