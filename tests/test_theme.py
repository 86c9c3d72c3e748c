"""The palettes keep text readable: WCAG AA contrast (4.5:1) for every text role, both themes."""

from __future__ import annotations

import itertools

import pytest

from app.gui.theme import DARK, LIGHT, Palette, contrast, luminance

AA = 4.5

# (text role, background role) pairs the window really draws.
PAIRS = [
    ("text", "surface"),
    ("text", "background"),
    ("text", "mine_fill"),
    ("text", "select"),
    ("muted", "surface"),
    ("muted", "background"),
    ("muted", "mine_fill"),
    ("error", "surface"),
    ("error", "background"),
    ("error", "error_fill"),
    ("link", "surface"),
    ("link", "mine_fill"),
    ("on_accent", "accent"),
    ("on_accent", "accent_hover"),
    ("on_accent", "accent_pressed"),
    ("text", "card"),
    ("muted", "card"),
    ("text", "button_hover"),
    ("text", "button_pressed"),
]


def test_contrast_matches_the_wcag_definition() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert luminance("#ffffff") == pytest.approx(1.0)


@pytest.mark.parametrize("palette", [LIGHT, DARK], ids=["light", "dark"])
@pytest.mark.parametrize(("fg", "bg"), PAIRS)
def test_text_roles_keep_aa_contrast(palette: Palette, fg: str, bg: str) -> None:
    ratio = contrast(getattr(palette, fg), getattr(palette, bg))
    assert ratio >= AA, f"{fg} on {bg}: {ratio:.2f}"


@pytest.mark.parametrize("palette", [LIGHT, DARK], ids=["light", "dark"])
def test_name_colours_are_readable_where_names_are_drawn(palette: Palette) -> None:
    for colour, bg in itertools.product(palette.names, ("surface", "mine_fill")):
        ratio = contrast(colour, getattr(palette, bg))
        assert ratio >= AA, f"{colour} on {bg}: {ratio:.2f}"


@pytest.mark.parametrize("palette", [LIGHT, DARK], ids=["light", "dark"])
def test_name_colours_are_distinct(palette: Palette) -> None:
    assert len(set(palette.names)) == len(palette.names) >= 8
    assert len(palette.names) == len(LIGHT.names) == len(DARK.names)


def test_dark_is_dark_and_light_is_light() -> None:
    assert luminance(DARK.surface) < 0.05 < luminance(DARK.text)
    assert luminance(LIGHT.surface) > 0.9 > luminance(LIGHT.text)
