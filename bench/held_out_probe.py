"""How much of an emoji's identity survives a change of style in the pooled encoder features? A headroom check
for the held-out-style goal (60% of unseen-style emoji named).

    python bench/held_out_probe.py DATA [--style twemoji] [--augment]

DATA is the open corpus (`captioner data open-clipart`, with its features). The split is the held-out-style
check's (data/heldout.py): train on the emoji images of the other styles in the training split, test on the
held-out style's images of those same emoji. Instead of captioning, each system here only has to pick the
emoji (one class per CLDR group, ~1,900 classes), the easiest form of naming it:
- 1-NN: the emoji of the most cosine-similar training image (what bench/held_out_style.py's 1-NN row captions);
- linear: softmax regression on standardised pooled features;
- MLP: one hidden layer (1,024, ReLU, dropout 0.5).
The probes' weight decay and epochs are chosen on a cross-style validation that never sees the held-out style:
trained on OpenMoji alone, scored on Noto's images of the same emoji. A caption decoder reads the same pooled
vector and must also spell the name, so what these probes reach is about what a captioner of these features can."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from captioner.corpus.heldout import held_out_style
from captioner.data.manifest import Item, dataset_root, read_manifest
from captioner.evaluate.baselines import nearest
from captioner.features.encoders import load_encoder
from captioner.features.extract import FeatureStore
from captioner.features.images import open_image

WEIGHT_DECAYS = (1e-4, 1e-3, 1e-2, 1e-1)
EPOCH_GRID = (10, 25, 50, 100, 200)
AUGMENTS = {"median 7": ImageFilter.MedianFilter(7), "blur 3": ImageFilter.GaussianBlur(3)}


def emoji(items: list[Item], split: str, sources: set[str] | None = None) -> list[Item]:
    return [it for it in items if it.split == split and it.extra.get("group")
            and (sources is None or it.source in sources)]  # fmt: skip


def arrays(store: FeatureStore, items: list[Item], classes: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    rows = [store.row[it.image] for it in items]
    return store.get("pooled", rows), np.array([classes[it.extra["group"]] for it in items])


def restyled(data: Path, items: list[Item]) -> dict[str, np.ndarray]:
    """Pooled Lite0 features of every item's image under each of AUGMENTS, (N, D) per augmentation."""
    enc, root = load_encoder("efficientnet-lite0"), dataset_root(data)
    out = {}
    for name, f in AUGMENTS.items():
        rows = []
        for s in range(0, len(items), 64):
            ims: list[Image.Image] = [open_image(root / it.image).filter(f) for it in items[s : s + 64]]
            rows.append(enc.forward_features(torch.stack([enc.preprocess(im) for im in ims])).pooled.numpy())
        out[name] = np.concatenate(rows)
    return out


def fit(x: np.ndarray, y: np.ndarray, n: int, hidden: int, wd: float, epochs: tuple[int, ...],
        evals: tuple[np.ndarray, np.ndarray]) -> dict[int, float]:  # fmt: skip
    """Train a probe (hidden 0: linear) with Adam on full batches; accuracy on `evals` after each of `epochs`."""
    torch.manual_seed(0)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt, yt = torch.from_numpy((x - mu) / sd), torch.from_numpy(y)
    xe = torch.from_numpy((evals[0] - mu) / sd)
    d = x.shape[1]
    layers = [torch.nn.Linear(d, n)] if hidden == 0 else [
        torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(hidden, n)]  # fmt: skip
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=wd)
    out = {}
    for e in range(1, max(epochs) + 1):
        net.train()
        for idx in torch.randperm(len(xt)).split(256):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
        if e in epochs:
            net.eval()
            with torch.no_grad():
                out[e] = float((net(xe).argmax(1).numpy() == evals[1]).mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--style", default="twemoji")
    ap.add_argument("--augment", action="store_true", help="also train on restyled copies (AUGMENTS)")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    data = Path(a.data)
    items, store = read_manifest(data), FeatureStore(data / "features")
    ho = held_out_style(items, a.style)
    train, test = emoji(ho, "train"), emoji(ho, "test")
    classes = {g: i for i, g in enumerate(sorted({it.extra["group"] for it in train}))}
    # cross-style validation: OpenMoji -> Noto, on emoji drawn in both (the held-out style never seen)
    om, noto = emoji(ho, "train", {"openmoji"}), emoji(ho, "train", {"noto"})
    both = {it.extra["group"] for it in om} & {it.extra["group"] for it in noto}
    vx, vy = arrays(store, om, classes)
    ex, ey = arrays(store, [it for it in noto if it.extra["group"] in both], classes)
    print(f"{len(train)} training emoji images ({len(classes)} emoji), {len(test)} {a.style} test images; "
          f"validation: {len(om)} OpenMoji -> {len(ey)} Noto")  # fmt: skip
    tx, ty = arrays(store, train, classes)
    qx, qy = arrays(store, test, classes)
    print(f"| system | validation (OpenMoji -> Noto) | test ({a.style}, unseen style) | chosen |")
    print("|---|---|---|---|")
    v1 = float((vy[nearest(vx, ex, 1)[:, 0]] == ey).mean())
    t1 = float((ty[nearest(tx, qx, 1)[:, 0]] == qy).mean())
    print(f"| 1-NN | {v1:.1%} | {t1:.1%} | |")
    for name, hidden in (("linear", 0), ("MLP", 1024)):
        best = max(((acc, wd, e) for wd in WEIGHT_DECAYS
                    for e, acc in fit(vx, vy, len(classes), hidden, wd, EPOCH_GRID, (ex, ey)).items()))  # fmt: skip
        acc, wd, e = best
        test_acc = fit(tx, ty, len(classes), hidden, wd, (e,), (qx, qy))[e]
        print(f"| {name} probe | {acc:.1%} | {test_acc:.1%} | weight decay {wd:g}, {e} epochs |")
    if a.augment:
        extra = restyled(data, train)  # rows in `train` order; OpenMoji's are a subset
        row = {it.image: i for i, it in enumerate(train)}
        om_rows = [row[it.image] for it in om]
        vxa = np.concatenate([vx, *(f[om_rows] for f in extra.values())])
        txa = np.concatenate([tx, *extra.values()])
        vya, tya = np.tile(vy, 1 + len(extra)), np.tile(ty, 1 + len(extra))
        acc, wd, e = max(((acc, wd, e) for wd in WEIGHT_DECAYS
                          for e, acc in fit(vxa, vya, len(classes), 0, wd, EPOCH_GRID, (ex, ey)).items()))  # fmt: skip
        test_acc = fit(txa, tya, len(classes), 0, wd, (e,), (qx, qy))[e]
        print(f"| linear probe, + {' and '.join(extra)} copies | {acc:.1%} | {test_acc:.1%} | "
              f"weight decay {wd:g}, {e} epochs |")  # fmt: skip


if __name__ == "__main__":
    main()
