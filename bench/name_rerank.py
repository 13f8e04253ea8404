"""Should photos' captions be reranked by the classifier's support? Chosen on validation, never on the photos.

    python bench/name_rerank.py CHECKPOINT --data DATA

The rule tried: for an image read as a photo whose first caption truth.py's rules did not fix (no people found,
no confident class), order its beam-3 n-best by confidence (mean log-probability per word) plus WEIGHT times
the caption's class support: the summed probability of the offered top-5 classes whose word it says. For each
weight in WEIGHTS it prints validation CIDEr-D and BLEU-4 (English references, beam 3, pycocoevalcap) and how
many validation captions change; then the share of bench/truth.py's named photos whose caption names the object
(bench/name_headroom.py counts the same with the 10-best)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from args import checkpoint_and_data  # noqa: E402
from naming import named, photo_set  # noqa: E402

from captioner.api import Captioner  # noqa: E402
from captioner.data.manifest import dataset_root, read_manifest  # noqa: E402
from captioner.decode.rules import Rules, Sight, decode, look  # noqa: E402
from captioner.decode.search import Caption, Stepper  # noqa: E402
from captioner.decode.stepper import TorchStepper  # noqa: E402
from captioner.evaluate.run import in_language, load_split, split_sights  # noqa: E402
from captioner.features.extract import FeatureStore  # noqa: E402
from captioner.models import feature_kind  # noqa: E402
from captioner.text.metrics import coco_metrics  # noqa: E402
from captioner.train.checkpoint import load_checkpoint  # noqa: E402

WEIGHTS = (0.0, 1.0, 2.0, 5.0, 10.0, 100.0)
BEAM = 3


def candidates(
    st: Stepper, sights: list[Sight], rules: Rules, max_len: int, beam: int = BEAM
) -> list[tuple[list[Caption], np.ndarray | None, bool]]:
    """Per image: its beam-`beam` n-best under truth.py's rules, the class support of each, and whether the rule
    may reorder them (a photo whose first caption the rules did not fix: no people found, no confident class)."""
    offered = st.offered()
    nbest = decode(st, sights, rules, max_len, beam, beam)
    out = []
    for i, (caps, s) in enumerate(zip(nbest, sights, strict=True)):
        if offered is None:
            out.append((caps, None, False))
            continue
        p, w = offered[0][i], offered[1][i]
        support = np.array([float(p[np.isin(w, c.tokens)].sum()) for c in caps])
        free = s.photo and not s.people and not rules.confident(offered, i)
        out.append((caps, support, free))
    return out


def pick(cands: tuple[list[Caption], np.ndarray | None, bool], weight: float) -> Caption:
    """The caption with the best confidence + weight x class support, where the rule may reorder; else the first."""
    caps, support, free = cands
    if not free or support is None:
        return caps[0]
    return caps[int(np.argmax(np.array([c.confidence for c in caps]) + weight * support))]


def main() -> None:
    checkpoint, data = checkpoint_and_data(__doc__)
    ck, store = load_checkpoint(checkpoint), FeatureStore(data / "features")
    sp = load_split(in_language(read_manifest(data), "en"), store, "val")
    sights = split_sights(ck, sp, dataset_root(data))
    assert sights is not None, "the validation images are missing"
    rules = Rules.for_vocab(ck.vocab, ck.config.model.name_threshold)
    kind, cands = feature_kind(ck.config.model), []
    for s in range(0, len(sp.rows), 128):
        feats = torch.from_numpy(store.get(kind, sp.rows[s : s + 128]))
        st = TorchStepper(ck.model, feats, ck.vocab.no_end_mask())
        cands += candidates(st, sights[s : s + 128], rules, ck.config.train.max_len)
    refs = {i: it.captions for i, it in zip(sp.ids, sp.items, strict=True)}
    print(f"validation: {len(sp.ids)} images, {sum(c[2] for c in cands)} photos the rule may rerank")
    for weight in (None, *WEIGHTS):  # None: no reranking (truth.py as it is)
        picks = [c[0][0] if weight is None else pick(c, weight) for c in cands]
        hyps = {i: ck.vocab.decode(c.tokens, articles=True) for i, c in zip(sp.ids, picks, strict=True)}
        m = coco_metrics(refs, hyps, meteor=False)
        changed = sum(p is not c[0][0] for p, c in zip(picks, cands, strict=True))
        label = "none" if weight is None else f"{weight:g}"
        print(f"  weight {label:>5s}: CIDEr-D {m['CIDEr-D']:.6f}  BLEU-4 {m['BLEU-4']:.4f}  ({changed} changed)")
    photos = photo_set(data)
    cap = Captioner.load(checkpoint)
    x = np.stack([cap.preprocess(im) for im, _, _ in photos])
    st, _ = cap.runtime.encode(x)
    pc = candidates(st, look(x, cap.runtime.spec), cap.rules(), cap.runtime.max_len)
    for weight in WEIGHTS:
        hits = [
            named(cap.runtime.vocab.decode(pick(c, weight).tokens, articles=True), n)
            for c, (_, n, _) in zip(pc, photos, strict=True)
        ]
        print(f"  weight {weight:5g}: named photos {np.mean(hits):.1%}")


if __name__ == "__main__":
    main()
