"""prepare(): any supported dataset format -> manifest.jsonl + dataset.json + vocab.json."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from captioner.data import lexicon
from captioner.data.importers import IMPORTERS
from captioner.data.manifest import UNDETERMINED, Item, write_manifest
from captioner.data.seed import read_codes
from captioner.errors import CaptionerError
from captioner.features.encoders import external_spec, googlenet_spec
from captioner.features.extract import write_store
from captioner.text.endings import no_end_words
from captioner.text.vocab import DETERMINERS, GENDERED_MAX, INDEFINITE, NOUN_AT, Vocab, tokenize, vocab_stats

log = logging.getLogger(__name__)


def check_images(items: list[Item], root: Path, show: int = 5) -> None:
    """Raise naming the first few manifest images that do not exist under root, with a count."""
    missing = [it.image for it in items if not (root / it.image).is_file()]
    if missing:
        head = ", ".join(missing[:show])
        more = f" and {len(missing) - show} more" if len(missing) > show else ""
        raise CaptionerError(f"{len(missing)} of {len(items)} images are missing under {root}: {head}{more}")


def store_external(path: Path, items: list[Item], out: Path) -> None:
    """Check a user's .npy of features against the items and store it with an 'external' encoder spec."""
    try:
        rows = np.load(path, mmap_mode="r", allow_pickle=False)
    except (FileNotFoundError, ValueError) as e:
        raise CaptionerError(f"--features {path}: not a readable numeric .npy file ({e})") from None
    if rows.ndim != 2 or rows.dtype.kind not in "fiu" or len(rows) != len(items):
        raise CaptionerError(
            f"--features {path}: shape {rows.shape} {rows.dtype}, expected ({len(items)}, D) numbers: "
            "one row per imported image, in the dataset's order"
        )
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha1").hexdigest()[:16]  # streamed: the file may be gigabytes
    write_store(out, [it.image for it in items], "pooled", rows, external_spec(path, digest, rows.shape[1]))


def build_vocab(items: list[Item], min_count: int = 5) -> tuple[Vocab, dict[str, float]]:
    """Vocabulary from the training split's captions, with its statistics; multilingual (a token per language,
    each language's words: text.Vocab) unless no caption's language is known."""
    pairs = [(c, t) for it in items if it.split == "train" for c, t in zip(it.captions, it.langs, strict=True)]
    if not pairs:
        raise CaptionerError("no training captions: the manifest has no items in split 'train'")
    taught = taught_languages(Counter(t for _, t in pairs))
    pairs = [(c, t) for c, t in pairs if not taught or t in taught]
    train, langs = [c for c, _ in pairs], [t for _, t in pairs]
    vocab = Vocab.build(train, min_count, langs if taught else None)
    no_end = no_end_words(vocab.itos[4 + len(vocab.langs) :], train)
    vocab = with_concepts(Vocab(vocab.itos, min_count, no_end, vocab.langs), items)
    return vocab, vocab_stats(vocab, train)


def with_concepts(vocab: Vocab, items: list[Item]) -> Vocab:
    """The vocabulary with its concept tables from the training captions: Vocab.translations and Vocab.genders
    (in the languages it writes), Vocab.countable (from the English captions, all of them in a monolingual
    vocabulary, and WordNet's verdict on the English words no caption says: a copy model's ImageNet class names)
    and Vocab.repeatable."""
    known = set(vocab.itos)
    english = [c for it in items if it.split == "train" for c, t in zip(it.captions, it.langs, strict=True)
               if t == "en" or not vocab.langs]  # fmt: skip
    words = {t: d for t, d in word_translations(items, known).items() if t in vocab.langs}
    genders = {t: d for t, d in noun_genders(items, known).items() if t in vocab.langs}
    english_words = {vocab.itos[i] for i in vocab.langs.get("en", ())} if vocab.langs else known
    return dataclasses.replace(vocab, translations=words, countable=countable_nouns(english, known, english_words),
                               repeatable=repeated_words(items, known), genders=genders)  # fmt: skip


