"""Screenshots as arrays, for tests that count pixels: a Python loop over `QImage.pixelColor` took
20-40 s for one 1200 x 900 screenshot on the test machine; numpy counts the same pixels at once."""

from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QImage


def rgb(image: QImage) -> np.ndarray:
    """The image's pixels as a (height, width, 3) array of 0-255 red, green and blue (what
    `pixelColor(x, y).red()`, `.green()` and `.blue()` give for an opaque image)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    bits = image.constBits()
    assert bits is not None, "an empty image"
    bits.setsize(image.sizeInBytes())
    rows = np.frombuffer(bits, np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def near(pixels: np.ndarray, colour: str, within: int = 40) -> np.ndarray:
    """Where the pixels are within `within` of `colour` ("#rrggbb"), the red, green and blue
    differences added: a mask of the pixels' shape without the channels."""
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return np.abs(pixels.astype(np.int32) - target).sum(axis=-1) < within
