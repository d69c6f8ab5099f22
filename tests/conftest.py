"""Shared test fixtures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from ports import free_port

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


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