def noun_genders(items: list[Item], known: set[str]) -> dict[str, dict[str, str]]:
    """Per language of text.INDEFINITE, nouns and their indefinite article, both in the vocabulary: the article
    most training captions of at most GENDERED_MAX words that start with one give the noun where NOUN_AT puts it
    ("Eine schwarze Katze." -> katze: eine; "Une étoile rouge." -> étoile: une); a tie gives no row ("Eine Hose."
    against Tux Paint's "Ein weiße Hose.")."""
    seen: Counter[tuple[str, str, str]] = Counter()
    for it in items:
        if it.split != "train":
            continue
        for c, t in zip(it.captions, it.langs, strict=True):
            w = tokenize(c)
            # German capitalises nouns: a capitalised middle word is a noun, so the last is not the head
            # ("Eine Tasse Espresso")
            measure = t == "de" and any(x[:1].isupper() for x in c.split()[1:-1])
            if t in INDEFINITE and 2 <= len(w) <= GENDERED_MAX and w[0] in INDEFINITE[t] and set(w) <= known:
                if not measure:
                    seen[t, w[NOUN_AT[t]], w[0]] += 1
    return {t: dict(sorted(d.items())) for t, d in sorted(_most_said(seen, ties=False).items())}


def _most_said(counts: Counter[tuple[str, str, str]], ties: bool = True) -> dict[str, dict[str, str]]:
    """Per language, each key's most counted value over (language, key, value) counts; a tie goes to the value
    first in alphabetical order, or with ties=False leaves the key out."""
    best: dict[str, dict[str, tuple[int, str]]] = {}
    tied: set[tuple[str, str]] = set()
    for (lang, key, value), n in sorted(counts.items()):
        old = best.setdefault(lang, {}).get(key)
        if old is not None and n == old[0]:
            tied.add((lang, key))
        if old is None or n > old[0]:
            best[lang][key] = (n, value)
            tied.discard((lang, key))
    return {lang: {key: v for key, (_, v) in d.items() if ties or (lang, key) not in tied} for lang, d in best.items()}


MIN_REPEATS = 2  # a word said twice in a row in this many training captions may be said so


def repeated_words(items: list[Item], known: set[str]) -> tuple[str, ...]:
    """The vocabulary's words that at least MIN_REPEATS training captions say twice in a row: CLDR's "family: man,
    man, boy, boy", "tuk tuk"; not the "fish fish" of one stray title."""
    counts: Counter[str] = Counter()
    for it in items:
        if it.split == "train":
            for c in it.captions:
                w = tokenize(c)
                counts.update({a for a, b in zip(w, w[1:], strict=False) if a == b and a in known})
    return tuple(sorted(w for w, n in counts.items() if n >= MIN_REPEATS))


MIN_LANGUAGE_SHARE = 0.01  # a language with fewer of the training captions is too thin to learn to write


def taught_languages(counts: Counter[str]) -> set[str]:
    """The languages a model learns to write (a token each): those with at least MIN_LANGUAGE_SHARE of the
    training captions whose language is known. Empty when none is known (a monolingual vocabulary). Captions
    in the other languages, and of unknown language, are left out of the vocabulary and of training."""
    known = {t: n for t, n in counts.items() if t != UNDETERMINED}
    taught = {t for t, n in known.items() if n >= MIN_LANGUAGE_SHARE * sum(known.values())}
    left = sorted(set(counts) - taught)
    if taught and left:
        log.info("captions in %s are left out of training: under %.0f%% of the training captions or of unknown "
                 "language", ", ".join(f"{t} ({counts[t]})" for t in left), 100 * MIN_LANGUAGE_SHARE)  # fmt: skip
    return taught


ARTICLES = {"a", "an", "the"}


