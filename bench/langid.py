"""Which offline language identifier tags short captions right: py3langid or lingua, measured on Tux Paint.

    python bench/langid.py [--per-language 300]

Every Tux Paint stamp's .txt has its caption in English (line 1) and in up to 60+ other languages
(`ru.utf8=...`), so it is a labelled set of short, title-like texts in many languages. For 20 languages
(those of the CLDR emoji names and OpenClipart titles that matter most), up to --per-language texts each are
identified: whole lines and their first three words (as short as most OpenClipart titles), with each
identifier free to answer any language it knows, restricted to the 20, and (lingua) answering only when its
confidence reaches 0.7. Prints accuracy (and, where 'und' is allowed, precision and the share left 'und').
The last rows are captioner's own tagger (data/langid.py: Debian's English word list, then lingua restricted
to the 20 at a confidence threshold) at three thresholds.
Needs `pip install py3langid lingua-language-detector`, Debian's tuxpaint-stamps-default and wamerican."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

STAMPS = Path("/usr/share/tuxpaint/stamps")
LANGS = ["en", "it", "de", "fr", "es", "pt", "nl", "ru", "pl", "sv", "da", "fi", "cs", "hu", "ca", "el", "uk", "ja"]
LANGS += ["ko", "tr"]


def labelled_texts() -> dict[str, list[str]]:
    """Language -> the stamps' texts in it (English from line 1, the others from their `xx.utf8=` lines)."""
    texts: dict[str, list[str]] = {lang: [] for lang in LANGS}
    for f in sorted(STAMPS.rglob("*.txt")):
        lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
        if lines and lines[0].strip():
            texts["en"].append(lines[0].strip())
        for line in lines[1:]:
            m = re.match(r"([a-zA-Z_@]+)\.utf8=(.*)", line)
            if m and m.group(1) in texts and m.group(2).strip():
                texts[m.group(1)].append(m.group(2).strip())
    return texts


def score(name: str, ident: Callable[[str], str], texts: dict[str, list[str]], n: int) -> None:
    for variant, cut in (("line", lambda s: s), ("first 3 words", lambda s: " ".join(s.split()[:3]))):
        right = total = und = 0
        per = {}
        for lang, xs in texts.items():
            preds = [ident(cut(x)) for x in xs[:n]]
            per[lang] = sum(p == lang for p in preds) / max(1, len(preds))
            right, total, und = right + sum(p == lang for p in preds), total + len(preds), und + preds.count("und")
        extra = f"  precision {right / max(1, total - und):.3f}  und {und / total:.2f}" if und else ""
        shown = " ".join(f"{k} {per[k]:.2f}" for k in ("en", "it", "ru", "de", "fr"))
        print(f"{name:34s} {variant:14s} accuracy {right / total:.3f}{extra}  ({shown})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-language", type=int, default=300)
    a = ap.parse_args()
    import py3langid
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    texts = labelled_texts()
    print("texts per language:", {k: min(len(v), a.per_language) for k, v in texts.items()})
    code = lambda lang: lang.iso_code_639_1.name.lower() if lang else "und"  # noqa: E731
    every = LanguageDetectorBuilder.from_all_languages().build()
    score("py3langid, any language", lambda s: py3langid.classify(s)[0], texts, a.per_language)
    score("lingua, any language", lambda s: code(every.detect_language_of(s)), texts, a.per_language)
    py3langid.set_languages(LANGS)
    some = LanguageDetectorBuilder.from_iso_codes_639_1(*(getattr(IsoCode639_1, c.upper()) for c in LANGS)).build()
    score("py3langid, the 20", lambda s: py3langid.classify(s)[0], texts, a.per_language)
    score("lingua, the 20", lambda s: code(some.detect_language_of(s)), texts, a.per_language)

    def confident(s: str) -> str:
        best = some.compute_language_confidence_values(s)[0]
        return code(best.language) if best.value >= 0.7 else "und"

    score("lingua, the 20, confidence >= 0.7", confident, texts, a.per_language)
    from captioner.corpus.langid import LanguageTagger

    for threshold in (0.3, 0.5, 0.7):  # what the corpus build uses: the English word list, then lingua
        tagger = LanguageTagger(threshold=threshold)
        score(f"word list + lingua >= {threshold}", tagger, texts, a.per_language)


if __name__ == "__main__":
    main()
