"""The encoder's 1000 ImageNet classes: WordNet ids, lemmas and glosses, read as data (no timm import)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

from captioner.data.lexicon import WORDNET, ancestors, synset, wordnet_nouns
from captioner.text.vocab import article


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wnid: str  # WordNet 3.0 noun offset, e.g. n02123045
    lemmas: tuple[str, ...]  # ("tabby", "tabby cat")
    gloss: str


@cache
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """All 1000 classes in the order of the classifier's outputs."""
    text = (files("captioner") / "data" / "imagenet_classes.tsv").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        idx, wnid, lemmas, gloss = line.split("\t")
        out.append(ImageNetClass(int(idx), wnid, tuple(x.strip() for x in lemmas.split(",")), gloss))
    return tuple(out)


def with_article(noun: str) -> str:
    """'a cup', 'an espresso', 'a unicycle': the article by text.article's one rule."""
    return f"{article(noun)} {noun}"


HYPERNYMS = "imagenet_hypernyms.tsv"

# Common basic-level nouns a person would say; a class is named by the first of its lemmas, walking up
# its WordNet hypernyms, that is one of these or occurs in the caption data.
BASIC = frozenset(
    """
animal bird fish dog cat horse cow sheep pig goat deer bear monkey ape lion tiger wolf fox rabbit mouse rat
squirrel elephant camel zebra giraffe whale dolphin seal shark snake lizard turtle tortoise frog toad crocodile
spider insect beetle butterfly moth bee ant fly crab lobster shrimp snail worm jellyfish starfish owl eagle duck
goose swan chicken hen parrot penguin flower tree mushroom fruit vegetable apple orange banana lemon strawberry
pineapple corn pepper cabbage broccoli bread cake pizza soup coffee tea wine beer bottle cup mug glass bowl plate
pot pan spoon knife fork chair table bed sofa lamp clock watch phone telephone computer keyboard television
camera radio guitar piano violin drum trumpet flute car truck bus van train tram bicycle motorcycle boat ship
airplane plane helicopter rocket tractor wagon cart ball hat cap shirt dress coat shoe boot bag umbrella
glasses sunglasses book pen pencil hammer saw screwdriver shovel axe ladder bridge house tower castle church
tent fence door window wall mountain volcano beach sea lake river rock stone cliff mask helmet sword gun
cannon candle balloon kite toy doll robot fan stove oven refrigerator sink toilet bathtub bucket basket box
""".split()
)
# Caption words too generic to name an object with; walking stops before reaching them.
GENERIC = frozenset(
    """
entity object whole artifact organism thing unit matter substance abstraction instrumentality construction
structure protection covering device container equipment implement material piece part item food animal
establishment shop commodity creation system product article conveyance vehicle clothing garment cover
machine instrument apparatus appliance mechanism
""".split()
)
MAX_UP = 3  # hypernym levels to climb: tabby > domestic cat > cat


def build_hypernym_table(wordnet: Path = WORDNET) -> str:
    """For each ImageNet class: the lemmas of its first-hypernym chain up to the root, and the head nouns of its
    multi-word lemmas (in the first MAX_UP + 1 synsets) that WordNet confirms as kinds: the head's first sense is
    an ancestor of the class ('sports car' -> car, 'wall clock' -> clock; not 'prairie chicken' -> chicken)."""
    index, data = wordnet_nouns(wordnet)
    out = []
    for c in imagenet_classes():
        chain, offset = [], c.wnid[1:]
        while True:
            _, lemmas, hyper = synset(data[offset])
            chain.append(lemmas)
            if not hyper:
                break
            offset = hyper[0]
        above = ancestors(c.wnid[1:], data)
        heads = {
            lemma.split()[-1]
            for lemmas in chain[: MAX_UP + 1]
            for lemma in lemmas
            if " " in lemma and index.get(lemma.split()[-1], [""])[0] in above
        }
        out.append(f"{c.index}\t{' > '.join('|'.join(x) for x in chain)}\t{','.join(sorted(heads))}")
    return (
        "# index\tlemmas of the class and its first hypernyms up to the root\tconfirmed head nouns "
        "(WordNet 3.0, Debian wordnet-base; regenerate with build_hypernym_table)\n" + ("\n".join(out) + "\n")
    )