# An aligned word pair's least Dice coefficient over the parallel captions, and least count of caption pairs that
# say both: chosen on the validation split's one-word caption pairs (docs/data.md: precision and coverage)
ALIGN_DICE = 0.5
ALIGN_MIN = 2


def word_translations(items: list[Item], known: set[str]) -> dict[str, dict[str, str]]:
    """Per language, English words and their translations, both in the vocabulary: each one-word English training
    caption's most frequent one-word caption of the same image in that language (ties alphabetical; "A cat." /
    "Кошка." gives cat -> кошка; Tux Paint's translations and CLDR's emoji names make such pairs); then, for
    English words no such pair translates, the word of that language that most often shares a parallel caption
    with it ("up arrow" / "стрелка вверх", "left arrow" / "стрелка влево": arrow -> стрелка) by the Dice
    coefficient, where it reaches ALIGN_DICE over at least ALIGN_MIN caption pairs."""
    pairs: Counter[tuple[str, str, str]] = Counter()
    parallel: list[tuple[str, set[str], set[str]]] = []  # (language, English words, its words) per caption pair
    for it in items:
        if it.split != "train":
            continue
        toks = [(t, [w for w in tokenize(c) if w not in ARTICLES] if t == "en" else tokenize(c))
                for c, t in zip(it.captions, it.langs, strict=True)]  # fmt: skip
        english = {w[0] for t, w in toks if t == "en" and len(w) == 1 and w[0] in known}
        pairs.update((t, e, w[0]) for e in english for t, w in toks if t != "en" and len(w) == 1 and w[0] in known)
        for e in (set(w) & known for t, w in toks if t == "en"):
            parallel += [(t, e, set(w) & known) for t, w in toks if t not in ("en", UNDETERMINED)]
    out = _most_said(pairs)
    for lang, aligned in _aligned(parallel).items():
        out[lang] = {**aligned, **out.get(lang, {})}  # one-word pairs first
    return {lang: dict(sorted(d.items())) for lang, d in sorted(out.items())}


def _aligned(parallel: list[tuple[str, set[str], set[str]]]) -> dict[str, dict[str, str]]:
    """Per language, English words and the words they align with over the caption pairs: each other's best
    partner by the Dice coefficient (ties: more pairs, then alphabetical), reaching ALIGN_DICE over at least
    ALIGN_MIN pairs. Both ways ("kitchen" -> "нож" from "kitchen knife" fails: "нож"'s partner is "knife")."""
    ne: Counter[tuple[str, str]] = Counter()
    nf: Counter[tuple[str, str]] = Counter()
    both: Counter[tuple[str, str, str]] = Counter()
    for lang, english, words in parallel:
        ne.update((lang, e) for e in english)
        nf.update((lang, f) for f in words)
        both.update((lang, e, f) for e in english for f in words)
    best_e: dict[tuple[str, str], tuple[tuple[float, int, str], str]] = {}
    best_f: dict[tuple[str, str], tuple[tuple[float, int, str], str]] = {}
    for (lang, e, f), n in both.items():
        dice = 2 * n / (ne[lang, e] + nf[lang, f])
        if n < ALIGN_MIN or dice < ALIGN_DICE:
            continue
        if (lang, e) not in best_e or (-dice, -n, f) < best_e[lang, e][0]:
            best_e[lang, e] = ((-dice, -n, f), f)
        if (lang, f) not in best_f or (-dice, -n, e) < best_f[lang, f][0]:
            best_f[lang, f] = ((-dice, -n, e), e)
    out: dict[str, dict[str, str]] = {}
    for (lang, e), (_, f) in best_e.items():
        if best_f[lang, f][1] == e:
            out.setdefault(lang, {})[e] = f
    return out


