"""How many of bench/truth.py's named photos could any caption rule name with this encoder and model?

    python bench/name_headroom.py CHECKPOINT --data DATA

Issue 18 asks for 60% of the named photos (bench/naming.photo_set: 12 scikit-image photos and the Tux Paint
photo cut-outs of the val and test splits) named. For each photo this counts whether its object is named
(naming.named: the noun, a synonym or a basic-level hypernym) by each source of words a caption could draw on:
- the classifier's top-k ImageNet classes (their basic-level words, imagenet.class_words), k = 1, 5 and 10;
- the checkpoint's 10-best captions (beam 10, truth.py's rules), and its first caption (what it says);
- the first captions of the 5 training images nearest in the encoder's pooled features (cosine);
and the union of the top-5 classes, the 10-best and the neighbours: an oracle that always picks a right
candidate if there is one, so no rule choosing among them (without knowing the answer) can name more. Last, a
rule that could choose: the 10-best reranked as bench/name_rerank.py reranks its 3-best (candidates, pick: by
confidence, the mean log-probability per word, plus a weight times the summed probability of the offered top-5
classes whose word the caption says; the first caption stays where truth.py's rules fixed it), for each weight
in RERANK_WEIGHTS,
and the best share over the weights: chosen on the photos themselves, so an upper bound for such a reranker,
not a figure a product could claim."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from args import checkpoint_and_data  # noqa: E402
from name_rerank import candidates, pick  # noqa: E402
from naming import named, photo_set  # noqa: E402

from captioner.api import Captioner  # noqa: E402
from captioner.data.manifest import read_manifest  # noqa: E402
from captioner.decode.rules import look  # noqa: E402
from captioner.evaluate import baselines as bl  # noqa: E402
from captioner.features.extract import FeatureStore  # noqa: E402
from captioner.features.imagenet import class_words, with_article  # noqa: E402

NEIGHBOURS = 5
N_BEST = 10
RERANK_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0)


def main() -> None:
    checkpoint, data = checkpoint_and_data(__doc__)
    photos = photo_set(data)
    nouns = [n for _, n, _ in photos]
    cap = Captioner.load(checkpoint)
    x = np.stack([cap.preprocess(im) for im, _, _ in photos])
    _, logits = cap.runtime.encode(x)
    order = np.argsort(-logits, 1)
    words = class_words(set(cap.runtime.vocab.itos[4:]))

    def classes(k: int) -> list[list[str]]:
        return [[with_article(words[int(c)].word) for c in row[:k]] for row in order]

    st, _ = cap.runtime.encode(x)
    pool = candidates(st, look(x, cap.runtime.spec), cap.rules(), cap.runtime.max_len, N_BEST)
    nbest = [[cap.runtime.vocab.decode(c.tokens, articles=True) for c in caps] for caps, _, _ in pool]
    first = [cs[:1] for cs in nbest]
    store = FeatureStore(data / "features")
    train = [it for it in read_manifest(data) if it.split == "train" and it.image in store.row]
    pooled = cap.runtime.encoder.forward_features(torch.from_numpy(x)).pooled.numpy()
    near = bl.nearest(store.get("pooled", [store.row[it.image] for it in train]), pooled, k=NEIGHBOURS)
    neighbours = [[train[int(j)].captions[0] for j in row] for row in near]
    sources = {
        "top-1 class": classes(1),
        "top-5 classes (truth.py's ceiling)": classes(5),
        "top-10 classes": classes(10),
        "the checkpoint's caption (beam 10)": first,
        f"its {N_BEST}-best captions": nbest,
        f"{NEIGHBOURS} nearest training images' captions": neighbours,
    }
    union = [c5 + nb + ne for c5, nb, ne in zip(classes(5), nbest, neighbours, strict=True)]
    sources["oracle: top-5 classes, n-best or neighbours"] = union
    print(f"{len(photos)} named photos")
    for name, cands in sources.items():
        hit = [any(named(c, n) for c in cs) for cs, n in zip(cands, nouns, strict=True)]
        print(f"  {name:44s} {np.mean(hit):6.1%} ({sum(hit)})")
    never = [p for (_, _, p), cs, n in zip(photos, union, nouns, strict=True) if not any(named(c, n) for c in cs)]
    print(f"named by no candidate ({len(never)}): {', '.join(Path(p).stem for p in never)}")
    best = 0.0
    for weight in RERANK_WEIGHTS:
        picks = [cap.runtime.vocab.decode(pick(c, weight).tokens, articles=True) for c in pool]
        share = np.mean([named(c, n) for c, n in zip(picks, nouns, strict=True)])
        best = max(best, share)
        print(f"  {N_BEST}-best reranked by confidence + {weight:g} x class support: {share:6.1%}")
    print(f"the best reranking, its weight chosen on these very photos: {best:.1%}")


if __name__ == "__main__":
    main()
