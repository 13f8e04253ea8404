"""Where a caption may end. Never on a determiner, preposition or conjunction; never on a word that WordNet
knows only as an adjective, verb or adverb ("wooden", "happy") unless the training captions often end on it
("thumbs up"); never on an adjective-first word (WordNet's tagged senses favour the adjective) that the
training captions almost never end on ("an electric", "a large"); never on a word WordNet does not know (other
languages' words, names) that the training captions almost never end on ("красная" in "красная кнопка").

The words are kept in the vocabulary (Vocab.no_end) and decoding refuses #END# after them (decode/search.py, and
the browser page's captioner.js); a caption forced to stop at max_len on one of them is cut back to its last
word that may end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from captioner.data.lexicon import noun_exceptions, tagged_senses
from captioner.text.vocab import tokenize

FUNCTION_WORDS = frozenset(
    "a an the this that these those my your his her its our their some any no every each either neither both "
    "another such what which whose of in on at by for with from to into onto upon under above below beneath "
    "between among through during without within across along behind beyond near than and or but nor so yet "
    "as if while because though although whether via per 's &".split()
)  # closed classes; particles that end phrases ("thumbs up", "arrow down") are not here
RARELY_LAST = 0.05  # an adjective-first word ending fewer of its training captions than this may not end one
MIN_SEEN = 5  # ... when it occurs in at least this many


def noun_base(word: str) -> str | None:
    """The WordNet noun a word is a form of ("mice" -> "mouse", "boxes" -> "box"), or None."""
    nouns = tagged_senses("noun")
    if word in nouns:
        return word
    if noun_exceptions().get(word) in nouns:
        return noun_exceptions()[word]
    for suffix, repl in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("ses", "s"), ("xes", "x"), ("s", "")):
        if word.endswith(suffix) and word[: -len(suffix)] + repl in nouns:
            return word[: -len(suffix)] + repl
    return None


def may_not_end(word: str, seen: int = 0, last: int = 0) -> bool:
    """The rule for one word; seen and last: how many training captions hold it and end on it."""
    if word in FUNCTION_WORDS:
        return True
    counted = seen >= MIN_SEEN
    base, adj, other = noun_base(word), tagged_senses("adj"), (tagged_senses("verb"), tagged_senses("adv"))
    if base is None:  # known to WordNet, never as a noun: unless the captions often end on it ("thumbs up")
        known = word in adj or any(word in d for d in other)
        if not known:  # WordNet does not know it (another language, a name): the captions alone decide
            return counted and last < RARELY_LAST * seen
        return not (counted and last >= RARELY_LAST * seen)
    adjective_first = adj.get(word, -1) > tagged_senses("noun").get(base, 0)
    return adjective_first and counted and last < RARELY_LAST * seen


def no_end_words(words: Iterable[str], captions: Iterable[str]) -> tuple[str, ...]:
    """The words (in the given order) after which a caption may not end, judged with the training captions."""
    seen: Counter[str] = Counter()
    last: Counter[str] = Counter()
    for c in captions:
        toks = tokenize(c)
        seen.update(set(toks))
        last.update(toks[-1:])
    return tuple(w for w in words if may_not_end(w, seen[w], last[w]))
