"""Has a served file changed since it was probed? (pure: no GStreamer)

A file replaced by rename or deleted leaves the playing media reading its open descriptor,
which is fine. A file changed *in place* (truncated, rewritten, appended to) is not: the
demuxer's sample table describes bytes that are no longer there. The stamp tells the two apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class FileStamp:
    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> FileStamp | None:
        """The stamp of ``path`` now (None if it cannot be stat'ed)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def same_file(self, other: FileStamp | None) -> bool:
        return other is not None and (self.dev, self.ino) == (other.dev, other.ino)

    def changed_in_place(self, now: FileStamp | None) -> bool:
        """The same file (inode) with other contents: what an open descriptor would see."""
        return self.same_file(now) and now != self

    def describe_change(self, now: FileStamp) -> str:
        if now.size < self.size:
            return f"truncated from {self.size} to {now.size} bytes"
        if now.size > self.size:
            return f"grew from {self.size} to {now.size} bytes"
        return "rewritten"
