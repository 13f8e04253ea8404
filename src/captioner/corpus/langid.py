"""The language of a short caption (a clip-art title): Debian's English word list first, then lingua restricted
to the candidate languages, answering only when it is confident, and 'und' (undetermined) otherwise.

bench/langid.py (retired; at commit c60f44a) measures it on Tux Paint's labelled texts (docs/data.md)."""

from __future__ import annotations

import re

from captioner.data.lexicon import english_words
from captioner.data.manifest import UNDETERMINED
from captioner.errors import CaptionerError

CANDIDATES = ("en", "it", "de", "fr", "es", "pt", "nl", "ru", "pl", "sv", "da", "fi", "cs", "hu", "ca", "el", "uk")
CANDIDATES += ("ja", "ko", "tr")
THRESHOLD = 0.5  # lingua's confidence needed to name a language (precision against coverage:
# the retired bench/langid.py, at commit c60f44a)
WORD = re.compile(r"[^\W\d_]+")  # a run of letters


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
