import subprocess
import sys

from framecast import __version__


def test_version() -> None:
    out = subprocess.run([sys.executable, "-m", "framecast", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"framecast {__version__}"


def test_help_lists_subcommands() -> None:
    out = subprocess.run([sys.executable, "-m", "framecast", "--help"],
                         capture_output=True, text=True, check=True)
    for cmd in ("serve", "watch", "inject"):
        assert cmd in out.stdout


def test_log_options_work_before_and_after_the_command() -> None:
    from framecast.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["watch", "x.mp4", "-v", "--log-format", "json"])
    assert args.verbose is True and args.log_format == "json"
    args = parser.parse_args(["-v", "serve"])
    assert args.verbose is True and args.log_format == "text"
    args = parser.parse_args(["serve"])
    assert args.verbose is False and args.log_format == "text"
