"""Shared test fixtures."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def framecast_bin() -> str:
    exe = shutil.which("framecast", path=str(ROOT / ".venv" / "bin")) or shutil.which("framecast")
    assert exe, "framecast console script missing: run make setup"
    return exe


@pytest.fixture(scope="session", autouse=True)
def _quiet_gst_debug() -> None:
    os.environ.setdefault("GST_DEBUG", "1")
