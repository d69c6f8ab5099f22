"""Frame index drawn into pixels and read back: ground truth that metadata stays with its frame.

A frame's index is written as a row of black/white blocks (16 bits, MSB first) across the top
of the picture. Blocks are large and fully saturated so they survive chroma subsampling and
lossy coding; the reader samples each block's centre. Pure numpy, no GStreamer.
"""

from __future__ import annotations

import numpy as np

BITS = 16
_FONT = {  # 3x5 digits, rows top to bottom
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
}


def _band(height: int) -> int:
    return max(16, height // 12)


def draw_index(rgb: np.ndarray, index: int) -> np.ndarray:
    """Draw ``index`` (0 ≤ index < 2**16) as blocks across the top band of ``rgb`` (H×W×3)."""
    if not 0 <= index < 2**BITS:
        raise ValueError(f"index {index} does not fit in {BITS} bits")
    height, width = rgb.shape[:2]
    band, block = _band(height), width // BITS
    rgb[:band] = 0
    for bit in range(BITS):
        if index >> (BITS - 1 - bit) & 1:
            rgb[:band, bit * block:(bit + 1) * block] = 255
    return rgb


def read_index(rgb: np.ndarray) -> int:
    """Read the index drawn by :func:`draw_index` from a decoded picture (H×W×3, RGB)."""
    height, width = rgb.shape[:2]
    band, block = _band(height), width // BITS
    y0, y1 = band // 4, band - band // 4
    value = 0
    for bit in range(BITS):
        x0 = bit * block + block // 4
        x1 = (bit + 1) * block - block // 4
        level = float(rgb[y0:y1, x0:x1].mean())
        value = value << 1 | (level > 127.5)
    return value


def _draw_number(rgb: np.ndarray, number: int, x: int, y: int, scale: int) -> None:
    for n, ch in enumerate(str(number)):
        for row, bits in enumerate(_FONT[ch]):
            for col, on in enumerate(bits):
                if on == "1":
                    x0 = x + (n * 4 + col) * scale
                    y0 = y + row * scale
                    rgb[y0:y0 + scale, x0:x0 + scale] = 255


def render_frame(index: int, width: int, height: int) -> np.ndarray:
    """A moving test picture: drifting gradient, a sweeping bar, the number, the index blocks."""
    ys, xs = np.mgrid[0:height, 0:width]
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rgb[..., 0] = (xs * 255 // max(1, width - 1) + index * 3) % 256
    rgb[..., 1] = (ys * 255 // max(1, height - 1)) % 256
    rgb[..., 2] = 96
    bar = (index * 4) % width
    rgb[:, bar:bar + max(2, width // 40)] = (255, 255, 0)
    scale = max(2, height // 40)
    _draw_number(rgb, index, width // 20, height // 2 - 2 * scale, scale)
    return draw_index(rgb, index % 2**BITS)


# -- the demo: objects that move, and the boxes that say where they are -----------------------
# Both come from the frame index alone, so the boxes in the demo's sidecar line up exactly with
# the pixels of the picture they belong to. Paths repeat every DEMO_PERIOD frames, so a
# DEMO_PERIOD-frame clip loops without a jump. Coordinates are even: I420 halves chroma, and an
# edge on an even pixel stays sharp after encoding.
DEMO_PERIOD = 300
DEMO_COLOURS = {"ball": (255, 0, 255), "block": (0, 255, 255)}


def _even(v: float) -> int:
    return int(round(v / 2)) * 2


def demo_objects(index: int, width: int, height: int) -> list[tuple[int, int, int, int, str]]:
    """``[(x, y, w, h, label), ...]`` of the demo objects in frame ``index`` (video pixels)."""
    t = 2 * np.pi * (index % DEMO_PERIOD) / DEMO_PERIOD
    band = _band(height)
    d = _even(height / 6)  # the ball's diameter
    # the ball: a Lissajous path in the upper 3/4, below the index band
    top, bottom = band + 4, _even(height * 0.72) - d
    bx = _even((width - d) / 2 + (width - d - 8) / 2 * np.sin(2 * t))
    by = _even((top + bottom) / 2 + (bottom - top) / 2 * np.sin(3 * t))
    # the block: back and forth along the bottom (a triangle wave), under the ball's path
    bw, bh = _even(width / 8), _even(height / 9)
    phase = (index % DEMO_PERIOD) / DEMO_PERIOD * 2
    frac = phase if phase <= 1 else 2 - phase
    kx = _even(4 + frac * (width - bw - 8))
    ky = _even(height - bh - height / 20)
    return [(bx, by, d, d, "ball"), (kx, ky, bw, bh, "block")]


def render_demo_frame(index: int, width: int, height: int) -> np.ndarray:
    """:func:`render_frame` plus the objects of :func:`demo_objects` drawn on top."""
    rgb = render_frame(index, width, height)
    for x, y, w, h, label in demo_objects(index, width, height):
        colour = DEMO_COLOURS[label]
        if label == "ball":  # a disc: its bounding box is still exactly (x, y, w, h)
            ys, xs = np.mgrid[0:h, 0:w]
            r = w / 2
            disc = (xs + 0.5 - r) ** 2 + (ys + 0.5 - r) ** 2 <= r * r
            rgb[y:y + h, x:x + w][disc] = colour
        else:
            rgb[y:y + h, x:x + w] = colour
    return rgb


def find_object(rgb: np.ndarray, label: str) -> tuple[int, int, int, int] | None:
    """Bounding box ``(x, y, w, h)`` of the demo object ``label`` in a decoded picture, found
    by its colour (None if not seen). Pixels half way between colours count as the object."""
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    if label == "ball":  # magenta: red and blue high, green low
        mask = (r > 160) & (b > 160) & (g < 100)
    else:  # cyan: green and blue high, red low
        mask = (g > 160) & (b > 160) & (r < 100)
    # a row or column counts when several of its pixels match (ignores stray coding noise)
    rows = np.flatnonzero(mask.sum(axis=1) >= 3)
    cols = np.flatnonzero(mask.sum(axis=0) >= 3)
    if not len(rows) or not len(cols):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
