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
