"""Is the caption true of the photo? One table over the project's photo sets, none of them tuned on.

    python bench/truth.py CHECKPOINT --data DATA [--reference src/captioner/bundled/open-clipart]

DATA is the open corpus the checkpoint was trained on (`captioner data open-clipart`). Photo sets:
- named: bench/naming.py's photos (scikit-image's photos and the Tux Paint photo cut-outs of the val and test
  splits), each with the nouns that name its main object;
- colour: those Tux Paint cut-outs that are raster images; the object is the stamp's pixels with alpha >= 128
  in Tux Paint's own PNG or JPEG, and colours.py names them. A caption has a false colour when it says a colour
  word none of whose colours reaches colours.PRESENT of the object; colour recall is the share of cut-outs
  whose object is mostly (>= DOMINANT) one chromatic colour whose caption names it;
- people: scikit-image's astronaut and camera, matplotlib's grace_hopper, Tux Paint's photo stamps of people
  (two firemen, a paratrooper) and OpenCV's sample photos of people (Debian `opencv-doc`: a footballer,
  two men with a basketball); the named photos without people are the negatives (animals and objects).
  (scikit-image's lfw_subset faces, 25 x 25 grey crops, are too small to test a rule for photos.) A person word
  is a noun whose first WordNet sense is a person, or one of people.GROUP_WORDS ('person' itself is under
  noun.Tops).
For each system: share of named photos whose caption names the object (beside the classifier's top-5 ceiling:
one of its five classes' names does), photos whose confident top class (p >= the model's name_threshold) is
right while the caption misses it, false colours among the cut-outs' captions, colour recall, captions that stop
mid-phrase (endings.py), people recall, false-person rate, and captions that are not English (data.langid).
Systems: the checkpoint with truth.py's rules; the same without the colour and people rules (the naming rule
only, as before them); --reference under both; the classifier head alone ("a <basic name of the top class>").
Last, what the rules cost on the corpus: test CIDEr-D and BLEU-4 (beam 3, pycocoevalcap) with and without them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from common import STAMPS, named, people_set, photo_set
from PIL import Image

from captioner.api import Captioner  # noqa: E402
from captioner.corpus.langid import LanguageTagger  # noqa: E402
from captioner.data.manifest import dataset_root, read_manifest  # noqa: E402
from captioner.decode.rules import decode  # noqa: E402
from captioner.evaluate.run import decode as decode_rows  # noqa: E402
from captioner.evaluate.run import in_language, load_split, split_sights  # noqa: E402
from captioner.features.extract import FeatureStore  # noqa: E402
from captioner.features.imagenet import class_words, with_article  # noqa: E402
from captioner.sights.colours import COLOURS, WORD_COLOURS, colour_shares, colour_word_true, shown  # noqa: E402
from captioner.sights.look import Sight, look  # noqa: E402
from captioner.sights.people import says_person  # noqa: E402
from captioner.sights.photo import photo_like  # noqa: E402
from captioner.text.endings import may_not_end  # noqa: E402
from captioner.text.metrics import coco_metrics  # noqa: E402
from captioner.text.vocab import tokenize  # noqa: E402
from captioner.train.checkpoint import load_checkpoint  # noqa: E402

DOMINANT = 0.5
ALL = frozenset(COLOURS)


def object_shares(name: str) -> np.ndarray | None:
    """Colour shares of a Tux Paint cut-out's own pixels (alpha >= 128), or None for other photos."""
    if not name.startswith("images/tuxpaint/"):
        return None
    rel = Path(name.removeprefix("images/tuxpaint/"))
    src = next((p for p in (STAMPS / rel.parent).glob(rel.stem + ".*") if p.suffix in (".png", ".jpg")), None)
    if src is None:  # drawn in SVG: no alpha mask to read
        return None
    rgba = np.asarray(Image.open(src).convert("RGBA"))
    return colour_shares(rgba[..., :3], rgba[..., 3] >= 128)


def caption_all(cap: Captioner, x: np.ndarray, rules: bool) -> list[str]:
    """Beam-3 captions of a preprocessed batch, with all of truth.py's rules or with the naming rule only."""
    out = []
    rt = cap.runtime
    for s in range(0, len(x), 32):
        xb = x[s : s + 32]
        st, _, pooled = rt.encode(xb)
        if rules:
            sights = look(xb, pooled, rt.spec, rt.policy.data)
        else:
            sights = [Sight(bool(p), frozenset(COLOURS), None) for p in photo_like(xb, pooled, rt.policy.data["photo"])]
        out += [rt.vocab.decode(c[0].tokens, articles=True) for c in decode(st, sights, cap.rules(), rt.max_len)]
    return out


