"""Does the caption name the main object? A photo-naming check on real photos, not tuned on.

    python bench/naming.py --plain runs/showtell/best --copy runs/copy/best [runs/copy-s1/best ...] --data runs/open

Photos: scikit-image's real photos (each loader's docstring says what it shows) and the photo cut-outs
among the Tux Paint stamps in the corpus's val and test splits (raster stamps outside 'cartoon' folders with
more than 1,000 colours). Each photo has the noun(s) of its main object, written by hand from the loader's
docstring or the stamp's caption (TUXPAINT below; a stamp missing there falls back to its caption's last word).
A caption names the object when it contains one of the words `naming_nouns` accepts for that noun: the noun,
its WordNet synonyms, or a basic-level noun among its hypernyms ('gander' -> goose, bird). For each system it
prints the share of images whose caption names the object: the plain decoder, the copy decoder, nearest-neighbour
retrieval from the training split, and the classifier head alone ("a <basic name of the top-1 class>").
It also prints the copy gate's mean value on those photos and on drawings (OpenClipart and OpenMoji test
images), to show how far the copy path trusts ImageNet labels on each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from common import SKIMAGE, named, photo_set

from captioner.api import Captioner
from captioner.data.manifest import dataset_root, read_manifest
from captioner.evaluate import baselines as bl
from captioner.features.extract import FeatureStore
from captioner.features.imagenet import class_words, with_article
from captioner.features.images import open_image
from captioner.text.vocab import START_IX


@torch.inference_mode()
def mean_gate(cap: Captioner, x: np.ndarray) -> float:
    """Mean copy-gate value over the words of the copy decoder's greedy captions."""
    m = cap.runtime.ck.model
    f = cap.runtime.encoder.forward_features(torch.from_numpy(x))
    feats = torch.cat([f.pooled, f.logits], 1).float()
    results = cap.caption_tensors(x, beam=1)
    gates = []
    for i, r in enumerate(results):
        ids = [START_IX] + [cap.runtime.vocab.stoi[w] for w in r.words]
        s = m.init_state(feats[i : i + 1])
        out, _ = m.lstm(m.embed(torch.tensor([ids])), (s["h"][None], s["c"][None]))
        g = torch.sigmoid(m.gate(torch.cat([out[0], s["copy_p"].expand(len(ids), -1)], -1)))
        gates.append(float(g.mean()))
    return float(np.mean(gates))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plain", required=True)
    ap.add_argument("--copy", required=True, nargs="+", help="one or more copy checkpoints (e.g. seeds)")
    ap.add_argument("--data", required=True, help="the open corpus the models were trained on")
    ap.add_argument("--name-threshold", type=float, help="override the copy checkpoints' model.name_threshold")
    a = ap.parse_args()
    photos = photo_set(Path(a.data))
    plain = Captioner.load(a.plain)
    copies = [Captioner.load(c, name_threshold=a.name_threshold) for c in a.copy]
    copy = copies[0]
    x = np.stack([copy.preprocess(img) for img, _, _ in photos])
    feats = copy.runtime.encoder.forward_features(torch.from_numpy(x))
    items = [it for it in read_manifest(a.data) if it.split == "train"]
    store = FeatureStore(Path(a.data) / "features")
    train_feats = store.get("pooled", [store.row[it.image] for it in items if it.image in store.row])
    train_caps = [it.captions for it in items if it.image in store.row]
    nn = bl.nearest(train_feats, feats.pooled.numpy(), k=1)
    names = class_words(set(copy.runtime.vocab.itos[4:]))
    copy_names = [f"copy decoder (beam 3){f' #{i + 1}' if len(copies) > 1 else ''}" for i in range(len(copies))]
    systems = {
        "plain decoder (beam 3)": [r.caption for r in plain.caption_tensors(x)],
        **{n: [r.caption for r in c.caption_tensors(x)] for n, c in zip(copy_names, copies, strict=True)},
        "nearest-neighbour retrieval": [train_caps[row[0]][0] for row in nn],
        "classifier head: a <top-1 name>": [with_article(names[int(i)].word) for i in feats.logits.argmax(1)],
    }
    n_sk = len(SKIMAGE)
    print(f"{len(photos)} photos: {n_sk} from scikit-image, {len(photos) - n_sk} Tux Paint photo cut-outs (val/test)")
    print(f"{'system':34s} {'all':>7s} {'skimage':>8s} {'tuxpaint':>9s}")
    for name, caps in systems.items():
        hit = [named(c, nouns) for c, (_, nouns, _) in zip(caps, photos, strict=True)]
        print(f"{name:34s} {np.mean(hit):7.1%} {np.mean(hit[:n_sk]):8.1%} {np.mean(hit[n_sk:]):9.1%}")
    first = systems[copy_names[0]]
    for (_, _, src), p, c in zip(photos[:n_sk], systems["plain decoder (beam 3)"], first, strict=False):
        print(f"  {src:18s} plain: {p!r:28s} copy: {c!r}")
    drawings = [it for it in read_manifest(a.data) if it.split == "test" and it.source in ("openclipart", "openmoji")]
    root = dataset_root(a.data)
    xd = np.stack([copy.preprocess(open_image(root / it.image)) for it in drawings[:200]])
    for n, c in zip(copy_names, copies, strict=True):
        print(f"{n}: mean copy gate on photos {mean_gate(c, x):.3f}, on 200 test drawings {mean_gate(c, xd):.3f}")


if __name__ == "__main__":
    main()
