"""The build-time readers of system word data: Debian's WordNet 3.0 (wordnet-base) and English word list
(wamerican). Only building reads them (prepare's caption endings, the open corpus's language tags, the class
names' hypernym table, the person-word table); the caption path reads what they produced, shipped in the
package (data/imagenet_hypernyms.tsv, data/person_words.txt) or in the model (policy.json)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from captioner.errors import CaptionerError

WORDNET = Path("/usr/share/wordnet")  # Debian's wordnet-base: the WordNet 3.0 database
WORDS = Path("/usr/share/dict/words")  # Debian's wamerican
PERSON_LEXFILE = 18  # WordNet's noun.person
# WordNet's lexicographer files of things one counts: animal, artifact, body, communication, object, person,
# plant, shape (not substance, food, phenomenon, location, group, attribute, ...: "water", "coffee", "snow", "us")
COUNTABLE_LEXFILES = frozenset({5, 6, 8, 10, 17, 18, 20, 25})
GROUP_WORDS = frozenset("person people men women children boys girls kids persons couple family crowd group".split())


def _lines(path: Path, what: str, package: str) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").split("\n")
    except FileNotFoundError:
        raise CaptionerError(f"{path}: {what} not found; building needs it (sudo apt-get install {package})") from None


@cache
def wordnet_nouns(wordnet: Path = WORDNET) -> tuple[dict[str, list[str]], dict[str, str]]:
    """index.noun as lemma -> synset offsets, and data.noun as offset -> line."""
    index: dict[str, list[str]] = {}
    for line in _lines(wordnet / "index.noun", "WordNet", "wordnet-base"):
        if line and not line.startswith(" "):
            parts = line.split()
            index[parts[0]] = parts[-int(parts[2]) :]
    lines = _lines(wordnet / "data.noun", "WordNet", "wordnet-base")
    return index, {line[:8]: line for line in lines if line and not line.startswith(" ")}


def synset(line: str) -> tuple[int, list[str], list[str]]:
    """(lexicographer file, lemmas, hypernym offsets) of one data.noun line."""
    parts = line.split(" | ")[0].split()
    n = int(parts[3], 16)
    lemmas = [parts[4 + 2 * i].replace("_", " ").lower() for i in range(n)]
    ptrs = parts[4 + 2 * n + 1 :]
    return int(parts[1]), lemmas, [ptrs[i + 1] for i in range(0, len(ptrs), 4) if ptrs[i] in ("@", "@i")]


def ancestors(off: str, data: dict[str, str]) -> set[str]:
    """The synset offset and every hypernym above it."""
    seen, todo = set(), [off]
    while todo:
        o = todo.pop()
        if o not in seen:
            seen.add(o)
            todo += synset(data[o])[2]
    return seen


@cache
def tagged_senses(pos: str, wordnet: Path = WORDNET) -> dict[str, int]:
    """WordNet's index.<pos>: lemma -> the count of its senses tagged in the semantic concordance."""
    out = {}
    for line in _lines(wordnet / f"index.{pos}", "WordNet", "wordnet-base"):
        if line and not line.startswith(" "):
            f = line.split()
            out[f[0]] = int(f[5 + int(f[3])])  # lemma pos synset_cnt p_cnt [ptr]*p_cnt sense_cnt tagsense_cnt
    return out


@cache
def noun_exceptions(wordnet: Path = WORDNET) -> dict[str, str]:
    """noun.exc: irregular plural -> its noun ('mice' -> 'mouse')."""
    return dict(line.split()[:2] for line in _lines(wordnet / "noun.exc", "WordNet", "wordnet-base") if line.strip())


def person_words(wordnet: Path = WORDNET) -> list[str]:
    """Words that say a person or people, sorted: nouns whose first WordNet sense is a person ('officer', 'woman',
    'astronaut'), and GROUP_WORDS. data/person_words.txt is this list (tests hold them equal)."""
    index, data = wordnet_nouns(wordnet)
    return sorted(GROUP_WORDS | {w for w, offs in index.items() if synset(data[offs[0]])[0] == PERSON_LEXFILE})


def countable_nouns(words: Iterable[str], wordnet: Path = WORDNET, word_list: Path = WORDS) -> frozenset[str]:
    """The words that are countable nouns by WordNet and the word list: the first noun sense is in
    COUNTABLE_LEXFILES, the noun's tagged senses are at least the adjective's and the verb's ("red", "fly" are
    not), and the word list has its plural ("hammers"; not "scissors")."""
    index, data = wordnet_nouns(wordnet)
    nouns, adjs, verbs = tagged_senses("noun", wordnet), tagged_senses("adj", wordnet), tagged_senses("verb", wordnet)
    listed = english_words(word_list)
    out = set()
    for w in words:
        offs = index.get(w)
        if not offs or synset(data[offs[0]])[0] not in COUNTABLE_LEXFILES:
            continue
        if nouns.get(w, 0) >= max(adjs.get(w, 0), verbs.get(w, 0)) and {w + "s", w + "es", w[:-1] + "ies"} & listed:
            out.add(w)
    return frozenset(out)


@cache
def english_words(path: Path = WORDS) -> frozenset[str]:
    """The lower-case entries of the English word list (no proper names)."""
    return frozenset(w for w in _lines(path, "English word list", "wamerican") if w.isalpha() and w.islower())


@cache
def known_words(path: Path = WORDS) -> frozenset[str]:
    """Every alphabetic entry of the English word list, lower-cased: proper names ('finland') included."""
    return frozenset(w.lower() for w in _lines(path, "English word list", "wamerican") if w.isalpha())
