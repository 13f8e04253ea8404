"""When do the people detectors speak on a grey image that photo.photo_like reads as a drawing?

    python bench/grey_people.py CHECKPOINT --data DATA

The flat-patch photo test (policy version 1) read some grey photos as drawings (scikit-image's cameraman, OpenCV's
basketball players; the retired bench/grey_photos.py, at commit c60f44a): with one 8-bit channel, exactly equal
neighbours are common in photos too; the probe that replaced it may still miss some. sights.look makes such an image
a photo of people when NanoDet finds persons at people.GREY_MIN_SCORE. This script chooses that threshold and tests
it, never on bench/truth.py's photos:
- train split (chooses): the best NanoDet person score of each exactly grey image read as a drawing (English
  captions); the threshold is the lowest that none of them reaches (their maximum, rounded up to 0.001);
- validation positives: grey copies of frames 0, 80, ..., 720 of OpenCV's vtest.avi (pedestrians; the people
  detectors' validation photos, bench/people_detectors.py) that photo_like reads as drawings: how many are found;
- validation and test splits: the grey drawings, those the rule fires on (with their first caption), and
  CIDEr-D / BLEU-4 (English references, beam 3) with truth.look as it is and with the rule undone.
A rule at PERSON_MIN_SCORE (0.563) instead fired on 3 of the 87 grey validation drawings and lowered validation
CIDEr-D from 0.6579 to 0.6510 (docs/results.md): rejected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from common import checkpoint_and_data, vtest_frames

from captioner.data.manifest import Item, dataset_root, read_manifest  # noqa: E402
from captioner.evaluate.run import decode, in_language, load_split  # noqa: E402
from captioner.features.encoders import Encoder, load_encoder  # noqa: E402
from captioner.features.extract import FeatureStore  # noqa: E402
from captioner.features.images import open_image  # noqa: E402
from captioner.features.spec import preprocess  # noqa: E402
from captioner.sights import people  # noqa: E402
from captioner.sights.look import Sight, look, pixels  # noqa: E402
from captioner.sights.photo import photo_like  # noqa: E402
from captioner.text.metrics import coco_metrics  # noqa: E402
from captioner.train.checkpoint import Checkpoint, load_checkpoint  # noqa: E402


def grey_drawing(ck: Checkpoint, x: np.ndarray, rgb: np.ndarray) -> bool:
    """The preprocessed image (1, 3, S, S) is exactly grey and photo_like reads its pooled vector as a drawing."""
    with torch.inference_mode():
        pooled = ENCODERS[ck.spec.name].forward_features(torch.from_numpy(x)).pooled.float().numpy()
    return people.grey(rgb) and not photo_like(x, pooled, ck.policy.data["photo"])[0]


ENCODERS: dict[str, Encoder] = {}  # the checkpoint's encoder, loaded once by main


def best_person(rgb: np.ndarray) -> float:
    return max(people.persons(rgb, 0.05)[:1], default=0.0)


def chosen(ck: Checkpoint, items: list[Item], root: Path) -> float:
    """The lowest threshold (rounded up to 0.001) that no grey drawing of the train split reaches."""
    scores = []
    for it in items:
        if it.split == "train":
            x = preprocess(open_image(root / it.image), ck.spec)[None]
            rgb = pixels(x, ck.spec)[0]
            if grey_drawing(ck, x, rgb):
                scores.append((best_person(rgb), it.image))
    scores.sort(reverse=True)
    top = ", ".join(f"{s:.3f} {name.rsplit('/', 1)[-1]}" for s, name in scores[:3])
    print(f"train: {len(scores)} grey drawings; the best person scores: {top}")
    return float(np.ceil(scores[0][0] * 1000 + 1e-9) / 1000)


def grey_vtest(ck: Checkpoint, threshold: float) -> None:
    """How many grey copies of the vtest frames photo_like reads as drawings, and how many of those are found."""
    found = {}  # frame -> best person score
    for frame, im in vtest_frames():
        x = preprocess(im.convert("L").convert("RGB"), ck.spec)[None]
        rgb = pixels(x, ck.spec)[0]
        if grey_drawing(ck, x, rgb):
            found[frame] = best_person(rgb)
    hits = sum(score >= threshold for score in found.values())
    frames = ", ".join(f"frame {f} {score:.3f}" for f, score in found.items())
    print(f"validation positives: {len(found)} of 10 grey vtest frames read as drawings ({frames}); found {hits}")


def main() -> None:
    checkpoint, data = checkpoint_and_data(__doc__)
    ck, store = load_checkpoint(checkpoint), FeatureStore(data / "features")
    ENCODERS[ck.spec.name] = load_encoder(ck.spec.name)
    items, root = in_language(read_manifest(data), "en"), dataset_root(data)
    t = chosen(ck, items, root)
    print(f"chosen threshold {t:.3f} (people.GREY_MIN_SCORE {people.GREY_MIN_SCORE:.3f})")
    grey_vtest(ck, people.GREY_MIN_SCORE)
    for split in ("val", "test"):
        sp = load_split(items, store, split)
        now, undone, grey, fired = [], [], 0, []
        for it in sp.items:
            x = preprocess(open_image(root / it.image), ck.spec)[None]
            (seen,) = look(x, store.get("pooled", [store.row[it.image]]), ck.spec, ck.policy.data)
            now.append(seen)
            if grey_drawing(ck, x, pixels(x, ck.spec)[0]):
                grey += 1
                if seen.photo:
                    fired.append(f"{it.image} ({it.captions[0]!r})")
                    seen = Sight(False, seen.colours, 0)
            undone.append(seen)
        print(f"{split}: {len(sp.ids)} images, {grey} grey drawings, the rule fires on {len(fired)}: {fired}")
        refs = {i: it.captions for i, it in zip(sp.ids, sp.items, strict=True)}
        for name, sights in (("with the rule", now), ("without it", undone)):
            caps = decode(ck, store, sp.rows, 3, 1, sights)
            hyps = {i: ck.vocab.decode(c[0].tokens, articles=True) for i, c in zip(sp.ids, caps, strict=True)}
            m = coco_metrics(refs, hyps, meteor=False)
            print(f"  {name}: CIDEr-D {m['CIDEr-D']:.4f}  BLEU-4 {m['BLEU-4']:.4f}")


if __name__ == "__main__":
    main()
