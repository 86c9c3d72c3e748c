"""Draw Parley's icon once, then derive every size and format the platforms want from it.

One source image (`icon-source.png`, 1024 px) is the only drawing; everything else is resized
from it, so the window, the Windows .exe and the macOS bundle always show the same picture:

- `icon-16.png` … `icon-256.png`: for Tk's `iconphoto` (the window and the Linux task bar);
- `parley.ico`: the Windows executable (16–256 px inside);
- `parley.icns`: the macOS app bundle (16–1024 px inside).

Run `python assets/make_icons.py` to redraw the source and regenerate the rest, or
`python assets/make_icons.py --derive-only` after editing `icon-source.png` by hand.
Needs Pillow (the `build` extra); the outputs are committed, so building the app does not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "icon-source.png"
PNG_SIZES = (16, 32, 48, 64, 128, 256)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
SUPERSAMPLE = 4  # draw large and shrink: Pillow's shapes have no anti-aliasing of their own

TOP = (56, 132, 224)  # background gradient, top to bottom: a calm blue
BOTTOM = (30, 78, 170)
BUBBLE = (255, 255, 255)
BACK_BUBBLE = (160, 200, 245)  # the other voice in the conversation, half-hidden
DOTS = (30, 78, 170)


def _gradient(size: int) -> Image.Image:
    """A vertical gradient, built as one column and stretched (fast at any size)."""
    column = Image.new("RGB", (1, size))
    for y in range(size):
        t = y / (size - 1)
        column.putpixel(
            (0, y), tuple(round(a + (b - a) * t) for a, b in zip(TOP, BOTTOM, strict=True))
        )
    return column.resize((size, size), Image.Resampling.NEAREST)


def _bubble(
    draw: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    tail: list[tuple[float, float]],
    fill: tuple[int, int, int],
) -> None:
    """A rounded speech bubble with a tail: the glyph people read as "chat" at any size."""
    height = box[3] - box[1]
    draw.rounded_rectangle(box, radius=height * 0.42, fill=fill)
    draw.polygon(tail, fill=fill)


def draw_source(size: int = 1024) -> Image.Image:
    """The one drawing: a rounded tile, a pale bubble behind, a white bubble with three dots."""
    big = size * SUPERSAMPLE
    u = big / 100  # work in percent of the tile, so the drawing scales with `size`

    tile_mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(tile_mask).rounded_rectangle(
        (4 * u, 4 * u, 96 * u, 96 * u), radius=22 * u, fill=255
    )
    art = _gradient(big).convert("RGBA")
    draw = ImageDraw.Draw(art)

    _bubble(
        draw,
        (38 * u, 20 * u, 84 * u, 54 * u),
        [(66 * u, 50 * u), (80 * u, 50 * u), (82 * u, 64 * u)],
        BACK_BUBBLE,
    )
    _bubble(
        draw,
        (14 * u, 34 * u, 70 * u, 76 * u),
        [(22 * u, 70 * u), (38 * u, 70 * u), (17 * u, 86 * u)],
        BUBBLE,
    )
    r = 4.6 * u
    for cx in (28 * u, 42 * u, 56 * u):
        cy = 55 * u
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=DOTS)

    icon = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    icon.paste(art, (0, 0), tile_mask)
    return icon.resize((size, size), Image.Resampling.LANCZOS)


def derive(source: Image.Image) -> None:
    """Every size and format from the one source, so they can never drift apart."""
    source = source.convert("RGBA")
    sized = {n: source.resize((n, n), Image.Resampling.LANCZOS) for n in set(PNG_SIZES + ICO_SIZES)}
    for n in PNG_SIZES:
        sized[n].save(HERE / f"icon-{n}.png", optimize=True)
    largest = sized[max(ICO_SIZES)]
    largest.save(
        HERE / "parley.ico",
        sizes=[(n, n) for n in ICO_SIZES],
        append_images=[sized[n] for n in ICO_SIZES if n != max(ICO_SIZES)],
    )
    source.save(HERE / "parley.icns")  # Pillow writes the 16…1024 px set from the 1024 px source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--derive-only", action="store_true", help="keep icon-source.png; only regenerate the rest"
    )
    args = parser.parse_args()
    if not args.derive_only:
        draw_source().save(SOURCE, optimize=True)
    derive(Image.open(SOURCE))


if __name__ == "__main__":
    main()
