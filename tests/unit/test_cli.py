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