def countable_nouns(english: list[str], known: set[str], more: Iterable[str] = ()) -> tuple[str, ...]:
    """The words of the English captions, and the English words `more` (say, a copy model's class names no caption
    says), in the vocabulary, that are countable nouns: WordNet's and the word list's (data.lexicon.countable_nouns:
    "hammer", "horse", "jacket"), and caption words that end a caption begun by "a"/"an" and follow "a"/"an"
    somewhere ("a christmas tree" and "a tree" make "tree" countable; "recycled", ending "a box for trash that can
    be recycled", is not)."""
    after_article, heads, words = set(), set(), set()
    for c in english:
        w = tokenize(c)
        words.update(w)
        after_article.update(b for a, b in zip(w, w[1:], strict=False) if a in ("a", "an"))
        if len(w) > 1 and w[0] in ("a", "an"):
            heads.add(w[-1])
    words = (words | set(more)) & known
    return tuple(sorted((after_article & heads | lexicon.countable_nouns(words)) & words - DETERMINERS))


def summarize(items: list[Item]) -> dict[str, object]:
    """Counts per split and source, and the caption length distribution."""
    lengths = sorted(len(tokenize(c)) for it in items for c in it.captions)
    pct = {p: lengths[min(len(lengths) - 1, int(p / 100 * len(lengths)))] for p in (10, 50, 90, 99)}
    return {
        "images": len(items),
        "captions": len(lengths),
        "splits": dict(Counter(it.split for it in items)),
        "sources": dict(Counter(it.source for it in items)),
        "source_splits": {
            src: dict(Counter(it.split for it in items if it.source == src))
            for src in sorted({it.source for it in items})
        },
        "caption_tokens_percentiles": pct,
        "languages": dict(Counter(lang for it in items for lang in it.langs).most_common()),
        "caption_tokens_mean": round(sum(lengths) / max(1, len(lengths)), 2),
    }


def prepare(
    fmt: str,
    src: str | Path,
    out: str | Path,
    images: str | Path | None = None,
    min_count: int = 5,
    check: bool = True,
    features: str | Path | None = None,
    **options: object,
) -> dict[str, object]:
    """Import `src` in format `fmt` into out/ and build the vocabulary; returns a summary.

    features: an .npy of precomputed features, one row per imported item in order, stored as out/features
    (encoder 'external'). The seed format stores its GoogLeNet codes there itself. Either way the dataset
    needs no image files."""
    if fmt not in IMPORTERS:
        raise CaptionerError(f"unknown format {fmt!r}; choose from {', '.join(IMPORTERS)}")
    src = Path(src)
    if not src.exists():
        raise CaptionerError(f"{src}: not found")
    root = Path(images) if images else (src if src.is_dir() else src.parent)
    items = list(IMPORTERS[fmt](src, **options))
    if not items:
        raise CaptionerError(f"{src}: no images with captions found")
    if check and fmt != "seed" and features is None:
        check_images(items, root)
    vocab, stats = build_vocab(items, min_count)
    splits = {it.split for it in items}
    if "val" not in splits:
        log.warning(
            "%s: no image is in split 'val' (%s only): training cannot measure CIDEr-D or choose its best epoch "
            "by it; use --split-ratio, e.g. 0.8,0.1,0.1",
            src,
            ", ".join(sorted(splits)),
        )
    if stats["unk_rate"] > 0.5:
        log.warning(
            "%.0f%% of training words are rarer than --min-count %d and become #UNK#: lower it, or add captions",
            100 * stats["unk_rate"],
            min_count,
        )
    out = Path(out)
    if fmt == "seed":
        codes = read_codes(src, len(items))
        write_store(out / "features", [it.image for it in items], "logits", codes, googlenet_spec(floor=True))
    elif features is not None:
        store_external(Path(features), items, out / "features")
    allow = bool(options.get("allow_outside_root"))
    write_manifest(out, items, root, format=fmt, source=str(src), **({"allow_outside_root": True} if allow else {}))
    vocab.save(out / "vocab.json")
    return {**summarize(items), "vocab": stats}
