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
