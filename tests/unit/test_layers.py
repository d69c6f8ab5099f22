"""The pure layers must never import GStreamer (gi): they run anywhere and test fast."""

import subprocess
import sys

import pytest

PURE = ["framecast.sei", "framecast.metadata", "framecast.sidecar", "framecast.config",
        "framecast.isobmff",
        "framecast.pixelindex", "framecast.signalling.protocol", "framecast.signalling.state",
        "framecast.http.pending", "framecast.http.ratelog",
        "framecast.cli", "framecast.logs", "framecast.relaypolicy", "framecast.filestamp",
        "framecast.authguard", "framecast.logbound", "framecast.errors", "framecast",
        "framecast.codecs", "framecast.reader", "framecast.injectfile",
        "framecast.streaminfo", "framecast.producer", "framecast.webrtcsdp", "framecast.urls",
        "framecast.reorder", "framecast.hops", "framecast.sps",
        # the HTTP side drives producers through framecast.producer only
        "framecast.http.server", "framecast.http.api", "framecast.http.auth",
        "framecast.http.static", "framecast.http.hub", "framecast.http.whep"]


@pytest.mark.parametrize("module", PURE)
def test_pure_module_does_not_import_gi(module: str) -> None:
    code = f"import sys, {module}; print('gi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_http_package_never_imports_gstreamer_modules() -> None:
    """Not even lazily inside a function: the server module hands ``http`` its producers."""
    import ast
    from pathlib import Path

    import framecast.http

    offenders = []
    for path in Path(framecast.http.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names
                          if n.startswith(("framecast.gst", "gi"))]
    assert not offenders, offenders
