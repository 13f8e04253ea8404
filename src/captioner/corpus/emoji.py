"""Emoji in three free styles, each image named by Unicode CLDR in every language asked for.

- npm openmoji: color/svg/HEX.svg, `annotation` in data/openmoji.json (CC-BY-SA-4.0).
- npm @twemoji/svg: HEX.svg, jdecked's Twemoji graphics (CC-BY-4.0; the package's MIT covers its packaging).
- npm emoji-datasource-google: img/google/64/HEX.png, Google's Noto emoji (Apache-2.0, per the package README).
- npm cldr-annotations-full: annotations/<lang>/annotations.json, the short name (`tts`) of each single-character
  emoji in ~100 languages (Unicode-3.0). The same emoji gets the same name in every style.

An emoji's key is its code points in lowercase hex joined by '-', without the FE0F variation selector, so the
three packages' file names meet. Skin-tone variants are left out: their names add nothing the image shows.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

from captioner.corpus.rawitem import Raw, require
from captioner.errors import CaptionerError

OPENMOJI = Path("node_modules/openmoji")
TWEMOJI = Path("node_modules/@twemoji/svg")
NOTO = Path("node_modules/emoji-datasource-google")
CLDR = Path("node_modules/cldr-annotations-full")
STYLE_LICENSE = {"openmoji": "CC-BY-SA-4.0", "twemoji": "CC-BY-4.0", "noto": "Apache-2.0"}
SKIN_TONES = {"1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"}

Names = dict[str, dict[str, str]]  # emoji key -> {language: name}


def emoji_key(hexcode: str) -> str:
    """'1F3F3-FE0F-200D-1F308' -> '1f3f3-200d-1f308'."""
    return "-".join(p for p in hexcode.lower().replace("_", "-").split("-") if p and p != "fe0f")


def _char_key(text: str) -> str:
    return "-".join(f"{ord(c):x}" for c in text if c != "\ufe0f")


def package_files(path: Path, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """The files of an npm package (a `npm pack` .tgz or an unpacked folder) whose package-relative names pass
    `wanted`, read in one pass (random access into a .tgz is slow)."""
    out: dict[str, bytes] = {}
    if path.is_file():
        with tarfile.open(path) as tar:
            for m in tar:
                name = m.name.removeprefix("package/")
                if m.isfile() and wanted(name):
                    out[name] = tar.extractfile(m).read()  # type: ignore[union-attr]
    else:
        for p in sorted(path.rglob("*")):
            name = p.relative_to(path).as_posix()
            if p.is_file() and wanted(name):
                out[name] = p.read_bytes()
    return out


def cldr_names(path: Path, langs: tuple[str, ...]) -> Names:
    """CLDR's short name of every single-character emoji, per language in `langs` that CLDR has."""
    hint = "npm pack cldr-annotations-full  (then pass --cldr cldr-annotations-full-<version>.tgz)"
    require(path, "cldr", hint, "leave out the emoji styles with --sources (CLDR names the emoji styles)")
    files = package_files(path, lambda n: n in {f"annotations/{lang}/annotations.json" for lang in langs})
    if not files:
        raise CaptionerError(f"cldr: {path} holds annotations for none of {', '.join(langs)}")
    names: Names = {}
    for name, data in files.items():
        lang = name.split("/")[1]
        try:
            table = json.loads(data)["annotations"]["annotations"]
        except (ValueError, KeyError, TypeError):
            raise CaptionerError(f"cldr: {path}: {name} is not CLDR's annotations JSON") from None
        for text, entry in table.items():
            if entry.get("tts"):
                names.setdefault(_char_key(text), {})[lang] = entry["tts"][0]
    return names


def _raw(style: str, key: str, names: dict[str, str], english: str, data: bytes, kind: str) -> Raw | None:
    """One style's image of one emoji, captioned in English first, then in every other language named."""
    en = names.get("en") or english
    if not en or set(key.split("-")) & SKIN_TONES:
        return None
    more = tuple(sorted((lang, n) for lang, n in names.items() if lang != "en"))
    return Raw(f"images/{style}/{key}.png", style, STYLE_LICENSE[style], en, data=data, kind=kind, more=more, group=key)


def openmoji(path: Path = OPENMOJI, names: Names | None = None) -> Iterator[Raw]:
    """OpenMoji's colour SVGs; named by CLDR where it names the emoji, else by OpenMoji's English annotation."""
    require(path, "openmoji", "npm pack openmoji  (then pass --openmoji openmoji-<version>.tgz)")
    files = package_files(path, lambda n: n == "data/openmoji.json" or n.startswith("color/svg/"))
    if "data/openmoji.json" not in files:
        raise CaptionerError(f"openmoji: data/openmoji.json missing from {path}")
    for e in json.loads(files["data/openmoji.json"]):
        svg = files.get(f"color/svg/{e['hexcode']}.svg")
        if svg and not e.get("skintone"):
            key = emoji_key(e["hexcode"])
            raw = _raw("openmoji", key, (names or {}).get(key, {}), e.get("annotation", ""), svg, "svg")
            if raw:
                yield raw


def twemoji(path: Path = TWEMOJI, names: Names | None = None) -> Iterator[Raw]:
    """Twemoji SVGs of the emoji CLDR names."""
    require(path, "twemoji", "npm pack @twemoji/svg  (then pass --twemoji twemoji-svg-<version>.tgz)")
    files = package_files(path, lambda n: n.endswith(".svg"))
    for name, svg in sorted(files.items()):
        key = emoji_key(name.removesuffix(".svg"))
        if key in (names or {}):
            raw = _raw("twemoji", key, names[key], "", svg, "svg")  # type: ignore[index]
            if raw:
                yield raw


def noto(path: Path = NOTO, names: Names | None = None) -> Iterator[Raw]:
    """Google's Noto emoji (64-pixel PNGs of emoji-datasource-google) of the emoji CLDR names."""
    hint = "npm pack emoji-datasource-google  (then pass --noto emoji-datasource-google-<version>.tgz)"
    require(path, "noto", hint)
    files = package_files(path, lambda n: n == "emoji.json" or n.startswith("img/google/64/"))
    if "emoji.json" not in files:
        raise CaptionerError(f"noto: emoji.json missing from {path}")
    for e in json.loads(files["emoji.json"]):
        png = files.get(f"img/google/64/{e.get('image', '')}")
        key = emoji_key(e.get("unified", ""))
        if png and e.get("has_img_google") and key in (names or {}):
            raw = _raw("noto", key, names[key], "", png, "raster")  # type: ignore[index]
            if raw:
                yield raw


STYLES = {"openmoji": openmoji, "twemoji": twemoji, "noto": noto}
DEFAULT_PATH = {"openmoji": OPENMOJI, "twemoji": TWEMOJI, "noto": NOTO}
