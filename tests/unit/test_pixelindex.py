import numpy as np
import pytest

from framecast.pixelindex import draw_index, read_index, render_frame


@pytest.mark.parametrize("index", [0, 1, 2, 255, 256, 1023, 65535])
def test_round_trip(index: int) -> None:
    assert read_index(render_frame(index, 320, 240)) == index


def test_survives_noise() -> None:
    rng = np.random.default_rng(1)
    frame = render_frame(12345, 320, 240).astype(np.int16)
    noisy = np.clip(frame + rng.integers(-50, 50, frame.shape), 0, 255).astype(np.uint8)
    assert read_index(noisy) == 12345


def test_out_of_range() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        draw_index(np.zeros((240, 320, 3), np.uint8), 1 << 16)


# -- the demo's moving objects and their boxes ---------------------------------------------------

@pytest.mark.parametrize("size", [(640, 360), (320, 240)])
def test_demo_boxes_are_the_objects_pixels(size: tuple[int, int]) -> None:
    from framecast.pixelindex import (
        DEMO_PERIOD,
        _band,
        demo_objects,
        find_object,
        render_demo_frame,
    )

    width, height = size
    seen = set()
    for index in range(0, DEMO_PERIOD, 13):
        frame = render_demo_frame(index, width, height)
        assert read_index(frame) == index  # the objects leave the index band alone
        for x, y, w, h, label in demo_objects(index, width, height):
            assert find_object(frame, label) == (x, y, w, h), (index, label)
            assert 0 <= x and x + w <= width and _band(height) <= y and y + h <= height
            seen.add((label, x, y))
    assert len(seen) > 30  # they move
    # the paths close: the clip loops without a jump
    assert demo_objects(DEMO_PERIOD, width, height) == demo_objects(0, width, height)


def test_find_object_misses_an_absent_object() -> None:
    from framecast.pixelindex import find_object

    assert find_object(render_frame(5, 320, 240), "ball") is None
    assert find_object(render_frame(5, 320, 240), "block") is None
