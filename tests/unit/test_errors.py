"""One error root: every error framecast raises on purpose is a FramecastError and keeps the
built-in base an application would catch; the command prints it as one line, exit 2."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import framecast
from framecast import errors
from framecast.cli import error_line, main

ERRORS = [c for _, c in inspect.getmembers(errors, inspect.isclass)
          if c.__module__ == "framecast.errors"]


def test_every_error_has_the_one_root_and_is_public() -> None:
    assert len(ERRORS) >= 15
    for cls in ERRORS:
        assert issubclass(cls, framecast.FramecastError), cls
        assert getattr(framecast, cls.__name__) is cls, cls  # from framecast import X


@pytest.mark.parametrize("cls,builtin", [
    (errors.MediaNotFound, FileNotFoundError), (errors.MediaUnreadable, PermissionError),
    (errors.ConfigError, ValueError), (errors.SEIError, ValueError),
    (errors.MetadataTooLarge, ValueError), (errors.ReaderTimeout, TimeoutError),
    (errors.PortInUse, OSError), (errors.InputError, ValueError),
])
def test_built_in_bases_are_kept(cls: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(cls, builtin)


def test_modules_raise_the_same_classes() -> None:
    from framecast import config, metadata, sei, sidecar
    from framecast.signalling import protocol

    assert config.ConfigError is errors.ConfigError
    assert sidecar.SidecarError is errors.SidecarError
    assert metadata.MetadataError is errors.MetadataError
    assert sei.SEIError is errors.SEIError
    assert protocol.ProtocolError is errors.ProtocolError
    with pytest.raises(framecast.FramecastError):
        config.parse_config({"nope": 1})


def test_error_line() -> None:
    assert error_line(errors.MediaNotFound("a.mp4: no such file")) == "a.mp4: no such file"
    assert error_line(FileNotFoundError(2, "No such file or directory", "x")) == \
        "x: No such file or directory"
    assert error_line(errors.ReaderError("first\nsecond")) == "first"
    assert error_line(errors.InjectError()) == "InjectError"


def test_cli_turns_an_error_into_one_line_and_status_2(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert main(["inject", "in.mp4", "out.mp4"]) == 2
    err = capsys.readouterr().err
    assert err == "framecast: error: nothing to inject: give --sidecar FILE and/or --stamps\n"


def test_inject_bad_input_is_checked_before_gstreamer_loads() -> None:
    code = ("import sys\nfrom framecast.cli import main\n"
            "rc = main(['inject', 'in.mp4', 'out.mp4'])\nprint(rc, 'gi' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["2", "False"]


def test_bad_url_is_refused_before_gstreamer_loads() -> None:
    code = ("import sys, framecast\ntry:\n    framecast.open('ftp://x/y.mp4')\n"
            "except framecast.InputError as exc:\n    print(exc, '|', 'gi' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ("ftp://x/y.mp4: unsupported URL (rtsp://, webrtc:// or a file "
                                  "path) | False")
