"""Tokenizer, vocabulary and padding: captions become index matrices and back."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CaptionerError
from .files import read_json, write_json

PAD, UNK, START, END = "#PAD#", "#UNK#", "#START#", "#END#"
SPECIALS = (PAD, UNK, START, END)
PAD_IX, UNK_IX, START_IX, END_IX = range(4)
VOCAB_VERSION = 1

# Tokens pycocoevalcap's PTB step drops after Stanford's tokenizer has split them off. Brackets are
# dropped too: pycocoevalcap means to, but compares its '-LRB-' list after lowercasing, so '-lrb-' survives.
_PUNCT = {
    "''",
    "'",
    "``",
    "`",
    ".",
    "?",
    "!",
    ",",
    ":",
    "-",
    "--",
    "...",
    ";",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    '"',
}
# A word character: any Unicode letter or digit (so "café", "ёжик" and "東京" stay whole), plus the combining
# marks of Latin, Indic and Thai scripts, which Python's \w leaves out.
_W = r"(?:[^\W_]|[\u0300-\u036f\u0900-\u0dff\u0e00-\u0e7f])"
_CLITIC = re.compile(rf"(?<={_W})(n't|'s|'re|'ve|'ll|'d|'m)\b")
# Clitics; numbers with separators ("3.5", "1,000", "5:30"); words joined by -'./&_@; runs of ! or ? ("!!"),
# which PTB keeps as one token; any other single character.
_TOKEN = re.compile(rf"n't|'(?:s|re|ve|ll|d|m)\b|\d+(?:[,.:]\d+)+|{_W}+(?:[-'./&_@]{_W}+)*\.?|[!?]{{2,}}|\S")
# Characters PTB rewrites into punctuation it then drops (dashes, the ellipsis) or leaves out as untokenizable
# (control characters), mapped the same way before splitting.
_PTB_CHARS = {0x2013: " -- ", 0x2014: " -- ", 0x2026: " ... ", **{c: " " for c in [*range(0, 32), *range(127, 160)]}}
# Abbreviations that keep their period, as Stanford's tokenizer does.
_ABBREV = {"mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "vs.", "mt.", "inc.", "co.", "ltd."}


def tokenize(text: str) -> list[str]:
    """Lowercase and split like pycocoevalcap's PTB tokenizer, dropping its punctuation tokens."""
    text = unicodedata.normalize("NFC", text).translate(_PTB_CHARS).lower().replace("\u2019", "'")
    text = _CLITIC.sub(r" \1", text)
    out = []
    for tok in _TOKEN.findall(text):
        if tok.endswith(".") and len(tok) > 1 and "." not in tok[:-1] and tok not in _ABBREV:
            tok = tok[:-1]  # a sentence-final period; abbreviations like "u.s." keep theirs
        if tok not in _PUNCT:
            out.append(tok)
    return out


