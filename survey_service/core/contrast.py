"""WCAG 2.1 colour contrast: relative luminance, contrast ratio, and the readable ink for a brand colour."""

from __future__ import annotations

# Black, not a softer near-black: only black or white reach 4.5:1 on every colour (a mid-tone's best is 4.58).
DARK_INK, LIGHT_INK = "#000000", "#ffffff"


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def luminance(color: str) -> float:
    """The relative luminance of a #rrggbb (or #rgb) colour, 0 (black) to 1 (white)."""
    hex_ = color.lstrip("#")
    if len(hex_) == 3:
        hex_ = "".join(c * 2 for c in hex_)
    r, g, b = (_channel(int(hex_[i : i + 2], 16)) for i in (0, 2, 4))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(one: str, other: str) -> float:
    """The WCAG contrast ratio of two colours, 1 to 21 (text needs 4.5, large text and focus rings 3)."""
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def ink_on(background: str) -> str:
    """The text colour (black or white) that reads best on a background (a project's brand colour)."""
    if contrast_ratio(DARK_INK, background) >= contrast_ratio(LIGHT_INK, background):
        return DARK_INK
    return LIGHT_INK
