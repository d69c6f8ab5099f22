"""Sidecar JSON Lines: presented index per line, pts-keyed lines, bad lines named file:line."""

from pathlib import Path

import pytest

from framecast.sidecar import MAX_WARNINGS, SidecarError, load_sidecar, parse_lines

FRAME = 33_333_333
PTS = [66_666_666 + i * FRAME for i in range(10)]  # a file whose first frame is not at 0


def test_line_i_is_presented_frame_i() -> None:
    sc = parse_lines(['{"a": 0}', '{"a": 1}', "", "null", '{"a": 4}'], "m.jsonl")
    assert sc.resolve(PTS) == {0: {"a": 0}, 1: {"a": 1}, 4: {"a": 4}}
    assert sc.warnings == []


def test_pts_lines_count_from_first_frame_and_match_nearest() -> None:
    sc = parse_lines(['{"pts": 0, "k": "first"}', '{"pts": 0.101, "k": "fourth"}'], "m.jsonl")
    assert sc.resolve(PTS) == {0: {"k": "first"}, 3: {"k": "fourth"}}


def test_index_and_pts_lines_for_one_frame_merge() -> None:
    sc = parse_lines(['{"a": 0}', '{"a": 1}', '{"pts": 0.034, "b": 2}'], "m.jsonl")
    assert sc.resolve(PTS) == {0: {"a": 0}, 1: {"a": 1, "b": 2}}
    assert sc.warnings == []


def test_pts_far_from_any_frame_is_a_warning() -> None:
    sc = parse_lines(['{"pts": 0.05, "k": 1}', '{"pts": 99, "k": 2}'], "m.jsonl")
    table = sc.resolve(PTS)
    assert 1 in table or 2 in table  # 0.05 s is within half a frame of frame 1 or 2
    assert sc.warnings == ["m.jsonl:2: pts 99 s matches no frame"]


def test_pts_without_video_uses_frame_duration() -> None:
    sc = parse_lines(['{"pts": 1.0, "k": 1}'], "m.jsonl")
    assert sc.resolve(None, frame_ns=FRAME) == {30: {"k": 1}}


@pytest.mark.parametrize("line,reason", [
    ("{not json", "m.jsonl:2: not JSON (Expecting property name enclosed in double quotes)"),
    ("[1, 2]", "m.jsonl:2: expected a JSON object, got list"),
    ('"text"', "m.jsonl:2: expected a JSON object, got str"),
    ('{"pts": -1}', "m.jsonl:2: 'pts' must be a non-negative number of seconds, got -1"),
    ('{"pts": "x"}', "m.jsonl:2: 'pts' must be a non-negative number of seconds, got 'x'"),
], ids=["not-json", "array", "string", "negative-pts", "string-pts"])
def test_bad_line_is_one_warning_naming_file_and_line(line: str, reason: str) -> None:
    sc = parse_lines(['{"ok": 0}', line, '{"ok": 2}'], "m.jsonl")
    assert sc.warnings == [reason]
    assert sc.resolve(PTS) == {0: {"ok": 0}, 2: {"ok": 2}}


def test_many_bad_lines_are_capped() -> None:
    sc = parse_lines(["bad"] * 100, "m.jsonl")
    assert len(sc.warnings) == MAX_WARNINGS + 1
    assert sc.warnings[-1] == "m.jsonl: more bad lines; further warnings suppressed"


def test_load_sidecar(tmp_path: Path) -> None:
    p = tmp_path / "s.jsonl"
    p.write_text('{"index": 0}\n\n{"index": 2}\n')
    seen: list[str] = []
    sc = load_sidecar(p, warn=seen.append)
    assert sc.resolve(PTS) == {0: {"index": 0}, 2: {"index": 2}}
    assert seen == []


def test_missing_sidecar_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SidecarError, match=r"nope\.jsonl: sidecar file not found$"):
        load_sidecar(tmp_path / "nope.jsonl")
