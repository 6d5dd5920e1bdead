"""A latency histogram as a PNG, with the standard library only (zlib + struct).

matplotlib would add about 100 MB and ten packages to draw one bar chart, so the report draws its own:
an RGB canvas, filled rectangles, and a 5×7 pixel font for the labels (upper case, digits, a little
punctuation; anything else prints as '?').
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
GREY: Color = (200, 200, 200)
BAR: Color = (66, 114, 196)
P50: Color = (34, 139, 34)
P95: Color = (214, 39, 40)

_GLYPHS: dict[str, tuple[str, ...]] = {
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    "A": (".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "B": ("####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."),
    "C": (".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."),
    "D": ("###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."),
    "E": ("#####", "#....", "#....", "####.", "#....", "#....", "#####"),
    "F": ("#####", "#....", "#....", "####.", "#....", "#....", "#...."),
    "G": (".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"),
    "H": ("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "I": (".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "J": ("..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."),
    "K": ("#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "M": ("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
    "N": ("#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "P": ("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
    "Q": (".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "S": (".####", "#....", "#....", ".###.", "....#", "....#", "####."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "V": ("#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."),
    "W": ("#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."),
    "X": ("#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"),
    "Y": ("#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."),
    "Z": ("#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"),
    " ": (".....",) * 7,
    ".": (".....", ".....", ".....", ".....", ".....", ".##..", ".##.."),
    ",": (".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."),
    "-": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    ":": (".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."),
    "%": ("##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"),
    "(": ("...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."),
    ")": (".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."),
    "/": (".....", "....#", "...#.", "..#..", ".#...", "#....", "....."),
    "=": (".....", ".....", "#####", ".....", "#####", ".....", "....."),
    "<": ("...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."),
    ">": (".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."),
    "+": (".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."),
    "_": (".....", ".....", ".....", ".....", ".....", ".....", "#####"),
    "?": (".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."),
}
GLYPH_W, GLYPH_H, GLYPH_GAP = 5, 7, 1


class Canvas:
    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill [x0, x1) × [y0, y1), clipped to the canvas."""
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        if x0 >= x1:
            return
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> None:
        for i, char in enumerate(text.upper()):
            glyph = _GLYPHS.get(char, _GLYPHS["?"])
            left = x + i * (GLYPH_W + GLYPH_GAP) * scale
            for gy, line in enumerate(glyph):
                for gx, bit in enumerate(line):
                    if bit == "#":
                        self.rect(left + gx * scale, y + gy * scale, left + (gx + 1) * scale,
                                  y + (gy + 1) * scale, color)

    def save(self, path: Path) -> None:
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * stride : (y + 1) * stride]) for y in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        path.write_bytes(
            b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b"")
        )


def text_width(text: str, scale: int = 2) -> int:
    return len(text) * (GLYPH_W + GLYPH_GAP) * scale - GLYPH_GAP * scale


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def format_ms(value: float) -> str:
    if value >= 100_000:
        return f"{value / 1000:.0f}K"
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}"


def nice_step(peak: float, ticks: int = 4) -> float:
    """The smallest whole 1, 2 or 5 × 10^k that covers `peak` in at most `ticks` steps (counts are whole)."""
    raw = max(peak, 1) / ticks
    if raw <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def histogram_png(
    path: Path,
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    title: str,
    markers: Sequence[tuple[str, float, Color]] = (),
    width: int = 900,
    height: int = 500,
) -> None:
    """Bars for `counts` between `edges`, with labelled vertical marker lines (p50, p95)."""
    canvas = Canvas(width, height)
    left, right, top, bottom = 90, 30, 70, 80
    plot_w, plot_h = width - left - right, height - top - bottom
    x_of = _scale(edges[0], edges[-1], left, left + plot_w)
    step = nice_step(max(counts))
    ticks = max(1, math.ceil(max(counts) / step))
    peak = step * ticks

    canvas.text(left, 18, title, scale=2)
    for i in range(ticks + 1):  # horizontal grid lines, each labelled with its count
        y = top + plot_h - round(plot_h * i / ticks)
        canvas.rect(left, y, left + plot_w, y + 1, GREY)
        label = f"{step * i:g}"
        canvas.text(left - 10 - text_width(label), y - 7, label)
    for i, count in enumerate(counts):
        x0, x1 = round(x_of(edges[i])), round(x_of(edges[i + 1]))
        bar_h = round(plot_h * count / peak)
        canvas.rect(x0 + 1, top + plot_h - bar_h, max(x0 + 2, x1 - 1), top + plot_h, BAR)
    canvas.rect(left, top, left + 2, top + plot_h + 1, BLACK)
    canvas.rect(left, top + plot_h, left + plot_w, top + plot_h + 2, BLACK)
    _x_ticks(canvas, edges, x_of, top + plot_h, plot_w)
    canvas.text(left + plot_w // 2 - text_width("LATENCY (MS)") // 2, height - 28, "LATENCY (MS)")
    canvas.text(8, top - 30, "ASKS", scale=2)
    for n, (label, value, color) in enumerate(markers):
        x = round(x_of(min(max(value, edges[0]), edges[-1])))
        for y in range(top, top + plot_h, 8):  # dashed
            canvas.rect(x - 1, y, x + 1, y + 5, color)
        text = f"{label} {format_ms(value)} MS"
        tx = min(max(x + 6, left), width - right - text_width(text))
        ty = top + 6 + n * 22
        canvas.rect(tx - 3, ty - 3, tx + text_width(text) + 3, ty + GLYPH_H * 2 + 3, WHITE)  # legible on bars
        canvas.text(tx, ty, text, color=color)
    canvas.save(path)


def _x_ticks(
    canvas: Canvas, edges: Sequence[float], x_of: Callable[[float], float], axis_y: int, plot_w: int
) -> None:
    labels = [format_ms(e) for e in edges]
    widest = max(text_width(label) for label in labels) + 16
    step = max(1, -(-widest * (len(edges) - 1) // plot_w))  # ceil: labels never overlap
    for i in range(0, len(edges), step):
        x = round(x_of(edges[i]))
        canvas.rect(x, axis_y, x + 2, axis_y + 8, BLACK)
        canvas.text(x - text_width(labels[i]) // 2, axis_y + 14, labels[i])


def _scale(lo: float, hi: float, out_lo: int, out_hi: int) -> Callable[[float], float]:
    span = (hi - lo) or 1.0

    def x_of(value: float) -> float:
        return out_lo + (value - lo) / span * (out_hi - out_lo)

    return x_of
