"""A corpus item before rendering, shared by the open corpus's gatherers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from captioner.errors import CaptionerError

SOURCES = ("tuxpaint", "openclipart", "openmoji", "twemoji", "noto")
LANGS = ("en", "ru", "de", "fr", "es")  # the default caption languages: Tux Paint and CLDR have all of them


@dataclass(frozen=True)
class Raw:
    """A source item before rendering: where its image bytes come from and its captions."""

    key: str  # output image path, relative to the corpus root
    source: str
    license: str
    caption: str  # the caption the cleaning rules read (English, or an OpenClipart title)
    path: str = ""  # file to read, or
    data: bytes = b""  # the bytes themselves (members of an npm tarball)
    kind: str = "svg"  # "svg" or "raster"
    lang: str | None = "en"  # the caption's language; None: identify it (OpenClipart titles)
    more: tuple[tuple[str, str], ...] = ()  # (language, caption): the same caption in other languages
    group: str = ""  # a concept several images show (one emoji in each style): they go to one split


def require(path: Path, name: str, install: str, leave: str = "leave it out with --sources") -> None:
    """An error naming the install step when a source's package is not at `path`."""
    if not path.exists():
        raise CaptionerError(f"{name}: {path} not found; install it with `{install}`, or {leave}")
