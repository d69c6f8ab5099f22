"""Decode order in, presentation order out (framecast.reorder, pure)."""

from hypothesis import given
from hypothesis import strategies as st

from framecast.reorder import REORDER_WINDOW, Reorder

STEP = 33_333_333


def ibbp(gops: int) -> list[tuple[int, int, bool]]:
    """(presented index, decode index, keyframe) of I P B B P B B … in decode order."""
    out: list[tuple[int, int, bool]] = []
    for g in range(gops):
        base = g * 7
        order = [0, 3, 1, 2, 6, 4, 5]
        out += [(base + i, 0, i == 0) for i in order]
    return [(p, d, k) for d, (p, _, k) in enumerate(out)]


def drain(r: Reorder[int]) -> list[int]:
    out = list(r.ready)
    r.ready.clear()
    return out


def test_without_b_frames_every_frame_leaves_at_once() -> None:
    r: Reorder[int] = Reorder()
    for i in range(20):
        r.push(i, i * STEP, None, keyframe=i == 0, step=STEP)
        assert drain(r) == [i]  # no waiting for the window
    assert len(r) == 0


def test_b_frames_with_dts_come_out_in_presentation_order() -> None:
    r: Reorder[int] = Reorder()
    got: list[int] = []
    for p, d, key in ibbp(3):
        r.push(p, p * STEP + 2 * STEP, d * STEP, keyframe=key)  # PTS shifted past DTS
        got += drain(r)
    while r.flush_one():
        pass
    got += drain(r)
    assert got == list(range(21))


def test_b_frames_without_dts_come_out_in_order_holding_at_most_the_window() -> None:
    r: Reorder[int] = Reorder()
    got: list[int] = []
    for p, _d, key in ibbp(4):
        r.push(p, p * STEP, None, keyframe=key)
        assert len(r) <= REORDER_WINDOW
        got += drain(r)
    while r.flush_one():
        pass
    assert got + drain(r) == list(range(28))


def test_unknown_pts_is_not_held() -> None:
    r: Reorder[str] = Reorder()
    r.push("x", None)
    assert drain(r) == ["x"]
    assert not r.flush_one()


@given(st.permutations(list(range(12))))
def test_anything_within_the_window_is_sorted(order: list[int]) -> None:
    """Frames at most REORDER_WINDOW places from their spot come out sorted; nothing is lost."""
    near = sorted(range(12), key=lambda i: (order[i] % 3) + i)  # a bounded shuffle
    r: Reorder[int] = Reorder()
    for i in near:
        r.push(i, i * STEP, None)
    while r.flush_one():
        pass
    out = drain(r)
    assert sorted(out) == list(range(12))
    assert out == sorted(out)


def test_a_frame_arriving_after_a_later_one_left_is_dropped_not_sent_out_of_order() -> None:
    """Frame 4 is missing, so the window releases 5..9; when 4 turns up it is too late."""
    r: Reorder[int] = Reorder()
    got: list[int] = []
    for p in [0, 3, 1, 2, 5, 6, 7, 8, 9, 4]:
        r.push(p, p * STEP, None, keyframe=p == 0, step=STEP)
        got += drain(r)
    while r.flush_one():
        pass
    assert got + drain(r) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert r.late == 1


def test_a_jump_back_of_more_than_a_second_is_a_new_timeline() -> None:
    r: Reorder[int] = Reorder()
    for i in range(10):
        r.push(i, 100 * STEP + i * STEP, None, keyframe=i == 0, step=STEP)
    assert drain(r) == list(range(10))
    r.push(99, 0, None, keyframe=True, step=STEP)  # a restarted source: PTS from 0 again
    assert drain(r) == [99] and r.late == 0