def figures(caps: list[str], truth: dict, tagger: LanguageTagger) -> dict[str, float]:
    n = truth["n_named"]
    words = [tokenize(c) for c in caps]
    colour_said = [[w for w in ws if w in WORD_COLOURS] for ws in words]
    sh = truth["shares"]
    with_obj = [i for i in range(n) if sh[i] is not None]
    false_col = [i for i in with_obj if not all(colour_word_true(w, shown(sh[i])) for w in colour_said[i])]
    dom = [(i, COLOURS[int(np.argmax(sh[i]))]) for i in with_obj if sh[i].max() >= DOMINANT and np.argmax(sh[i]) > 2]
    recall = [any(c in WORD_COLOURS[w] for w in colour_said[i]) for i, c in dom]
    person = [says_person(ws) for ws in words]
    people, neg = truth["people_ix"], truth["negative_ix"]
    return {
        "named": np.mean([named(caps[i], truth["nouns"][i]) for i in range(n)]),
        "top right, missed": np.mean([not named(caps[i], truth["nouns"][i]) for i in truth["confident_right"]])
        if truth["confident_right"]
        else 0.0,
        "false colour": len(false_col) / len(with_obj),
        "colour recall": np.mean(recall) if recall else 0.0,
        "half phrase": np.mean([bool(ws) and may_not_end(ws[-1]) for ws in words]),
        "people recall": np.mean([person[i] for i in people]),
        "false person": np.mean([person[i] for i in neg]),
        "not English": np.mean([tagger(c) not in ("en", "und") for c in caps]),
    }


def corpus_cost(checkpoint: str, data: Path) -> None:
    """Test CIDEr-D and BLEU-4 of the checkpoint (beam 3, English: references in English where the corpus has
    several languages) with truth.py's rules and with the naming rule only."""
    ck = load_checkpoint(checkpoint)
    store = FeatureStore(data / "features")
    items = read_manifest(data)
    sp = load_split(in_language(items, "en") if ck.vocab.langs else items, store, "test")
    seen = split_sights(ck, sp, dataset_root(data), store)
    if seen is None:
        raise SystemExit(f"{data}: the test split's images are missing")
    refs = {i: it.captions for i, it in zip(sp.ids, sp.items, strict=True)}
    for name, sights in (("truth rules", seen), ("naming rule only", [Sight(s.photo, ALL, None) for s in seen])):
        caps = decode_rows(ck, store, sp.rows, 3, 1, sights)
        hyps = {i: ck.vocab.decode(c[0].tokens, articles=True) for i, c in zip(sp.ids, caps, strict=True)}
        m = coco_metrics(refs, hyps, meteor=False)
        print(f"test split ({len(sp.ids)} images), {name}: CIDEr-D {m['CIDEr-D']:.4f}  BLEU-4 {m['BLEU-4']:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True)
    ap.add_argument("--reference", help="another checkpoint to compare (e.g. the bundled model before retraining)")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    photos = photo_set(Path(a.data))
    ppl = people_set()
    cap = Captioner.load(a.checkpoint)
    images = [im for im, _, _ in photos] + [im for im, _ in ppl]
    x = np.stack([cap.preprocess(im) for im in images])
    n = len(photos)
    names = [name for _, _, name in photos]
    people_names = {"astronaut", "camera"}
    st, logits, _ = cap.runtime.encode(x)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    top5 = np.argsort(-probs, 1)[:, :5]
    words = class_words(set(cap.runtime.vocab.itos[4:]))
    nouns = [nn for _, nn, _ in photos]
    head = [with_article(words[int(t[0])].word) for t in top5]
    thr = cap.runtime.name_threshold
    truth = {
        "n_named": n,
        "nouns": nouns,
        "shares": [object_shares(nm) for nm in names],
        "people_ix": list(range(n, len(images))),
        "negative_ix": [i for i, nm in enumerate(names) if nm not in people_names],
        "confident_right": [i for i in range(n) if probs[i, top5[i, 0]] >= thr and named(head[i], nouns[i])],
    }
    ceiling = np.mean([any(named(with_article(words[int(c)].word), nouns[i]) for c in top5[i]) for i in range(n)])
    tagger = LanguageTagger()
    systems = {
        "checkpoint, truth rules": caption_all(cap, x, True),
        "checkpoint, naming rule only": caption_all(cap, x, False),
    }
    if a.reference:
        ref = Captioner.load(a.reference)
        systems["reference, truth rules"] = caption_all(ref, x, True)
        systems["reference, naming rule only"] = caption_all(ref, x, False)
    systems["classifier head: a <top-1 name>"] = head + [with_article(words[int(t[0])].word) for t in top5[n:]]
    print(
        f"{n} named photos ({sum(s is not None for s in truth['shares'])} Tux Paint cut-outs with masks), "
        f"{len(truth['people_ix'])} people photos, {len(truth['negative_ix'])} without people; "
        f"classifier top-5 ceiling {ceiling:.1%}; {len(truth['confident_right'])} with a confident right top class"
    )
    rows = {k: figures(v, truth, tagger) for k, v in systems.items()}
    cols = list(next(iter(rows.values())))
    print(f"{'system':34s} " + " ".join(f"{c:>17s}" for c in cols))
    for k, r in rows.items():
        print(f"{k:34s} " + " ".join(f"{r[c]:17.1%}" for c in cols))
    corpus_cost(a.checkpoint, Path(a.data))
    first = systems["checkpoint, truth rules"]
    old = systems["checkpoint, naming rule only"]
    print("captions that changed (truth rules <- naming only):")
    for i, (c, o) in enumerate(zip(first, old, strict=True)):
        if c != o:
            label = names[i] if i < n else ppl[i - n][1]
            print(f"  {label[-40:]:40s} {c!r:32s} <- {o!r}")


if __name__ == "__main__":
    main()
