"""The caption policy: everything the caption rules need besides the weights, built once from a vocabulary and
saved beside the weights as policy.json. The PyTorch runtime, the onnxruntime runtime and the browser page read
this one file; nothing in the caption path reads WordNet, word lists or any other system data.

policy.json (POLICY_VERSION 5), every id an index into the model's vocabulary:
  version, vocab_size, vocab_sha256  the vocabulary it was built for (a policy for another vocabulary is an error)
  tagged                         whether captions start with a language token (Vocab.langs)
  name_threshold                 the copy path names a confident photo's class at this probability (0: never)
  no_end                         ids after which #END# may not follow (Vocab.no_end_mask)
  languages.TAG                  first: the id captions start from; allowed: the ids the language may say (null:
                                 all); colours: colour word id -> the colours it names; person / people: the ids of
                                 "a person" and "people"; says_person: every id that says a person; rename: class
                                 word id -> its translation's id for every English word Vocab.translations has
                                 (null in English); article, countable, determiners (English): the id of "a", the
                                 ids of countable nouns (Vocab.countable) and of determiners (text.DETERMINERS), so
                                 that no caption is a bare countable noun (rules.Rules.with_article); genders,
                                 indefinite, noun_at, gendered_max (German, French, Spanish): noun id -> the id of
                                 its indefinite article (Vocab.genders), the ids of the language's indefinite
                                 articles, where the noun stands and in captions of how many words at most
                                 (text.NOUN_AT, GENDERED_MAX), so that a caption's article agrees with its noun
                                 (rules.Rules.agreeing); sayable
                                 (the concept language): the ids of its countable nouns that every other language's
                                 rename translates, one of which its first caption says where some language can say
                                 none of its words, and sayable_within: how far below the first caption's confidence
                                 such a caption may be and still replace it (rules.Rules.sayable_must)
  repeatable                     ids that decoding may say twice in a row (Vocab.repeatable); any other word never
  concept                        the language whose caption chooses what every language names ("en"); null for a
                                 model without English or with one language
  photo                          the photo test (photo.photo_like): flat, the flat-patch threshold; probe, the
                                 probe on the pooled vector (weights, bias, margin), null for an encoder no probe
                                 reads
  colours                        the colour rule (colours.py): names, present, centre, rule
  detectors                      the people detectors' graphs, settings and thresholds (people.settings)
  articles                       the first sounds that choose "a" or "an" (text.article)

Built by `captioner train` with every checkpoint it saves, and by `captioner upgrade CHECKPOINT` for a checkpoint
made before policies; `captioner export` copies it, listed with its sha256 in the export's manifest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from captioner.errors import CaptionerError
from captioner.files import write_bytes
from captioner.sights import colours, people, photo
from captioner.text.vocab import ARTICLE_PATTERNS, DETERMINERS, GENDERED_MAX, INDEFINITE, NOUN_AT, Vocab

# 5: articles agree with their nouns (genders); 4: the concept is sayable in every language; 3: concepts across
# languages, articles; 2: the photo probe; 1: the flat-patch threshold alone
POLICY_VERSION = 5
POLICY_FILE = "policy.json"

# How each language says "a person" and "people" (the words a photo with people found is captioned with).
PERSON_WORDS = {
    "en": (("a", "person"), ("people",)),
    "ru": (("человек",), ("люди",)),
    "de": (("eine", "person"), ()),  # the training captions have no word for "people"
    "fr": (("une", "personne"), ("personnes",)),
    "es": (("una", "persona"), ("personas",)),
}


def saying_person(tag: str) -> frozenset[str]:
    """The words that say a person in a language: English's from the shipped WordNet table (people.person_words),
    others' their PERSON_WORDS nouns."""
    if tag == "en":
        return people.person_words()
    person, group = PERSON_WORDS.get(tag, ((), ()))
    return frozenset(person[-1:] + group)


def vocab_sha256(vocab: Vocab) -> str:
    """The hash of the vocabulary's words, in order: what ties a policy to its vocabulary."""
    return hashlib.sha256("\n".join(vocab.itos).encode("utf-8")).hexdigest()


CONCEPT_LANGUAGE = "en"  # the language whose caption chooses what a caption in any language names
# How far (log-probability per token) below the first caption a caption naming a concept every language can say
# may be and still replace it: chosen on validation, the widest whose English CIDEr-D is no lower than without
# the rule (docs/results.md, "2026-12-08")
SAYABLE_WITHIN = 0.5


def concept_language(vocab: Vocab) -> str | None:
    """The language whose caption chooses the concept: English, where the model writes English and another
    language; else None (each caption is its own)."""
    return CONCEPT_LANGUAGE if CONCEPT_LANGUAGE in vocab.langs and len(vocab.langs) > 1 else None


def _style(ids: dict[str, int], vocab: Vocab, tag: str) -> dict[str, Any]:
    """English's article rule: the id of "a", countable nouns' ids, determiners' ids (empty elsewhere)."""
    if tag != "en" or "a" not in ids:
        return {"article": -1, "countable": [], "determiners": []}
    return {
        "article": ids["a"],
        "countable": sorted(ids[w] for w in vocab.countable if w in ids),
        "determiners": sorted(ids[w] for w in DETERMINERS if w in ids),
    }


def _sayable(vocab: Vocab, ids: dict[str, int], tag: str) -> list[int]:
    """The concept language's countable nouns that every other language of the model with a concept table can say
    (Vocab.translations), as ids; empty in any other language."""
    if tag != concept_language(vocab):
        return []
    others = [d for t in vocab.langs if t != tag and (d := vocab.translations.get(t))]  # languages with a table
    return sorted(ids[e] for e in vocab.countable if e in ids and all(e in d and d[e] in ids for d in others))


