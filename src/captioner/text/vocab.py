"""Tokenizer, vocabulary and padding: captions become index matrices and back."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from captioner.errors import CaptionerError
from captioner.files import read_json, write_json

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


def lang_token(tag: str) -> str:
    """The token that starts a caption in language `tag`: '<ru>'."""
    return f"<{tag}>"


@dataclass(frozen=True)
class Vocab:
    """Index <-> word mapping; indices 0..3 are #PAD#, #UNK#, #START#, #END#.

    A multilingual vocabulary (langs non-empty) has a token per language ('<en>', '<ru>') right after those; a
    caption starts with its language's token instead of #START#, as multilingual translation models do, and
    langs[tag] lists the word ids seen in that language's training captions: decoding in a language says no
    other word, so no word leaks from one language into another's caption."""

    itos: tuple[str, ...]
    min_count: int = 5
    no_end: tuple[str, ...] = ()  # words a caption may not end on (text/endings.py); decoding enforces it
    langs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # per language, English words and the word the training captions translate each to ("cat" -> "кошка"):
    # what a caption in that language says for the English caption's concept or a confident ImageNet class's
    # name (rules.Rules)
    translations: dict[str, dict[str, str]] = field(default_factory=dict)
    # English countable nouns ("hammer", "tree"; corpus.prepare.countable_nouns), which an English caption does not
    # say bare (rules.Rules.with_article)
    countable: tuple[str, ...] = ()
    # words the training captions say twice in a row ("family: man, man, boy, boy"), which decoding may repeat
    repeatable: tuple[str, ...] = ()
    # per language with a gendered indefinite article (INDEFINITE), nouns and the article the training captions
    # give them ("katze" -> "eine"), which a caption's article agrees with (rules.Rules.agreeing)
    genders: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if tuple(self.itos[:4]) != SPECIALS:
            raise CaptionerError(f"vocabulary must start with {', '.join(SPECIALS)}")
        if len(set(self.itos)) != len(self.itos):
            raise CaptionerError("vocabulary has duplicate words")
        object.__setattr__(self, "_stoi", {w: i for i, w in enumerate(self.itos)})
        object.__setattr__(self, "_lang_ids", {self._stoi.get(lang_token(t)) for t in self.langs})  # type: ignore[attr-defined]
        missing = [t for t in self.langs if lang_token(t) not in self._stoi]  # type: ignore[attr-defined]
        if missing or any(not 0 <= i < len(self.itos) for ids in self.langs.values() for i in ids):
            raise CaptionerError(f"vocabulary: languages {missing or list(self.langs)} lack tokens or list bad ids")

    def language(self, lang: str | None = None) -> str:
        """The language captions asked in `lang` are written in: `lang` itself, or by default English (else the
        first language). A language the vocabulary lacks is an error naming those it has; a monolingual
        vocabulary writes in its captions' language, taken as English."""
        if not self.langs:
            if lang not in (None, "en"):
                raise CaptionerError(
                    f"language {lang!r}: this model was trained without language tags; it writes "
                    "in its training captions' language only (omit --lang)"
                )
            return "en"
        lang = lang or ("en" if "en" in self.langs else next(iter(self.langs)))
        if lang not in self.langs:
            raise CaptionerError(f"language {lang!r} is unknown to this model; it knows {', '.join(self.langs)}")
        return lang

    def first(self, lang: str | None = None) -> int:
        """The token a caption in `lang` starts with (Vocab.language): #START#, or in a multilingual vocabulary
        the language's token."""
        tag = self.language(lang)
        return self.stoi[lang_token(tag)] if self.langs else START_IX

    def allowed(self, lang: str | None = None) -> np.ndarray | None:
        """(V,) bool: the tokens a caption in `lang` may say (its words and #END#), or None (monolingual)."""
        tag = self.language(lang)
        if not self.langs:
            return None
        ok = np.zeros(len(self.itos), dtype=bool)
        ok[[*self.langs[tag], END_IX]] = True
        return ok

    def __len__(self) -> int:
        return len(self.itos)

    def no_end_mask(self) -> np.ndarray:
        """(V,) bool: True where #END# may not follow the token; #START# and language tokens too (no empty
        caption)."""
        mask = np.zeros(len(self.itos), dtype=bool)
        mask[[START_IX, *(self.stoi[w] for w in self.no_end if w in self.stoi)]] = True
        mask[[self.stoi[lang_token(t)] for t in self.langs]] = True
        return mask

    @property
    def stoi(self) -> dict[str, int]:
        return self._stoi  # type: ignore[attr-defined,no-any-return]

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 5, langs: Sequence[str] | None = None) -> Vocab:
        """Words seen at least min_count times, most frequent first (ties alphabetical); with `langs` (each
        caption's language) a multilingual vocabulary: a token per language, and each language's words."""
        tokens = [tokenize(c) for c in captions]
        counts = Counter(w for t in tokens for w in t)
        words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        if langs is None:
            return cls(SPECIALS + tuple(words), min_count)
        tags = sorted(set(langs))
        itos = SPECIALS + tuple(lang_token(t) for t in tags) + tuple(words)
        ids = {w: i for i, w in enumerate(itos)}
        seen: dict[str, set[int]] = {t: set() for t in tags}
        for t, lang in zip(tokens, langs, strict=True):
            seen[lang].update(ids[w] for w in t if w in ids and w not in SPECIALS)
        return cls(itos, min_count, langs={t: tuple(sorted(seen[t])) for t in tags})

    def encode(self, caption: str | Sequence[str], max_len: int | None = None, lang: str | None = None) -> list[int]:
        """#START# (or the language token, Vocab.first) w1 .. wn #END# as indices; unknown words map to #UNK#.

        A caption longer than max_len words is cut to max_len and gets no #END#: the sentence did not end there,
        so training must not teach the model to stop there."""
        words = tokenize(caption) if isinstance(caption, str) else list(caption)
        ids = [self.stoi.get(w, UNK_IX) for w in words[:max_len]]
        cut = max_len is not None and len(words) > max_len
        first = self.first(lang)
        return [first, *ids] if cut else [first, *ids, END_IX]

    def decode(self, ids: Iterable[int], articles: bool = False) -> str:
        """Indices to text, stopping at #END# and skipping #START# and padding.

        articles=True makes 'a'/'an' agree with the next word (for captions shown to people)."""
        words = []
        for i in ids:
            i = int(i)
            if i == END_IX:
                break
            if i not in (START_IX, PAD_IX) and i not in self._lang_ids:  # type: ignore[attr-defined]
                words.append(self.itos[i])
        return " ".join(fix_articles(words) if articles else words)

    def save(self, path: str | Path) -> None:
        """Write as JSON (atomic)."""
        obj = {"version": VOCAB_VERSION, "min_count": self.min_count, "itos": list(self.itos)}
        obj |= {"no_end": list(self.no_end)} if self.no_end else {}
        obj |= {"langs": {t: list(ids) for t, ids in self.langs.items()}} if self.langs else {}
        obj |= {"translations": self.translations} if self.translations else {}
        obj |= {"countable": list(self.countable)} if self.countable else {}
        obj |= {"genders": self.genders} if self.genders else {}
        write_json(path, obj | ({"repeatable": list(self.repeatable)} if self.repeatable else {}))

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by save()."""
        obj = read_json(path, "vocabulary")
        if not isinstance(obj, dict) or obj.get("version") != VOCAB_VERSION or not isinstance(obj.get("itos"), list):
            raise CaptionerError(f"{path}: not a captioner vocabulary (version {VOCAB_VERSION} with 'itos')")
        try:
            langs = {str(t): tuple(int(i) for i in ids) for t, ids in dict(obj.get("langs", {})).items()}
            names, genders = (
                {str(t): {str(k): str(v) for k, v in dict(d).items()} for t, d in dict(obj.get(key, {})).items()}
                for key in ("translations", "genders")
            )
            countable, repeatable = (tuple(str(w) for w in obj.get(k, ())) for k in ("countable", "repeatable"))
            no_end = tuple(obj.get("no_end", ()))
            itos, min_count = tuple(obj["itos"]), int(obj.get("min_count", 5))
            return cls(itos, min_count, no_end, langs, names, countable, repeatable, genders)
        except (CaptionerError, TypeError, ValueError) as e:
            raise CaptionerError(f"{path}: {e}") from e


# Spelling is not sound: these vowel-letter starts sound like a consonant ("a university", "a one-way street"),
# and these h-words start with a vowel sound ("an hour").
# The first sounds that overrule a word's first letter (the caption policy carries them to the page).
ARTICLE_PATTERNS = {
    "consonant_sound": r"(uni|use|usu|ut[eio]|uk|eu|ewe|one\b|one-|once|ouija)",  # a vowel letter, a consonant sound
    "silent_h": r"(hour|honest|honou?r|heir)",  # an h that is not said
}
_CONSONANT_SOUND = re.compile(ARTICLE_PATTERNS["consonant_sound"])
_SILENT_H = re.compile(ARTICLE_PATTERNS["silent_h"])


# The indefinite articles whose gender the noun decides (Vocab.genders), and where the noun stands in a caption of
# at most GENDERED_MAX words that starts with one: German puts adjectives before it ("eine schwarze Katze"),
# French and Spanish after it ("une étoile rouge").
INDEFINITE = {"de": ("ein", "eine"), "fr": ("un", "une"), "es": ("un", "una")}
NOUN_AT = {"de": -1, "fr": 1, "es": 1}
GENDERED_MAX = 3

# English words that make a caption's noun determined: a caption starting with one needs no article.
DETERMINERS = frozenset(
    "a an the one two three four five six seven eight nine ten some many several few no every each another any "
    "this that these those my your his her its our their".split()
)


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
