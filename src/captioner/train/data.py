"""Training data: the manifest's captions encoded per feature row for the train and val splits, and the
validation references per language the model writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from captioner.config import Config
from captioner.corpus.prepare import with_concepts
from captioner.data.manifest import Item, read_manifest
from captioner.errors import CaptionerError
from captioner.features.extract import FeatureStore
from captioner.features.imagenet import class_words
from captioner.models import feature_kind
from captioner.text.endings import no_end_words
from captioner.text.vocab import END_IX, UNK_IX, Vocab

log = logging.getLogger(__name__)
SPLITS = ("train", "val")


@dataclass
class TrainData:
    """Captions as index lists, grouped by feature row, for the train and val splits."""

    store: FeatureStore
    vocab: Vocab
    kind: str  # which feature array: pooled, logits or grid
    train_rows: np.ndarray  # (N,) feature rows of training images
    train_caps: list[list[list[int]]]  # per training image, its encoded captions
    val_rows: np.ndarray
    val_caps: list[list[list[int]]]
    val_refs: dict[str, list[list[str]]]  # per language written, each val image's raw captions in it, for BLEU/CIDEr
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # (P, 2) image, caption
    class_word: list[int] | None = None  # copy model: word id naming each ImageNet class
    train_refs: list[list[str]] = field(default_factory=list)  # raw training captions, for SCST rewards


def load_data(cfg: Config) -> TrainData:
    """Read manifest, vocabulary and features named by the config, and check they fit together."""
    t = cfg.train
    if not t.data:
        raise CaptionerError("config field train.data: set it to a folder written by `captioner prepare`")
    data = Path(t.data)
    items = read_manifest(data)
    vocab = Vocab.load(data / "vocab.json")
    store = FeatureStore(t.features or data / "features")
    kind = feature_kind(cfg.model)
    class_word = None
    if cfg.model.kind == "copy":  # label words join the vocabulary, so captions can contain them too
        vocab, class_word = extend_with_labels(vocab)
        vocab = with_concepts(vocab, items)  # the concept tables again, the label words among them
    if any(k not in store.arrays for k in kind.split("+")):
        held = ", ".join(store.arrays)
        raise CaptionerError(
            f"{store.path}: no '{kind}' features (it holds {held}); set model.feature to one of those, "
            "or run `captioner extract --grid` for attention"
        )
    # images with features and a caption in a language the vocabulary teaches (prepare.taught_languages)
    split = {s: [it for it in items if it.split == s and it.image in store.row and _known(vocab, it)] for s in SPLITS}
    if not split["train"]:
        raise CaptionerError(f"{data}: no training images with features and a caption in a language its vocabulary has")
    d = TrainData(
        store,
        vocab,
        kind,
        np.array([store.row[it.image] for it in split["train"]]),
        [_encode(vocab, it, t.max_len) for it in split["train"]],
        np.array([store.row[it.image] for it in split["val"]], dtype=np.int64),
        [_encode(vocab, it, t.max_len) for it in split["val"]],
        _val_refs(vocab, split["val"]),
    )
    d.class_word = class_word
    d.train_refs = [it.captions for it in split["train"]]
    if not split["val"]:
        log.warning(
            "%s: no validation images, so no CIDEr-D is measured; 'best' is the epoch with the lowest training loss "
            "(prepare with --split-ratio to hold some images out)",
            data,
        )
    words = [w for caps in d.train_caps for c in caps for w in c[1:] if w != END_IX]
    unk = sum(w == UNK_IX for w in words) / max(1, len(words))
    if unk > 0.5:
        log.warning("%.0f%% of training words are #UNK#: lower --min-count when preparing, or add captions", 100 * unk)
    d.pairs = np.array([(i, j) for i, caps in enumerate(d.train_caps) for j in range(len(caps))], np.int64)
    return d


def _encode(vocab: Vocab, it: Item, max_len: int) -> list[list[int]]:
    """The item's captions in the languages the vocabulary knows, each starting with its language token."""
    return [
        vocab.encode(c, max_len, t if vocab.langs else None)
        for c, t in zip(it.captions, it.langs, strict=True)
        if not vocab.langs or t in vocab.langs
    ]


def _known(vocab: Vocab, it: Item) -> bool:
    """The item has a caption in a language the vocabulary knows (training and validation skip the others)."""
    return not vocab.langs or any(t in vocab.langs for t in it.langs)


def _val_refs(vocab: Vocab, items: list[Item]) -> dict[str, list[list[str]]]:
    """Validation's references per language the model writes: each image's captions in it (all of them in a
    monolingual vocabulary, under its language, Vocab.language)."""
    if not vocab.langs:
        return {vocab.language(): [it.captions for it in items]}
    return {
        tag: [[c for c, t in zip(it.captions, it.langs, strict=True) if t == tag] for it in items]
        for tag in vocab.langs
    }


def extend_with_labels(vocab: Vocab) -> tuple[Vocab, list[int]]:
    """The vocabulary plus the basic-level names of the 1000 ImageNet classes (English words), and each class's
    word id."""
    names = class_words(set(vocab.itos[4:]))
    extra = sorted({n.word for n in names} - set(vocab.itos))
    itos = vocab.itos + tuple(extra)
    langs = dict(vocab.langs)
    if "en" in langs:
        langs["en"] = langs["en"] + tuple(range(len(vocab.itos), len(itos)))
    vocab = Vocab(itos, vocab.min_count, vocab.no_end + no_end_words(extra, []), langs, vocab.translations)
    return vocab, [vocab.stoi[n.word] for n in names]
