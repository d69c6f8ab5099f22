"""gst-launch-1.0 entry point for ``framecastinject`` (Debian's gst python plugin loader).

    GST_PLUGIN_PATH=<framecast>/gstplugin gst-launch-1.0 ... ! h264parse ! framecastinject ! ...

The loader runs Debian's system Python, which does not see the framecast venv: add the
package's parent (``src/`` or site-packages) and a neighbouring ``.venv``'s site-packages (for
msgpack) to ``sys.path`` before importing the element.
"""

from __future__ import annotations

import glob
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(_here)))  # src/ or site-packages
_candidates = [_pkg_parent]
for root in (os.environ.get("VIRTUAL_ENV"), os.path.join(os.path.dirname(_pkg_parent), ".venv")):
    if root:
        _candidates += glob.glob(os.path.join(root, "lib", "python3*", "site-packages"))
for _p in _candidates:
    if os.path.isdir(_p) and _p not in sys.path:
        sys.path.append(_p)

from gi.repository import Gst  # noqa: E402

from framecast.gst.inject import ELEMENT_NAME, FramecastInject  # noqa: E402

__gstelementfactory__ = (ELEMENT_NAME, Gst.Rank.NONE, FramecastInject)