@dataclass(frozen=True)
class Vocab:
    """Index <-> word mapping; indices 0..3 are #PAD#, #UNK#, #START#, #END#."""

    itos: tuple[str, ...]
    min_count: int = 5
    no_end: tuple[str, ...] = ()  # words a caption may not end on (endings.py); decoding enforces it

    def __post_init__(self) -> None:
        if tuple(self.itos[:4]) != SPECIALS:
            raise CaptionerError(f"vocabulary must start with {', '.join(SPECIALS)}")
        if len(set(self.itos)) != len(self.itos):
            raise CaptionerError("vocabulary has duplicate words")
        object.__setattr__(self, "_stoi", {w: i for i, w in enumerate(self.itos)})

    def __len__(self) -> int:
        return len(self.itos)

    def no_end_mask(self) -> np.ndarray:
        """(V,) bool: True where #END# may not follow the token; #START# too (no empty caption)."""
        mask = np.zeros(len(self.itos), dtype=bool)
        mask[[START_IX, *(self.stoi[w] for w in self.no_end if w in self.stoi)]] = True
        return mask

    @property
    def stoi(self) -> dict[str, int]:
        return self._stoi  # type: ignore[attr-defined,no-any-return]

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 5) -> Vocab:
        """Words seen at least min_count times, most frequent first (ties alphabetical)."""
        counts = Counter(w for c in captions for w in tokenize(c))
        words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls(SPECIALS + tuple(words), min_count)

    def encode(self, caption: str | Sequence[str], max_len: int | None = None) -> list[int]:
        """#START# w1 .. wn #END# as indices; unknown words map to #UNK#.

        A caption longer than max_len words is cut to max_len and gets no #END#: the sentence did not end there,
        so training must not teach the model to stop there."""
        words = tokenize(caption) if isinstance(caption, str) else list(caption)
        ids = [self.stoi.get(w, UNK_IX) for w in words[:max_len]]
        cut = max_len is not None and len(words) > max_len
        return [START_IX, *ids] if cut else [START_IX, *ids, END_IX]

    def decode(self, ids: Iterable[int], articles: bool = False) -> str:
        """Indices to text, stopping at #END# and skipping #START# and padding.

        articles=True makes 'a'/'an' agree with the next word (for captions shown to people)."""
        words = []
        for i in ids:
            i = int(i)
            if i == END_IX:
                break
            if i not in (START_IX, PAD_IX):
                words.append(self.itos[i])
        return " ".join(fix_articles(words) if articles else words)

    def save(self, path: str | Path) -> None:
        """Write as JSON (atomic)."""
        obj = {"version": VOCAB_VERSION, "min_count": self.min_count, "itos": list(self.itos)}
        write_json(path, {**obj, **({"no_end": list(self.no_end)} if self.no_end else {})})

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by save()."""
        obj = read_json(path, "vocabulary")
        if not isinstance(obj, dict) or obj.get("version") != VOCAB_VERSION or not isinstance(obj.get("itos"), list):
            raise CaptionerError(f"{path}: not a captioner vocabulary (version {VOCAB_VERSION} with 'itos')")
        try:
            return cls(tuple(obj["itos"]), int(obj.get("min_count", 5)), tuple(obj.get("no_end", ())))
        except CaptionerError as e:
            raise CaptionerError(f"{path}: {e}") from e


# Spelling is not sound: these vowel-letter starts sound like a consonant ("a university", "a one-way street"),
# and these h-words start with a vowel sound ("an hour").
_CONSONANT_SOUND = re.compile(r"(uni|use|usu|ut[eio]|uk|eu|ewe|one\b|one-|once|ouija)")
_SILENT_H = re.compile(r"(hour|honest|honou?r|heir)")


def article(word: str) -> str:
    """The indefinite article for a word by its first sound: 'an' before a vowel sound, else 'a'."""
    w = word.lower()
    vowel = (w[:1] in ("a", "e", "i", "o", "u") and not _CONSONANT_SOUND.match(w)) or bool(_SILENT_H.match(w))
    return "an" if vowel else "a"


def fix_articles(words: list[str]) -> list[str]:
    """Make each 'a'/'an' agree with the next word's first sound (a copied label may follow either)."""
    out = list(words)
    for i in range(len(out) - 1):
        if out[i] in ("a", "an") and out[i + 1][:1].isalpha():
            out[i] = article(out[i + 1])
    return out


def as_matrix(seqs: Sequence[Sequence[int]], max_len: int | None = None) -> np.ndarray:
    """Pad index lists into an int64 (N, T) matrix with PAD_IX; max_len truncates to T columns."""
    width = max((len(s) for s in seqs), default=0)
    width = min(width, max_len) if max_len else width
    out = np.full((len(seqs), width), PAD_IX, dtype=np.int64)
    for i, s in enumerate(seqs):
        row = list(s)[:width]
        out[i, : len(row)] = row
    return out


def vocab_stats(vocab: Vocab, captions: Iterable[str]) -> dict[str, float]:
    """Size, share of training tokens covered, UNK rate and distinct-word coverage."""
    counts = Counter(w for c in captions for w in tokenize(c))
    total = sum(counts.values())
    known = sum(n for w, n in counts.items() if w in vocab.stoi)
    return {
        "size": len(vocab),
        "distinct_words": len(counts),
        "tokens": total,
        "coverage": known / total if total else 0.0,
        "unk_rate": 1 - known / total if total else 0.0,
    }
