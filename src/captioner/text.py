"""Tokenizer, vocabulary and padding: captions become index matrices and back."""

from __future__ import annotations

import re
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
_CLITIC = re.compile(r"(?<=[a-z0-9])(n't|'s|'re|'ve|'ll|'d|'m)\b")
_TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|\d+(?:[,.]\d+)+|[a-z0-9]+(?:[-'./&_@][a-z0-9]+)*\.?|\S")
# Abbreviations that keep their period, as Stanford's tokenizer does.
_ABBREV = {"mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "vs.", "mt.", "inc.", "co.", "ltd."}


def tokenize(text: str) -> list[str]:
    """Lowercase and split like pycocoevalcap's PTB tokenizer, dropping its punctuation tokens."""
    text = _CLITIC.sub(r" \1", text.lower().replace("\u2019", "'"))
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

    def __post_init__(self) -> None:
        if tuple(self.itos[:4]) != SPECIALS:
            raise CaptionerError(f"vocabulary must start with {', '.join(SPECIALS)}")
        if len(set(self.itos)) != len(self.itos):
            raise CaptionerError("vocabulary has duplicate words")
        object.__setattr__(self, "_stoi", {w: i for i, w in enumerate(self.itos)})

    def __len__(self) -> int:
        return len(self.itos)

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
        """#START# w1 .. wn #END# as indices; unknown words map to #UNK#; max_len truncates words."""
        words = tokenize(caption) if isinstance(caption, str) else list(caption)
        ids = [self.stoi.get(w, UNK_IX) for w in words[:max_len]]
        return [START_IX, *ids, END_IX]

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
        write_json(path, {"version": VOCAB_VERSION, "min_count": self.min_count, "itos": list(self.itos)})

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by save()."""
        obj = read_json(path, "vocabulary")
        if not isinstance(obj, dict) or obj.get("version") != VOCAB_VERSION or not isinstance(obj.get("itos"), list):
            raise CaptionerError(f"{path}: not a captioner vocabulary (version {VOCAB_VERSION} with 'itos')")
        try:
            return cls(tuple(obj["itos"]), int(obj.get("min_count", 5)))
        except CaptionerError as e:
            raise CaptionerError(f"{path}: {e}") from e


def fix_articles(words: list[str]) -> list[str]:
    """'a' before a vowel becomes 'an', 'an' before a consonant 'a' (a copied label may follow either)."""
    out = list(words)
    for i in range(len(out) - 1):
        nxt = out[i + 1][:1]
        if out[i] == "a" and nxt in "aeiou" and nxt:
            out[i] = "an"
        elif out[i] == "an" and nxt.isalpha() and nxt not in "aeiouh":
            out[i] = "a"
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
