"""The language of a short caption (a clip-art title): Debian's English word list first, then lingua restricted
to the candidate languages, answering only when it is confident, and 'und' (undetermined) otherwise.

bench/langid.py measures it on Tux Paint's labelled texts (docs/data.md)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from ..errors import CaptionerError
from .manifest import UNDETERMINED

WORDS = Path("/usr/share/dict/words")  # Debian's wamerican
CANDIDATES = ("en", "it", "de", "fr", "es", "pt", "nl", "ru", "pl", "sv", "da", "fi", "cs", "hu", "ca", "el", "uk")
CANDIDATES += ("ja", "ko", "tr")
THRESHOLD = 0.5  # lingua's confidence needed to name a language (bench/langid.py: precision against coverage)
WORD = re.compile(r"[^\W\d_]+")  # a run of letters


@cache
def english_words(path: Path = WORDS) -> frozenset[str]:
    """The lower-case entries of the English word list (no proper names)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    except FileNotFoundError:
        raise CaptionerError(f"{path}: English word list not found (apt-get install wamerican)") from None
    return frozenset(w for w in lines if w.isalpha() and w.islower())


@cache
def known_words(path: Path = WORDS) -> frozenset[str]:
    """Every alphabetic entry of the English word list, lower-cased: proper names ('finland') included."""
    return frozenset(w.lower() for w in path.read_text(encoding="utf-8", errors="replace").split("\n") if w.isalpha())


class LanguageTagger:
    """Call with a short text; returns a BCP-47 tag from `candidates`, or 'und'."""

    def __init__(self, candidates: tuple[str, ...] = CANDIDATES, threshold: float = THRESHOLD) -> None:
        try:
            from lingua import IsoCode639_1, LanguageDetectorBuilder
        except ImportError:
            raise CaptionerError("identifying languages needs lingua: pip install -e '.[corpus]'") from None
        self.english, self.threshold = english_words(), threshold
        codes = [getattr(IsoCode639_1, c.upper()) for c in candidates]
        self.detector = LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()

    def __call__(self, text: str) -> str:
        words = WORD.findall(text.lower())
        if not words:
            return UNDETERMINED
        if all(w in self.english for w in words):  # every word is English: short titles fool the statistics
            return "en"
        best = self.detector.compute_language_confidence_values(text)[0]
        return best.language.iso_code_639_1.name.lower() if best.value >= self.threshold else UNDETERMINED
