"""Screenshots as arrays, for tests that count pixels: a Python loop over `QImage.pixelColor` took
20-40 s for one 1200 x 900 screenshot on the test machine; numpy counts the same pixels at once.
And one pixel's colour against another, as WCAG measures contrast."""

from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QColor, QImage


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


def near_colour(c: QColor, colour: str, within: int = 40) -> bool:
    """One pixel within `within` of `colour` ("#rrggbb"), as `near` counts them."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return abs(c.red() - r) + abs(c.green() - g) + abs(c.blue() - b) < within


def luminance(c: QColor) -> float:
    """WCAG 2's relative luminance (sRGB)."""
    def channel(v: int) -> float:
        s = v / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.red()) + 0.7152 * channel(c.green()) + 0.0722 * channel(c.blue())


def contrast(a: QColor, b: QColor) -> float:
    """WCAG 2's contrast ratio of two colours (1 to 21)."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
