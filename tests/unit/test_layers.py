"""The pure layers must never import GStreamer (gi): they run anywhere and test fast."""

import subprocess
import sys

import pytest

PURE = ["framecast.sei", "framecast.metadata", "framecast.sidecar", "framecast.config",
        "framecast.isobmff",
        "framecast.pixelindex", "framecast.signalling.protocol", "framecast.signalling.state",
        "framecast.http.pending", "framecast.http.ratelog",
        "framecast.cli", "framecast.logs", "framecast.relaypolicy", "framecast.filestamp",
        "framecast.authguard", "framecast.logbound", "framecast.edge.janus_api",
        "framecast.edge.janus"]


@pytest.mark.parametrize("module", PURE)
def test_pure_module_does_not_import_gi(module: str) -> None:
    code = f"import sys, {module}; print('gi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
