"""A playing file media whose file is changed in place ends cleanly, with one log line.

Once a second (a ``stat``, on the server's GLib context) while the media lives: the same inode
with another size or mtime means the demuxer's sample table no longer matches the bytes (a
truncated MP4 played ~5 s of each 10 s loop, then nothing, forever, with nothing logged).
Deleting the file, replacing it by rename or chmod 000 leave the open descriptor as it was:
the media keeps playing it, and only the next request sees the change (``server.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gi.repository import GLib

from framecast.filestamp import FileStamp
from framecast.gst.ending import close_later, send_eos

log = logging.getLogger("framecast.rtsp")

CHECK_MS = 1000


def watch_file(media: Any, element: Any, stamp: FileStamp, path: str, mount: str,
               server: Any, context: GLib.MainContext) -> None:
    """End ``media`` (EOS → BYE, then close its clients) if ``path`` changes in place."""
    alive = {"on": True}

    def tick() -> bool:
        if not alive["on"]:
            return GLib.SOURCE_REMOVE
        now = FileStamp.of(path)
        if now is None or not stamp.changed_in_place(now):
            return GLib.SOURCE_CONTINUE
        alive["on"] = False
        log.warning("/%s: %s %s while playing: ending its stream", mount, Path(path).name,
                    stamp.describe_change(now))
        element.error_logged = True  # demuxer errors that may follow add nothing
        send_eos(element)
        close_later(server, media, context)
        return GLib.SOURCE_REMOVE

    source = GLib.timeout_source_new(CHECK_MS)
    source.set_callback(lambda *_: tick())
    source.attach(context)

    def stop(_media: Any) -> None:
        # now, not at the next tick: the callback holds the media and its element
        alive["on"] = False
        source.destroy()

    media.connect("unprepared", stop)