def _language(vocab: Vocab, ids: dict[str, int], tag: str) -> dict[str, Any]:
    allowed = vocab.allowed(tag if vocab.langs else None)
    person, group = PERSON_WORDS.get(tag, ((), ()))
    names = vocab.translations.get(tag, {})
    return _style(ids, vocab, tag) | {
        "first": vocab.first(tag if vocab.langs else None),
        "allowed": None if allowed is None else [int(i) for i in allowed.nonzero()[0]],
        "colours": {str(ids[w]): sorted(c) for w, c in colours.colour_words(tag).items() if w in ids},
        "person": [ids[w] for w in person] if person and set(person) <= ids.keys() else [],
        "people": [ids[w] for w in group] if group and set(group) <= ids.keys() else [],
        "says_person": sorted(ids[w] for w in saying_person(tag) if w in ids),
        "rename": None if tag == "en" else {str(ids[e]): ids[w] for e, w in names.items() if e in ids and w in ids},
        "genders": {str(ids[n]): ids[a] for n, a in vocab.genders.get(tag, {}).items() if n in ids and a in ids},
        "indefinite": sorted(ids[a] for a in INDEFINITE.get(tag, ()) if a in ids),
        "noun_at": NOUN_AT.get(tag, 0),
        "gendered_max": GENDERED_MAX if tag in INDEFINITE else 0,
        "sayable": _sayable(vocab, ids, tag),
        "sayable_within": SAYABLE_WITHIN,
    }


def build_policy(vocab: Vocab, name_threshold: float, encoder: str) -> dict[str, Any]:
    """The caption policy of a model with this vocabulary, naming threshold and encoder (the module docstring)."""
    ids = {w: i for i, w in enumerate(vocab.itos)}
    return {
        "version": POLICY_VERSION,
        "vocab_size": len(vocab.itos),
        "vocab_sha256": vocab_sha256(vocab),
        "tagged": bool(vocab.langs),
        "name_threshold": name_threshold,
        "no_end": [int(i) for i in vocab.no_end_mask().nonzero()[0]],
        "languages": {tag: _language(vocab, ids, tag) for tag in (vocab.langs or ("en",))},
        "concept": concept_language(vocab),
        "repeatable": sorted(ids[w] for w in vocab.repeatable if w in ids),
        "photo": photo.photo_settings(encoder),
        "colours": colours.colour_settings(),
        "detectors": people.settings(),
        "articles": ARTICLE_PATTERNS,
    }


def policy_bytes(policy: dict[str, Any]) -> bytes:
    """policy.json's bytes: one canonical JSON text, so equal policies hash equal."""
    return (json.dumps(policy, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")


def write_policy(folder: Path, policy: dict[str, Any]) -> str:
    """Write folder/policy.json atomically; returns its sha256."""
    data = policy_bytes(policy)
    write_bytes(folder / POLICY_FILE, data)
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Policy:
    """A loaded policy.json; `data` is the file's JSON as the module docstring lays it out."""

    data: dict[str, Any]
    path: Path | None = None  # None: built in memory (Policy.build)
    sha256: str = ""  # of the file it was read from

    @classmethod
    def build(cls, vocab: Vocab, name_threshold: float, encoder: str) -> Policy:
        """The policy of this vocabulary, threshold and encoder, built in memory (build_policy)."""
        return cls(build_policy(vocab, name_threshold, encoder))

    def mask(self, key: str) -> np.ndarray:
        """(V,) bool: True at the ids the policy lists under `key` ("no_end", "repeatable")."""
        out = np.zeros(self.data["vocab_size"], dtype=bool)
        out[self.data[key]] = True
        return out

    def no_end_mask(self) -> np.ndarray:
        """(V,) bool: True where #END# may not follow the token."""
        return self.mask("no_end")

    def language(self, tag: str) -> dict[str, Any]:
        """One language's section (the tag is Vocab.language's answer, so it is known)."""
        return self.data["languages"][tag]


def load_policy(folder: Path, vocab: Vocab, sha256: str | None = None) -> Policy:
    """folder/policy.json, read once and checked against the sha256 recorded beside it (when given), its version
    and the vocabulary; a checkpoint made before policies gets the command that upgrades it."""
    path = folder / POLICY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CaptionerError(
            f"{path}: missing; this model was made before caption policies. "
            f"Build it once with `captioner upgrade {folder}`"
        ) from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise CaptionerError(f"{path}: changed since it was built; rebuild it with `captioner upgrade {folder}`")
    return policy_from_bytes(data, path, vocab)


def policy_from_bytes(data: bytes, path: Path, vocab: Vocab) -> Policy:
    """The policy in these bytes of path (already read, and checked when they had to be), its version and
    vocabulary checked."""
    folder = path.parent
    try:
        obj = json.loads(data)
    except ValueError as e:
        raise CaptionerError(f"{path}: not valid JSON ({e}); rebuild it with `captioner upgrade {folder}`") from None
    if not isinstance(obj, dict) or obj.get("version") != POLICY_VERSION:
        got = obj.get("version") if isinstance(obj, dict) else None
        raise CaptionerError(
            f"{path}: caption policy version {got!r}, this captioner reads {POLICY_VERSION}; "
            f"rebuild it with `captioner upgrade {folder}`"
        )
    if obj.get("vocab_sha256") != vocab_sha256(vocab) or obj.get("vocab_size") != len(vocab.itos):
        raise CaptionerError(
            f"{path}: built for another vocabulary than {folder / 'vocab.json'}; "
            f"rebuild it with `captioner upgrade {folder}`"
        )
    return Policy(obj, path, hashlib.sha256(data).hexdigest())
