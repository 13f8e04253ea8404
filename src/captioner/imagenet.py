"""The encoder's 1000 ImageNet classes: WordNet ids, lemmas and glosses, read as data (no timm import)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path


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
    """'a cup', 'an espresso'."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


WORDNET = Path("/usr/share/wordnet")  # Debian's wordnet-base: the WordNet 3.0 database
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
establishment shop commodity creation system product article conveyance
""".split()
)
MAX_UP = 3  # hypernym levels to climb: tabby > domestic cat > cat


def build_hypernym_table(wordnet: Path = WORDNET) -> str:
    """For each ImageNet class, the lemmas of its first-hypernym chain up to the root (from data.noun)."""
    data = wordnet / "data.noun"
    if not data.is_file():
        raise FileNotFoundError(f"{data} not found; install it with `sudo apt-get install wordnet-base`")
    lines = {}
    with open(data, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line[:1].isdigit():
                lines[line[:8]] = line
    out = []
    for c in imagenet_classes():
        chain, offset = [], c.wnid[1:]
        for _ in range(30):
            parts = lines[offset].split(" | ")[0].split()
            n = int(parts[3], 16)
            chain.append("|".join(parts[4 + 2 * i].replace("_", " ") for i in range(n)))
            ptrs = parts[4 + 2 * n + 1 :]
            hyper = [ptrs[i + 1] for i in range(0, len(ptrs), 4) if ptrs[i] in ("@", "@i")]
            if not hyper:
                break
            offset = hyper[0]
        out.append(f"{c.index}\t{' > '.join(chain)}")
    return (
        "# index\tlemmas of the class and its first hypernyms up to the root (WordNet 3.0, Debian wordnet-base)\n"
        + ("\n".join(out) + "\n")
    )


@cache
def hypernym_chains() -> tuple[tuple[tuple[str, ...], ...], ...]:
    """Per class, the lemma tuples from the class itself up to WordNet's root."""
    text = (files("captioner") / "data" / HYPERNYMS).read_text(encoding="utf-8")
    rows = [line.split("\t")[1] for line in text.splitlines() if line and not line.startswith("#")]
    return tuple(tuple(tuple(s.split("|")) for s in row.split(" > ")) for row in rows)


@dataclass(frozen=True)
class Naming:
    """The word chosen for a class and the WordNet path that led to it."""

    word: str
    path: tuple[str, ...]


def basic_name(chain: tuple[tuple[str, ...], ...], known: frozenset[str] | set[str]) -> Naming:
    """Walk from the class up its hypernyms; the first lemma (or its head noun) that is known wins."""
    path: list[str] = []
    for lemmas in chain[: MAX_UP + 1]:
        path.append(lemmas[0])
        for lemma in lemmas:
            words = lemma.lower().split()
            for cand in (" ".join(words), words[-1]):
                if " " not in cand and cand in known and cand not in GENERIC:
                    return Naming(cand, tuple(path))
    return Naming(chain[0][0].lower().split()[-1], (chain[0][0],))  # the class's own head noun


def class_words(known: set[str] | frozenset[str] = frozenset()) -> list[Naming]:
    """A basic-level name for each of the 1000 classes, preferring `known` words (e.g. the caption vocabulary)."""
    vocab = BASIC | frozenset(known)
    return [basic_name(chain, vocab) for chain in hypernym_chains()]
