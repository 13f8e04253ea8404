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

from typing import Any

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


# German adjectives: the stem and its endings (rot, rote, roter, rotes, roten, rotem).
_DE_STEMS = {
    "rot": "red", "orange": "orange", "gelb": "yellow", "grün": "green", "blau": "blue", "lila": "purple",
    "violett": "purple", "rosa": "pink", "pink": "pink", "braun": "brown", "schwarz": "black", "weiß": "white",
    "weiss": "white", "grau": "grey",
}  # fmt: skip
DE_WORD_COLOURS: dict[str, frozenset[str]] = {
    **{stem + e: frozenset({c}) for stem, c in _DE_STEMS.items() for e in ("", "e", "er", "es", "en", "em")},
    **{w: WORD_COLOURS["gold"] for w in ("gold", "golden", "goldene", "goldener", "goldenes", "goldenen", "goldenem")},
    **{w: WORD_COLOURS["silver"] for w in ("silber", "silbern", "silberne", "silberner", "silbernes", "silbernen")},
}
# French and Spanish adjectives in each gender and number.
FR_WORD_COLOURS: dict[str, frozenset[str]] = {
    **{w: frozenset({c}) for c, forms in {
        "red": "rouge rouges", "orange": "orange oranges", "yellow": "jaune jaunes", "green": "vert verte verts vertes",
        "blue": "bleu bleue bleus bleues", "purple": "violet violette violets violettes pourpre pourpres",
        "pink": "rose roses", "brown": "marron marrons brun brune bruns brunes", "black": "noir noire noirs noires",
        "white": "blanc blanche blancs blanches", "grey": "gris grise grises"}.items() for w in forms.split()},
    **{w: WORD_COLOURS["gold"] for w in ("doré", "dorée", "dorés", "dorées")},
    **{w: WORD_COLOURS["silver"] for w in ("argenté", "argentée", "argentés", "argentées")},
}  # fmt: skip
ES_WORD_COLOURS: dict[str, frozenset[str]] = {
    **{w: frozenset({c}) for c, forms in {
        "red": "rojo roja rojos rojas", "orange": "naranja naranjas anaranjado anaranjada anaranjados anaranjadas",
        "yellow": "amarillo amarilla amarillos amarillas", "green": "verde verdes", "blue": "azul azules",
        "purple": "morado morada morados moradas violeta violetas", "pink": "rosa rosas rosado rosada rosados rosadas",
        "brown": "marrón marrones", "black": "negro negra negros negras", "white": "blanco blanca blancos blancas",
        "grey": "gris grises"}.items() for w in forms.split()},
    **{w: WORD_COLOURS["gold"] for w in ("dorado", "dorada", "dorados", "doradas")},
    **{w: WORD_COLOURS["silver"] for w in ("plateado", "plateada", "plateados", "plateadas")},
}  # fmt: skip


def colour_words(lang: str) -> dict[str, frozenset[str]]:
    """The colour words of a language (English, Russian, German, French, Spanish) and the colours each names; {}
    for others."""
    return {"en": WORD_COLOURS, "ru": RU_WORD_COLOURS, "de": DE_WORD_COLOURS, "fr": FR_WORD_COLOURS,
            "es": ES_WORD_COLOURS}.get(lang, {})  # fmt: skip


PRESENT = 0.05  # share of the pixels a colour needs to count as shown
CENTRE = 0.6  # decoding looks at the middle CENTRE x CENTRE of the encoder's square, where the subject is