@dataclass(frozen=True)
class Hypernyms:
    chain: tuple[tuple[str, ...], ...]  # lemma tuples from the class itself up to WordNet's root
    heads: frozenset[str]  # head nouns of multi-word lemmas that WordNet confirms as kinds of the class


@cache
def hypernym_chains() -> tuple[Hypernyms, ...]:
    """Per class, its hypernym chain and confirmed head nouns."""
    text = (files("captioner") / "data" / HYPERNYMS).read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return tuple(
        Hypernyms(tuple(tuple(s.split("|")) for s in row.split(" > ")), frozenset(filter(None, heads.split(","))))
        for _, row, heads in rows
    )


@dataclass(frozen=True)
class Naming:
    """The word chosen for a class and the WordNet path that led to it."""

    word: str
    path: tuple[str, ...]


def _candidates(lemmas: tuple[str, ...], heads: frozenset[str]) -> list[str]:
    """One-word lemmas, then confirmed head nouns of the multi-word ones."""
    words = [lemma.split() for lemma in lemmas]
    return [w[0].lower() for w in words if len(w) == 1] + [w[-1].lower() for w in words if w[-1].lower() in heads]


def basic_name(h: Hypernyms, known: frozenset[str] | set[str]) -> Naming:
    """A name a person would say for one class.

    1. the class's own one-word lemma or confirmed head noun, when the caption data or BASIC knows it
       ('espresso', 'goose', 'sports car' -> car);
    2. else the first known noun that is not GENERIC, up to MAX_UP hypernyms above ('tench' > 'cyprinid fish'
       -> fish, 'prairie chicken' > grouse > gallinaceous bird -> 'bird');
    3. else the class's own word, however rare ('tricycle', 'binoculars'): copied as it is."""
    own = _candidates(h.chain[0], h.heads)
    for cand in own:
        if cand in known and cand not in GENERIC:
            return Naming(cand, (h.chain[0][0],))
    path = [h.chain[0][0]]
    for lemmas in h.chain[1 : MAX_UP + 1]:
        path.append(lemmas[0])
        for cand in _candidates(lemmas, h.heads):
            if cand in known and cand not in GENERIC:
                return Naming(cand, tuple(path))
    return Naming(own[0] if own else h.chain[0][0].lower().split()[-1], (h.chain[0][0],))


def class_words(known: set[str] | frozenset[str] = frozenset()) -> list[Naming]:
    """A basic-level name for each of the 1000 classes, preferring `known` words (e.g. the caption vocabulary)."""
    vocab = BASIC | frozenset(known)
    return [basic_name(h, vocab) for h in hypernym_chains()]


# WordNet lexicographer files of things one can see: animal, artifact, food, object, plant (any sense), and
# body and person (the first sense only, so that 'cat' does not accept the slang 'guy').
CONCRETE = frozenset({5, 6, 13, 17, 20})
FIRST_ONLY = frozenset({8, 18})


def naming_nouns(noun: str, levels: int = MAX_UP + 1, wordnet: Path = WORDNET) -> frozenset[str]:
    """Words that name `noun` correctly: the noun and its head noun, its one-word synonyms in the senses that
    are visible things, and basic-level nouns (BASIC) among those senses' hypernyms up to `levels` steps up,
    where the basic noun's own first sense is on the path ('cherry' is produce, 'garden truck', but not 'truck').

    'gander' -> {gander, goose, bird}; 'tape measure' -> {tape, tapeline}."""
    index, data = wordnet_nouns(wordnet)
    out = {noun.lower().split()[-1]}
    senses = index.get(noun.lower().replace(" ", "_"), [])
    for k, sense in enumerate(senses):
        lexfile = synset(data[sense])[0]
        if lexfile not in CONCRETE and not (k == 0 and lexfile in FIRST_ONLY):
            continue
        path = ancestors(sense, data)
        frontier = [sense]
        for level in range(levels + 1):
            nxt = []
            for off in frontier:
                _, lemmas, hyper = synset(data[off])
                for lemma in lemmas:
                    head = lemma.split()[-1]
                    if level == 0 and " " not in lemma:
                        out.add(lemma)
                    elif level > 0 and head in BASIC and index.get(head, [""])[0] in path:
                        out.add(head)
                nxt += hyper
            frontier = nxt
    return frozenset(out - GENERIC)
