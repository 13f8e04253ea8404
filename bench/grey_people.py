"""Should the people detectors speak on grey images that images.photo_like reads as drawings?

    python bench/grey_people.py CHECKPOINT --data DATA

photo_like reads some grey photos as drawings (bench/grey_photos.py: scikit-image's cameraman, OpenCV's
basketball players), so truth.py never looks for people there. The rule tried: on an exactly grey image read
as a drawing, run the people detectors, and where they find someone caption it as a photo with people ("a
person"); where they find no one, leave it a drawing (no rule). Prints, for the validation and test splits
(English references, beam 3): the grey drawings, those the detectors fire on (with their first caption), and
CIDEr-D / BLEU-4 with and without the rule. Chosen on validation only."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from captioner.checkpoint import load_checkpoint
from captioner.data.manifest import dataset_root, read_manifest
from captioner.evaluate import decode, in_language, load_split
from captioner.features import FeatureStore
from captioner.images import open_image
from captioner.metrics import coco_metrics
from captioner.people import count_people
from captioner.spec import preprocess
from captioner.truth import Sight, look, pixels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True)
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    data = Path(a.data)
    ck, store, items, root = (
        load_checkpoint(a.checkpoint),
        FeatureStore(data / "features"),
        read_manifest(data),
        dataset_root(data),
    )
    for split in ("val", "test"):
        sp = load_split(in_language(items, "en"), store, split)
        now, rule, grey, fired = [], [], 0, []
        for it in sp.items:
            x = preprocess(open_image(root / it.image), ck.spec)[None]
            seen = look(x, ck.spec)[0]
            now.append(seen)
            rgb = pixels(x, ck.spec)[0]
            if not seen.photo and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
                grey += 1
                n = count_people(rgb)
                if n:
                    fired.append(f"{it.image} ({it.captions[0]!r})")
                    seen = Sight(True, seen.colours, n)
            rule.append(seen)
        print(f"{split}: {len(sp.ids)} images, {grey} grey drawings, the detectors fire on {len(fired)}: {fired}")
        refs = {i: it.captions for i, it in zip(sp.ids, sp.items, strict=True)}
        for name, sights in (("without the rule", now), ("with the rule", rule)):
            caps = decode(ck, store, sp.rows, 3, 1, sights)
            hyps = {i: ck.vocab.decode(c[0].tokens, articles=True) for i, c in zip(sp.ids, caps, strict=True)}
            m = coco_metrics(refs, hyps, meteor=False)
            print(f"  {name}: CIDEr-D {m['CIDEr-D']:.4f}  BLEU-4 {m['BLEU-4']:.4f}")


if __name__ == "__main__":
    main()