# The rule above, every bound once: the page reads it from the policy (colour_settings), as decoding does.
RULE: dict[str, Any] = {
    "black": 0.22,  # v below: black
    "grey_s": 0.18,  # s below, or c below grey_c: no hue (white from v white, else grey)
    "grey_c": 0.08,
    "white": 0.80,
    "hues": [15, 45, 70, 165, 255, 290, 345],  # upper bounds of red, orange, yellow, green, blue, purple, pink
    "hue_names": ["red", "orange", "yellow", "green", "blue", "purple", "pink"],  # from 345: red again
    "dark_yellow": 0.55,  # yellow hue, v below: brown
    "dark_pink": 0.65,  # pink hue, v below: purple
    "light_red_v": 0.70,  # red or pink hue (h >= hues[5] or < hues[0]), v from and s below: pink
    "light_red_s": 0.55,
    "warm": [50, 345],  # warm hues: h below the first or from the second
    "dark_warm": 0.55,  # warm, v below: brown
    "dull_orange_s": 0.5,  # hue from hues[0] to warm[0], s below: brown
}


def pixel_colours(rgb: np.ndarray, rule: dict[str, Any] = RULE) -> np.ndarray:
    """(..., 3) RGB on 0..255 -> (...) index into COLOURS of each pixel's colour name (the rule above)."""
    x = np.asarray(rgb, dtype=np.float32) / 255.0
    mx, mn = x.max(-1), x.min(-1)
    c = mx - mn
    s = np.where(mx > 0, c / np.maximum(mx, 1e-6), 0.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    safe = np.maximum(c, 1e-6)
    h = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) * 60
    ix = {name: COLOURS.index(name) for name in COLOURS}
    bounds, red = rule["hues"], ix["red"]
    hue = np.select([h < bound for bound in bounds], [ix[n] for n in rule["hue_names"]], red)
    hue = np.where((hue == ix["yellow"]) & (mx < rule["dark_yellow"]), ix["brown"], hue)
    hue = np.where((hue == ix["pink"]) & (mx < rule["dark_pink"]), ix["purple"], hue)
    light_red = ((h >= bounds[5]) | (h < bounds[0])) & (mx >= rule["light_red_v"]) & (s < rule["light_red_s"])
    hue = np.where(light_red, ix["pink"], hue)
    warm = (h < rule["warm"][0]) | (h >= rule["warm"][1])
    brown = (warm & (mx < rule["dark_warm"])) | ((h >= bounds[0]) & (h < rule["warm"][0]) & (s < rule["dull_orange_s"]))
    hue = np.where(brown, ix["brown"], hue)
    grey = (s < rule["grey_s"]) | (c < rule["grey_c"])
    out = np.where(grey, np.where(mx >= rule["white"], ix["white"], ix["grey"]), hue)
    return np.where(mx < rule["black"], ix["black"], out).astype(np.int64)


def colour_shares(rgb: np.ndarray, mask: np.ndarray | None = None, rule: dict[str, Any] = RULE) -> np.ndarray:
    """(H, W, 3) RGB on 0..255, optional (H, W) bool mask of the object -> (len(COLOURS),) share of each colour."""
    names = pixel_colours(rgb, rule)
    names = names[mask] if mask is not None else names.reshape(-1)
    counts = np.bincount(names, minlength=len(COLOURS)).astype(np.float64)
    return counts / max(1.0, counts.sum())


def shown(shares: np.ndarray, present: float = PRESENT) -> frozenset[str]:
    """The colours whose share reaches `present`."""
    return frozenset(c for c, p in zip(COLOURS, shares, strict=True) if p >= present)


def colour_word_true(word: str, colours: frozenset[str]) -> bool:
    """Whether a colour word names one of the shown colours (any other word: True)."""
    return word not in WORD_COLOURS or bool(WORD_COLOURS[word] & colours)


def centre(rgb: np.ndarray, share: float = CENTRE) -> np.ndarray:
    """(..., S, S, 3) -> its middle `share` x `share` square."""
    s = rgb.shape[-2]
    a = int(round(s * (1 - share) / 2))
    return rgb[..., a : s - a, a : s - a, :]


def colour_settings() -> dict[str, Any]:
    """The colour rule as the caption policy carries it: the colour names, the share a colour needs, the centre
    decoding looks at, and the pixel rule's bounds."""
    return {"names": list(COLOURS), "present": PRESENT, "centre": CENTRE, "rule": RULE}
