"""Colour words read off the pixels, so that a caption says only colours the image shows.

The rule that names one pixel (r, g, b on 0..255), from v = max/255, chroma c = (max - min)/255, s = c / v and
the hue h in degrees (0 red, 120 green, 240 blue):
  1. v < 0.22: black.
  2. s < 0.18 or c < 0.08 (no hue to speak of): white when v >= 0.80, else grey.
  3. warm hues (h < 50 or h >= 345) with v < 0.55, or orange hues (15 <= h < 50) with s < 0.5: brown.
  4. h >= 290 or h < 15, light (v >= 0.70, s < 0.55): pink; 290 <= h < 345: pink when v >= 0.65, else purple.
  5. by hue: red below 15 and from 345, orange to 45, yellow to 70 (brown when v < 0.55), green to 165, blue to
     255, purple to 290.
An image (or a masked object) shows a colour when at least PRESENT of its pixels are named so. A colour word is
true when one of the colours it names (WORD_COLOURS: "gold" is yellow, orange or brown) is shown."""

from __future__ import annotations

import numpy as np

COLOURS = ("black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown")
WORD_COLOURS: dict[str, frozenset[str]] = {
    **{c: frozenset({c}) for c in COLOURS},
    "gray": frozenset({"grey"}),
    "gold": frozenset({"yellow", "orange", "brown"}),
    "golden": frozenset({"yellow", "orange", "brown"}),
    "silver": frozenset({"grey", "white"}),
    "beige": frozenset({"brown", "white", "orange", "yellow"}),
    "tan": frozenset({"brown", "orange"}),
    "navy": frozenset({"blue"}),
    "violet": frozenset({"purple"}),
    "scarlet": frozenset({"red"}),
    "crimson": frozenset({"red"}),
}
# Russian colour adjectives by stem, in every case, number and gender (hard and soft declensions): "красн" gives
# красный, красная, красного, ... but never a noun such as белка (squirrel) or сердце.
_RU_HARD = ("ый", "ая", "ое", "ые", "ого", "ому", "ой", "ую", "ым", "ых", "ыми", "ом")
_RU_SOFT = ("ий", "яя", "ее", "ие", "его", "ему", "ей", "юю", "им", "их", "ими", "ем")
_RU_STEMS = {
    "красн": "red", "оранжев": "orange", "жёлт": "yellow", "желт": "yellow", "зелён": "green", "зелен": "green",
    "голуб": "blue", "фиолетов": "purple", "пурпурн": "purple", "розов": "pink", "коричнев": "brown",
    "чёрн": "black", "черн": "black", "бел": "white", "сер": "grey",
}  # fmt: skip
RU_WORD_COLOURS: dict[str, frozenset[str]] = {
    **{stem + e: frozenset({c}) for stem, c in _RU_STEMS.items() for e in _RU_HARD},
    **{"син" + e: frozenset({"blue"}) for e in _RU_SOFT},
    **{"золот" + e: WORD_COLOURS["gold"] for e in _RU_HARD},
    **{"серебрян" + e: WORD_COLOURS["silver"] for e in _RU_HARD},
}


def colour_words(lang: str) -> dict[str, frozenset[str]]:
    """The colour words of a language (English and Russian) and the colours each names; {} for others."""
    return {"en": WORD_COLOURS, "ru": RU_WORD_COLOURS}.get(lang, {})


PRESENT = 0.05  # share of the pixels a colour needs to count as shown
CENTRE = 0.6  # decoding looks at the middle CENTRE x CENTRE of the encoder's square, where the subject is


def pixel_colours(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB on 0..255 -> (...) index into COLOURS of each pixel's colour name (the rule above)."""
    x = np.asarray(rgb, dtype=np.float32) / 255.0
    mx, mn = x.max(-1), x.min(-1)
    c = mx - mn
    s = np.where(mx > 0, c / np.maximum(mx, 1e-6), 0.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    safe = np.maximum(c, 1e-6)
    h = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) * 60
    hue = np.select(
        [h < 15, h < 45, h < 70, h < 165, h < 255, h < 290, h < 345],
        [3, 4, 5, 6, 7, 8, 9],
        3,
    )
    hue = np.where((hue == 5) & (mx < 0.55), 10, hue)  # dark yellow: brown
    hue = np.where((hue == 9) & (mx < 0.65), 8, hue)  # dark magenta: purple
    light_red = ((h >= 290) | (h < 15)) & (mx >= 0.70) & (s < 0.55)
    hue = np.where(light_red, 9, hue)
    warm = (h < 50) | (h >= 345)
    brown = (warm & (mx < 0.55)) | ((h >= 15) & (h < 50) & (s < 0.5))
    hue = np.where(brown, 10, hue)
    grey = (s < 0.18) | (c < 0.08)
    out = np.where(grey, np.where(mx >= 0.80, 1, 2), hue)
    return np.where(mx < 0.22, 0, out).astype(np.int64)


def colour_shares(rgb: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) RGB on 0..255, optional (H, W) bool mask of the object -> (len(COLOURS),) share of each colour."""
    names = pixel_colours(rgb)
    names = names[mask] if mask is not None else names.reshape(-1)
    counts = np.bincount(names, minlength=len(COLOURS)).astype(np.float64)
    return counts / max(1.0, counts.sum())


def shown(shares: np.ndarray) -> frozenset[str]:
    """The colours whose share reaches PRESENT."""
    return frozenset(c for c, p in zip(COLOURS, shares, strict=True) if p >= PRESENT)


def colour_word_true(word: str, colours: frozenset[str]) -> bool:
    """Whether a colour word names one of the shown colours (any other word: True)."""
    return word not in WORD_COLOURS or bool(WORD_COLOURS[word] & colours)


def centre(rgb: np.ndarray) -> np.ndarray:
    """(..., S, S, 3) -> its middle CENTRE x CENTRE square."""
    s = rgb.shape[-2]
    a = int(round(s * (1 - CENTRE) / 2))
    return rgb[..., a : s - a, a : s - a, :]


def colour_table(itos: tuple[str, ...] | list[str]) -> dict:
    """The rule's settings and the vocabulary's colour words in every language that has them (English and
    Russian spell none alike), as the browser page reads them (export manifest)."""
    return {
        "names": list(COLOURS),
        "present": PRESENT,
        "centre": CENTRE,
        "words": {w: sorted(t[w]) for t in (WORD_COLOURS, RU_WORD_COLOURS) for w in itos if w in t},
    }
