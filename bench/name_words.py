"""Would naming photos from several of the classifier's words help? Chosen on the validation split, never on the
naming check.

    python bench/name_words.py CHECKPOINT --data DATA

truth.Rules.musts makes a photo's caption say its top class's word when that word's probability reaches
model.name_threshold. The variant tried here: where it does not, the caption must say one of the K words of the
top classes (most probable first) whose probabilities together reach the threshold ("a car" or "a wagon" for a
Beetle at 0.28 and 0.27). K = 1 is truth.py's rule (here also a word whose classes together reach the threshold
where the top class's word does not; on validation that changes nothing). Prints validation CIDEr-D (beam 3)
for K = 1, 2, 3; the variant is patched into this process only (product code keeps K = 1; docs/results.md has
the figures)."""

from __future__ import annotations

import argparse
from pathlib import Path

from captioner.decode import rules as truth
from captioner.decode.search import Must
from captioner.evaluate.run import evaluate
from captioner.text.vocab import PAD_IX

RULE = truth.Rules.musts


def several(k: int):  # noqa: ANN201
    """Rules.musts with up to k words where the top word alone is under the threshold."""

    def musts(self: truth.Rules, sights: list[truth.Sight], offered: tuple | None) -> list[Must | None]:
        out = RULE(self, sights, offered)
        if offered is None or self.name_threshold <= 0:
            return out
        p, w = offered
        for i, s in enumerate(sights):
            if out[i] is not None or not s.photo:
                continue
            mass: dict[int, float] = {}
            for pi, wi in zip(p[i], w[i], strict=True):
                if int(wi) != PAD_IX and self.said(int(wi)) >= 0:
                    mass[int(wi)] = mass.get(int(wi), 0.0) + float(pi)
            top = sorted(mass.items(), key=lambda t: -t[1])[:k]
            reach = next((n for n in range(1, len(top) + 1) if sum(m for _, m in top[:n]) >= self.name_threshold), 0)
            if reach:
                out[i] = Must(frozenset(self.said(wi) for wi, _ in top[:reach]))
        return out

    return musts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", help="prepared dataset (default: the checkpoint's)")
    ap.add_argument("--work", default="runs/name-words")
    a = ap.parse_args()
    for k in (1, 2, 3):
        truth.Rules.musts = several(k)  # type: ignore[method-assign]
        r = evaluate(
            a.checkpoint, "val", 3, data=a.data, out=Path(a.work) / f"k{k}", with_baselines=False, meteor=False
        )
        print(f"K = {k}: validation CIDEr-D {r['metrics']['CIDEr-D']:.4f}" + ("  (truth.py's rule)" if k == 1 else ""))
    truth.Rules.musts = RULE  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
