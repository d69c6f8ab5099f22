"""framecast.filestamp: a file changed in place is told from one replaced or deleted."""

from __future__ import annotations

import os
from pathlib import Path

from framecast.filestamp import FileStamp


def test_changes_in_place_and_not(tmp_path: Path) -> None:
    f = tmp_path / "clip.mp4"
    f.write_bytes(b"x" * 1000)
    before = FileStamp.of(f)
    assert before is not None and not before.changed_in_place(FileStamp.of(f))
    os.truncate(f, 500)
    now = FileStamp.of(f)
    assert now is not None and before.changed_in_place(now)
    assert before.describe_change(now) == "truncated from 1000 to 500 bytes"
    with open(f, "ab") as out:
        out.write(b"y" * 700)
    grown = FileStamp.of(f)
    assert grown is not None and now.describe_change(grown) == "grew from 500 to 1200 bytes"
    os.utime(f, ns=(1, 1))
    assert grown.describe_change(FileStamp.of(f)) == "rewritten"  # type: ignore[arg-type]


def test_replaced_or_deleted_is_not_in_place(tmp_path: Path) -> None:
    f = tmp_path / "clip.mp4"
    f.write_bytes(b"x" * 1000)
    before = FileStamp.of(f)
    assert before is not None
    new = tmp_path / "new.mp4"
    new.write_bytes(b"z" * 10)
    os.replace(new, f)
    assert not before.changed_in_place(FileStamp.of(f))  # another inode: the fd is intact
    f.unlink()
    assert FileStamp.of(f) is None and not before.changed_in_place(None)
