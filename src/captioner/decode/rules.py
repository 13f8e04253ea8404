"""Decoding held to what the pixels say (look.Sight): the one place caption, evaluate, serve and the API decode.

decode(), in order:
  1. words the image gives no ground for are never said (Stepper.forbid): colour words naming a colour its
     centre does not show; in a photo where people were looked for and none found, words for a person ("a man",
     "a european") unless one of the encoder's offered classes says it (scuba diver, groom, ballplayer);
  2. greedy or beam search (decode/search.py, whose ending rule keeps phrases whole);
  3. a photo with one person found says "a person", with more "people" (ImageNet has no class for a person; in
     Russian "человек", "люди", and so on: policy.PERSON_WORDS); else a photo whose top ImageNet class's word
     reaches name_threshold (summed over the top classes that say it: tabby and tiger cat are both "cat")
     says that word (copy models; in another language its translation from Vocab.translations, where there
     is one): the first caption becomes the best one that does (constrained.require);
  4. in English, in a model of several languages, a first caption that some other language cannot say (none of its
     words is in that language's rename) becomes the best one that says a countable noun every language can say
     (policy.json's sayable; constrained.require) where its confidence is at most sayable_within below the first's:
     "segmented" and other untranslatable titles give way to a concept every language names. Outside English,
     the concept is English's: the image is first captioned in English under the English rules, and unless step 3
     says people, the first caption becomes the best one that says the translation (Vocab.translations) of the
     English caption's last word that has one (constrained.require), in the language's own wording; so --lang
     changes the words, never the thing named (the exact translated caption of the English one scored lower on
     validation: docs/results.md);
  5. in English, a caption whose last word is a countable noun and whose first is no determiner gets "a"
     ("hammer" -> "a hammer"; Vocab.countable); in German, French and Spanish, a caption's indefinite article
     agrees with the noun after it ("ein katze" -> "eine katze"; Vocab.genders); each scored as the model scores it
     (constrained.say_all).
Search never says a word twice in a row (search.no_repeat)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from captioner.decode.constrained import Must, require, say_all
from captioner.decode.search import Caption, Stepper, beam_search, distinct, greedy, sample
from captioner.policy import Policy
from captioner.sights.look import Sight
from captioner.text.vocab import PAD_IX, START_IX


@dataclass(frozen=True)
class Rules:
    """The truth rules over one vocabulary in one language: the token captions start from, the words outside the
    language, which ids are colour words, and the ids of "a person" and "people"."""

    vocab_size: int
    colour_ids: dict[int, frozenset[str]]
    person: tuple[int, ...]  # "a person", when the vocabulary has the words
    people: tuple[int, ...]  # "people"
    name_threshold: float
    first: int = START_IX
    outside: np.ndarray | None = None  # (V,) bool: the words of other languages, or None (monolingual)
    rename: dict[int, int] | None = None  # outside English: English word id -> its translation's (Vocab.translations)
    person_ids: tuple[int, ...] = ()  # every word that says a person (policy.saying_person)
    concept: Rules | None = None  # the concept language's rules (policy.json's concept), outside that language
    article: int = -1  # English: the id of "a" (-1: no article rule)
    countable: frozenset[int] = frozenset()  # English: countable nouns
    determiners: frozenset[int] = frozenset()  # English: words that need no article after them
    repeatable: np.ndarray | None = None  # (V,) bool: the words decoding may say twice in a row
    sayable: frozenset[int] = frozenset()  # the concept language: the countable nouns every other language can say
    said_in: tuple[frozenset[int], ...] = ()  # the concept language: per other language, the words it can say
    sayable_within: float = 0.0  # how far below the first caption's confidence a sayable one may replace it
    genders: dict[int, int] = field(default_factory=dict)  # German, French, Spanish: noun id -> its article's id
    indefinite: frozenset[int] = frozenset()  # the language's indefinite articles ("ein", "eine")
    noun_at: int = 0  # where the noun stands in a caption starting with one (text.NOUN_AT)
    gendered_max: int = 0  # in captions of at most this many words (0: never)

    @classmethod
    def from_policy(cls, policy: Policy, tag: str, name_threshold: float | None = None) -> Rules:
        """The rules for captions in language `tag` (Vocab.language's answer) as the policy says them;
        name_threshold overrides the policy's (None: keep it)."""
        lp, data = policy.language(tag), policy.data
        outside = None
        if lp["allowed"] is not None:
            outside = np.ones(data["vocab_size"], dtype=bool)
            outside[lp["allowed"]] = False
        return cls(
            data["vocab_size"],
            {int(i): frozenset(c) for i, c in lp["colours"].items()},
            tuple(lp["person"]),
            tuple(lp["people"]),
            float(data["name_threshold"] if name_threshold is None else name_threshold),
            int(lp["first"]),
            outside,
            None if lp["rename"] is None else {int(k): int(v) for k, v in lp["rename"].items()},
            tuple(lp["says_person"]),
            None if data["concept"] in (None, tag) else cls.from_policy(policy, data["concept"], name_threshold),
            int(lp["article"]),
            frozenset(lp["countable"]),
            frozenset(lp["determiners"]),
            policy.mask("repeatable"),
            frozenset(lp["sayable"]),
            tuple(frozenset(map(int, o["rename"])) for t, o in data["languages"].items() if t != tag and o["rename"]),
            float(lp["sayable_within"]),
            {int(k): int(v) for k, v in lp["genders"].items()},
            frozenset(lp["indefinite"]),
            int(lp["noun_at"]),
            int(lp["gendered_max"]),
        )  # fmt: skip

    def forbid(self, sights: list[Sight], offered: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """(B, V) bool: the colour words each image does not show, the words of other languages, and in photos
        looked at for people with none found, the person words none of the offered classes (copy models) says."""
        out = np.zeros((len(sights), self.vocab_size), dtype=bool)
        if self.outside is not None:
            out[:] = self.outside
        for i, s in enumerate(sights):
            out[i, [w for w, cs in self.colour_ids.items() if not cs & s.colours]] = True
            if s.photo and s.people == 0:
                classes = set() if offered is None else {self.said(int(w)) for w in offered[1][i]}
                out[i, [w for w in self.person_ids if w not in classes]] = True
        return out

    def musts(self, sights: list[Sight], offered: tuple[np.ndarray, np.ndarray] | None) -> list[Must | None]:
        """Per image, what its first caption must say: photos with people found say "a person" (one) or "people"
        (more) and nothing else, since nothing in the model knows more about people; else photos whose top class
        reaches name_threshold (copy models) say that class's word; else nothing."""
        out: list[Must | None] = []
        for i, s in enumerate(sights):
            said = self.people if (s.people or 0) > 1 else self.person
            if s.photo and s.people and said:
                out.append(Must(exact=said))
            elif s.photo and offered is not None and self.confident(offered, i):
                out.append(Must(frozenset({self.said(int(offered[1][i, 0]))})))
            else:
                out.append(None)
        return out

    def said(self, word: int) -> int:
        """An English word's id in the caption's language: itself in English, else its translation (-1: none)."""
        return word if self.rename is None else self.rename.get(word, -1)

    def confident(self, offered: tuple[np.ndarray, np.ndarray], i: int) -> bool:
        """Image i's top class's word reaches name_threshold (> 0) over the offered classes that say it, and is
        in the vocabulary (outside English: has a translation in Vocab.translations)."""
        p, w = offered
        word = int(w[i, 0])
        known = word != PAD_IX and (self.rename is None or word in self.rename)
        said = float(p[i][w[i] == word].sum())  # the word's probability: its classes' together (tabby, tiger cat)
        return bool(self.name_threshold > 0 and said >= self.name_threshold and known)

    def sayable_must(self, caption: list[int]) -> Must | None:
        """What the concept language's first caption `caption` (ids) must say: one of the sayable words where some
        other language can say none of its words, within sayable_within of its confidence; else None."""
        unsayable = any(s.isdisjoint(caption) for s in self.said_in)
        return Must(self.sayable, within=self.sayable_within) if self.sayable and unsayable else None

    def concept_must(self, english: list[int], forbid: np.ndarray) -> Must | None:
        """What a caption must say to name the concept of the English caption `english` (ids): the translation
        of its last word that has one and that the image does not forbid (forbid (V,) bool); None: none has."""
        for t in reversed(english):
            w = self.said(t)
            if w >= 0 and not forbid[w]:
                return Must(frozenset({w}))
        return None

    def agreeing(self, tokens: list[int]) -> list[int] | None:
        """The caption, of at most gendered_max words, with its first word, an indefinite article, made the one its
        noun (at noun_at) takes ("ein katze" -> "eine katze"); else None (it agrees, or no rule applies)."""
        short = 2 <= len(tokens) <= self.gendered_max and tokens[0] in self.indefinite
        art = self.genders.get(tokens[self.noun_at], -1) if short else -1
        return [art, *tokens[1:]] if art >= 0 and art != tokens[0] else None

    def styled(self, tokens: list[int]) -> list[int] | None:
        """The caption in its language's style where it is not (with_article, agreeing); else None."""
        return self.with_article(tokens) or self.agreeing(tokens)

    def with_article(self, tokens: list[int]) -> list[int] | None:
        """The caption with "a" before it where it is a bare countable noun phrase (English); else None."""
        bare = tokens and tokens[0] not in self.determiners and tokens[-1] in self.countable
        return [self.article, *tokens] if self.article >= 0 and bare else None


def _search(
    st: Stepper,
    sights: list[Sight],
    rules: Rules,
    offered: tuple[np.ndarray, np.ndarray] | None,
    max_len: int,
    beam: int,
    n_best: int,
    english: list[list[int]] | None = None,
    articles: bool = True,
) -> list[list[Caption]]:
    """Steps 1-5 of the module docstring in one language; english: the concept language's first captions;
    articles=False leaves step 5 out (the concept pass: "a" translates to nothing)."""
    st.forbid, st.first, st.repeat = rules.forbid(sights, offered), rules.first, rules.repeatable
    nbest = [[c] for c in greedy(st, max_len)] if beam <= 1 else beam_search(st, beam, max_len, n_best=n_best)
    musts = rules.musts(sights, offered if rules.name_threshold > 0 else None)
    if english is not None:  # the people rule's exact words first, then the concept, then naming
        musts = [
            m if m is not None and m.exact else rules.concept_must(e, st.forbid[i]) or m
            for i, (m, e) in enumerate(zip(musts, english, strict=True))
        ]
    else:  # the concept language: a concept every language can say
        musts = [m or rules.sayable_must(cs[0].tokens) for m, cs in zip(musts, nbest, strict=True)]
    out = require(st, nbest, musts, max(1, beam), max_len)
    if not articles:
        return out
    articled = [(i, j, t) for i, cs in enumerate(out) for j, c in enumerate(cs) if (t := rules.styled(c.tokens))]
    said = say_all(st, [(i, t) for i, _, t in articled])  # every image's articled captions scored together
    for (i, j, _), c in zip(articled, said, strict=True):
        out[i][j] = c
    return [distinct(cs) for cs in out]


def decode(
    st: Stepper,
    sights: list[Sight],
    rules: Rules,
    max_len: int,
    beam: int = 3,
    n_best: int = 1,
    temperature: float = 0.0,
    seed: int = 0,
) -> list[list[Caption]]:
    """n-best captions per image of the stepper's batch under the rules (module docstring). beam 1 is greedy;
    temperature > 0 samples (colour rule only: a sample is not made to hold a word)."""
    offered = st.offered()
    if temperature > 0:
        st.forbid, st.first, st.repeat = rules.forbid(sights, offered), rules.first, rules.repeatable
        return [[c] for c in sample(st, max_len, temperature, seed=seed)]
    english = None
    if rules.concept is not None:
        english = [cs[0].tokens for cs in _search(st, sights, rules.concept, offered, max_len, beam, 1, None, False)]
    return _search(st, sights, rules, offered, max_len, beam, max(1, n_best), english)
