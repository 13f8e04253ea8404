"""evaluate(): decode a split, score it with pycocoevalcap next to baselines, write predictions and a report."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from captioner.config import RERANK_TAU, RERANK_WEIGHT
from captioner.data.manifest import Item, dataset_root, read_manifest
from captioner.decode import rules as truth
from captioner.decode.rules import Rules
from captioner.decode.search import Caption
from captioner.decode.stepper import TorchStepper, sequence_logprob
from captioner.errors import CaptionerError
from captioner.evaluate import baselines as bl
from captioner.features.extract import FeatureStore
from captioner.features.images import ImageError, open_image
from captioner.features.spec import preprocess
from captioner.files import read_json, write_bytes, write_json
from captioner.models import feature_kind
from captioner.models.ensemble import Ensemble
from captioner.sights.colours import COLOURS
from captioner.sights.look import Sight, look
from captioner.text.metrics import coco_metrics, health, metric_versions
from captioner.text.vocab import as_matrix
from captioner.train.checkpoint import load_ensemble

log = logging.getLogger(__name__)
CSS = """body{font-family:sans-serif;margin:2em} table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px}
.card{display:inline-block;width:260px;vertical-align:top;margin:6px;padding:6px;border:1px solid #ddd}
.model{font-weight:bold} .model span,.id{color:#888;font-weight:normal;font-size:small} .refs,ul{font-size:small}
.warn{color:#b00;font-weight:bold}"""


@dataclass
class Split:
    """The images of one split that have features: ids, paths, references and feature rows."""

    items: list[Item]
    ids: list[str]
    rows: list[int]


def in_language(items: list[Item], lang: str) -> list[Item]:
    """The items with only their captions in `lang`; items with none are left out."""
    out = []
    for it in items:
        caps = [c for c, t in zip(it.captions, it.langs, strict=True) if t == lang]
        if caps:
            out.append(dataclasses.replace(it, captions=caps, langs=[lang] * len(caps)))
    return out


def item_id(item: Item) -> str:
    """COCO image id when the manifest carries one, else the image path."""
    return str(item.extra.get("id", item.image))


def load_split(items: list[Item], store: FeatureStore, split: str, limit: int | None = None) -> Split:
    """Items of `split` that were extracted, optionally the first `limit`."""
    chosen = [it for it in items if it.split == split and it.image in store.row][:limit]
    if not chosen:
        raise CaptionerError(f"no images of split {split!r} with features in {store.path}")
    return Split(chosen, [item_id(it) for it in chosen], [store.row[it.image] for it in chosen])


BLIND = Sight(photo=False, colours=frozenset(COLOURS), people=0)  # an image decoded with no rule


def decode(
    ck: Any,
    store: FeatureStore,
    rows: list[int],
    beam: int,
    n_best: int,
    sights: list[Sight] | None = None,
    batch: int = 128,
    lang: str | None = None,
) -> list[list[Caption]]:
    """n-best captions in `lang` for each feature row (greedy when beam is 1), under decode/rules.py's rules with
    sights[j] for the image of rows[j] (split_sights); None: no sights (no colour, people or naming rule)."""
    kind = feature_kind(ck.config.model)
    threshold = ck.config.model.name_threshold if sights is not None else 0.0
    rules = Rules.from_policy(ck.policy, ck.vocab.language(lang), threshold)
    out: list[list[Caption]] = []
    for s in range(0, len(rows), batch):
        st = TorchStepper(ck.model, torch.from_numpy(store.get(kind, rows[s : s + batch])), ck.policy.no_end_mask())
        seen = sights[s : s + batch] if sights is not None else [BLIND] * st.batch
        out += truth.decode(st, seen, rules, ck.config.train.max_len, beam, n_best)
    return out


def split_sights(ck: Any, sp: Split, root: Path, store: FeatureStore) -> list[Sight] | None:
    """sights.look of every image of the split, read from the dataset (a missing or broken image is an error)
    with its pooled vector from the store; None for a dataset of features without images (the seminar's
    codes): decoding then has no sights."""
    if not any((root / it.image).is_file() for it in sp.items):
        log.warning("%s: none of the split's images are here; decoding without decode/rules.py's rules", root)
        return None
    out = []
    if "pooled" in store.arrays:
        pooled = store.get("pooled", sp.rows)
    elif ck.policy.data["photo"]["probe"] is None:  # the flat test alone reads no vector
        pooled = np.zeros((len(sp.rows), 0), np.float32)
    else:
        raise CaptionerError(f"{store.path}: no pooled vectors; the photo test reads them (extract them again)")
    for it, vec in zip(sp.items, pooled, strict=True):
        path = root / it.image
        try:
            x = preprocess(open_image(path), ck.spec)[None]
        except ImageError as e:
            raise CaptionerError(f"{path}: {e} (needed to read the image's colours, people and kind)") from None
        out += look(x, vec[None], ck.spec, ck.policy.data)
    return out


RERANK_NAME = "rerank (model + weighted neighbours, n-best + neighbours)"
ENSEMBLE_RERANK_NAME = "rerank (ensemble members' consensus + weighted neighbours)"
ENSEMBLE_NEIGHBOURS = 0.5  # ensembles: weight of the neighbours' CIDEr-D beside the members' (chosen on val)


def model_scores(
    ck: Any, store: FeatureStore, rows: list[int], cands: list[list[str]], batch: int = 512, lang: str | None = None
) -> list:
    """The model's mean log-probability per token of each candidate caption (in `lang`) of each image."""
    kind = feature_kind(ck.config.model)
    flat = [(i, c) for i, cs in enumerate(cands) for c in cs]
    scores: list[float] = []
    for s in range(0, len(flat), batch):
        chunk = flat[s : s + batch]
        feats = torch.from_numpy(store.get(kind, [rows[i] for i, _ in chunk]))
        tokens = torch.from_numpy(as_matrix([ck.vocab.encode(c, ck.config.train.max_len, lang) for _, c in chunk]))
        scores += sequence_logprob(ck.model, feats, tokens).tolist()
    out, pos = [], 0
    for cs in cands:
        out.append(scores[pos : pos + len(cs)])
        pos += len(cs)
    return out


def rerank(
    cands: list[list[str]],
    judges: list[list[str]],
    judge_weights: list[list[float]],
    logprob: list[list[float]],
    cider: bl.CiderD,
    weight: float,
) -> list[str]:
    """Per image, the candidate maximising model mean log-probability + weight * the neighbours'
    similarity-weighted CIDEr-D (bl.weighted_scores)."""
    cons = bl.weighted_scores(cands, judges, judge_weights, cider)
    return [
        cs[int(np.argmax(np.asarray(lp) + weight * np.asarray(co)))] if cs else ""
        for cs, lp, co in zip(cands, logprob, cons, strict=True)
    ]


def neighbours(items: list[Item], store: FeatureStore, sp: Split, k: int = 5) -> tuple[list, np.ndarray, np.ndarray]:
    """The training images' captions, and each split image's k nearest training images (indices, cosines)."""
    train = [it for it in items if it.split == "train" and it.image in store.row]
    if not train:
        return [], np.zeros((len(sp.rows), 0), np.int64), np.zeros((len(sp.rows), 0), np.float32)
    kind = "pooled" if "pooled" in store.arrays else "logits"  # a seminar store holds only the classifier's codes
    nn, sims = bl.nearest_sims(store.get(kind, [store.row[it.image] for it in train]), store.get(kind, sp.rows), k)
    return [it.captions for it in train], nn, sims


def rerank_pool(nbest: list[list[str]], neigh: list[list[str]]) -> list[list[str]]:
    """The reranker's candidates per image: the beam's n-best, then the neighbours' captions, each once."""
    return [list(dict.fromkeys(nb + ng)) for nb, ng in zip(nbest, neigh, strict=True)]


def run_baselines(
    items: list[Item],
    store: FeatureStore,
    sp: Split,
    nbest: list[list[str]],
    ck: Any,
    k: int = 5,
    rerank_weight: float = RERANK_WEIGHT,
    rerank_tau: float = RERANK_TAU,
    members: list[list[list[str]]] | None = None,
    lang: str | None = None,
) -> dict[str, list[str]]:
    """Every baseline's caption for every image of the split, and the reranked model output.

    members: for an ensemble, each member's own n-best per image; the reranker then chooses among all of
    them and the neighbours' captions by CIDEr-D against the members' first captions (a consensus, equal
    weights) plus ENSEMBLE_NEIGHBOURS x the similarity-weighted neighbours' captions, without log-probs
    (on val the log-prob term added nothing once the members vote)."""
    train_caps, nn, sims = neighbours(items, store, sp, k)
    if not train_caps:
        log.warning("no training images in this dataset: baselines that need them are skipped")
        return {}
    neigh = bl.neighbour_captions(train_caps, nn)
    cider = bl.CiderD(train_caps)  # document frequencies from the training captions
    cands = rerank_pool(nbest, neigh)
    weights = bl.similarity_weights(train_caps, nn, sims, rerank_tau)
    out = {
        "nearest neighbour (k=1)": [bl.pick([train_caps[row[0]]], [train_caps[row[0]]], cider)[0] for row in nn],
        f"nearest-neighbour consensus (k={k})": bl.pick(neigh, neigh, cider),
        "most frequent training caption": [bl.most_frequent(train_caps)] * len(sp.rows),
    }
    if members:
        firsts = [[m[i][0] for m in members] for i in range(len(sp.rows))]
        cands = [list(dict.fromkeys(c + [x for m in members for x in m[i]])) for i, c in enumerate(cands)]
        judges = [f + ng for f, ng in zip(firsts, neigh, strict=True)]
        jw = [[1 / len(members)] * len(members) + [ENSEMBLE_NEIGHBOURS * x for x in w] for w in weights]
        out[ENSEMBLE_RERANK_NAME] = rerank(cands, judges, jw, [[0.0] * len(c) for c in cands], cider, 1.0)
    else:
        lp = model_scores(ck, store, sp.rows, cands, lang=lang)
        out[RERANK_NAME] = rerank(cands, neigh, weights, lp, cider, rerank_weight)
    if "logits" in store.arrays:
        out["a/an <top-1 ImageNet class>"] = bl.class_captions(store.get("logits", sp.rows))
    return out


def evaluate(
    checkpoint: str | Path,
    split: str = "test",
    beam: int = 1,
    data: str | Path | None = None,
    features: str | Path | None = None,
    out: str | Path | None = None,
    limit: int | None = None,
    with_baselines: bool = True,
    meteor: bool = True,
    rerank_weight: float = RERANK_WEIGHT,
    rerank_tau: float = RERANK_TAU,
    name_threshold: float | None = None,
    ensemble: Sequence[str | Path] = (),
    lang: str | None = None,
) -> dict[str, Any]:
    """Caption a split with a checkpoint, score it and the baselines, write predictions/metrics/report.
    name_threshold overrides the checkpoint's model.name_threshold (copy models); ensemble names more
    checkpoints to decode and judge with (checkpoint.load_ensemble). lang (a multilingual model; None:
    English): captions are decoded in it, the references are the split's captions in it, and the baselines
    answer with training captions in it."""
    ck = load_ensemble([checkpoint, *ensemble]).with_name_threshold(name_threshold)
    data = Path(data or ck.config.train.data)
    store = FeatureStore(features or ck.config.train.features or data / "features")
    ck.spec.check_same(store.spec, f"checkpoint {ck.path} vs features {store.path}")
    items = read_manifest(data)
    tag = ck.vocab.language(lang)
    if ck.vocab.langs:
        items = in_language(items, tag)
    sp = load_split(items, store, split, limit)
    n_best = beam if beam > 1 else 1
    seen = split_sights(ck, sp, dataset_root(data), store)
    dlang = tag if ck.vocab.langs else None
    caps = decode(ck, store, sp.rows, beam, n_best, seen, lang=dlang)
    words = [ck.vocab.decode(c[0].tokens, articles=True) for c in caps]
    refs = {i: it.captions for i, it in zip(sp.ids, sp.items, strict=True)}
    systems = {"model": words}
    if with_baselines:
        members = None
        if isinstance(ck.model, Ensemble):  # each member's own n-best, for the consensus reranker
            members = [
                _texts(ck, decode(dataclasses.replace(ck, model=m), store, sp.rows, beam, n_best, seen, lang=dlang))
                for m in ck.model.members
            ]
        nbest = _texts(ck, caps)
        systems.update(run_baselines(items, store, sp, nbest, ck, 5, rerank_weight, rerank_tau, members, dlang))
    hyps = {name: dict(zip(sp.ids, hyp, strict=True)) for name, hyp in systems.items()}
    scores = {name: coco_metrics(refs, h, meteor, tag) for name, h in hyps.items()}
    out = Path(out or Path(ck.path).parent / (f"eval-{split}" if tag == "en" else f"eval-{split}-{tag}"))
    result = _result(ck, out, split, beam, len(sp.ids), scores, words)
    write_json(out / "predictions.json", [{"image_id": i, "caption": w} for i, w in zip(sp.ids, words, strict=True)])
    write_json(out / "metrics.json", result)
    if len(systems) > 1:  # every baseline's captions, to inspect or score again
        write_json(out / "baselines.json", {"image_id": sp.ids, **{k: v for k, v in systems.items() if k != "model"}})
    conf = [c[0].confidence for c in caps]
    write_report(out / "report.html", result, sp, dataset_root(data), systems, conf)
    return result


def _result(ck: Any, out: Path, split: str, beam: int, images: int, scores: dict, words: list[str]) -> dict:
    """metrics.json: what was scored, how it was decoded, the scores of the model and of every baseline."""
    return {
        "checkpoint": str(ck.path),
        **({"ensemble": ck.meta["ensemble"]} if "ensemble" in ck.meta else {}),
        "out": str(out),
        "split": split,
        "images": images,
        "decoding": {
            "method": "beam" if beam > 1 else "greedy",
            "beam": beam,
            "max_len": ck.config.train.max_len,
            "block_unk": True,
            "name_threshold": ck.config.model.name_threshold,
        },
        "versions": metric_versions(),
        "metrics": scores["model"],
        "baselines": {k: v for k, v in scores.items() if k != "model"},
        "health": health(words, ck.vocab.no_end),
    }


def _texts(ck: Any, caps: list[list[Caption]]) -> list[list[str]]:
    """Each image's n-best as text, articles agreeing."""
    return [[ck.vocab.decode(c.tokens, articles=True) for c in cs] for cs in caps]


def score_predictions(predictions: str | Path, data: str | Path, split: str = "test", meteor: bool = True) -> dict:
    """Score a COCO-format results file from any system against a manifest split."""
    preds = read_json(predictions, "predictions")
    if not isinstance(preds, list) or not all(
        isinstance(p, dict) and "image_id" in p and "caption" in p for p in preds
    ):
        raise CaptionerError(f"{predictions}: expected a JSON list of {{'image_id', 'caption'}} objects")
    items = [it for it in read_manifest(data) if it.split == split]
    refs = {item_id(it): it.captions for it in items}
    hyps = {str(p["image_id"]): str(p["caption"]) for p in preds}
    unknown = [k for k in hyps if k not in refs]
    if unknown:
        raise CaptionerError(f"{predictions}: {len(unknown)} image ids are not in split {split!r}, e.g. {unknown[0]!r}")
    missing = len(refs) - len(hyps)
    if missing:
        log.warning("%d images of split %r have no prediction; scoring the %d that do", missing, split, len(hyps))
    return {
        "predictions": str(predictions),
        "split": split,
        "metrics": coco_metrics(refs, hyps, meteor),
        "health": health(list(hyps.values())),
        "versions": metric_versions(),
    }


def _thumb(path: Path) -> str:
    try:
        img = Image.open(path).convert("RGB")
        img.thumbnail((160, 160))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    except OSError:
        return ""


def write_report(
    path: Path,
    result: dict,
    sp: Split,
    root: Path,
    systems: dict[str, list[str]],
    conf: list[float],
    sample: int = 40,
) -> None:
    """A self-contained HTML page: metrics side by side, health, and a sample of images with captions."""
    e = html.escape
    names = ["BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"]
    rows = [("model", result["metrics"]), *result["baselines"].items()]
    table = "".join(
        f"<tr><td>{e(n)}</td>" + "".join(f"<td>{m[k]:.3f}</td>" if k in m else "<td>n/a</td>" for k in names) + "</tr>"
        for n, m in rows
    )
    hl = result["health"]
    warn = f"<p class=warn>{e(hl['warning'])}</p>" if "warning" in hl else ""
    idx = np.random.default_rng(0).permutation(len(sp.ids))[:sample]
    cards = []
    for i in sorted(idx.tolist()):
        others = "".join(f"<li><b>{e(n)}:</b> {e(c[i])}</li>" for n, c in systems.items() if n != "model")
        cards.append(
            f"<div class=card><img src='{_thumb(root / sp.items[i].image)}'><p class=model>{e(systems['model'][i])}"
            f" <span>(confidence {conf[i]:.2f})</span></p><p class=refs>refs: {e(' | '.join(sp.items[i].captions))}</p>"
            f"<ul>{others}</ul><p class=id>{e(sp.items[i].image)}</p></div>"
        )
    unavailable = "; ".join(f"{k}: {v}" for k, v in result["metrics"].get("unavailable", {}).items())
    page = f"""<!doctype html><meta charset=utf-8><title>captioner evaluation: {e(result["split"])}</title>
<style>{CSS}</style>
<h1>{e(result["checkpoint"])} on {e(result["split"])} ({result["images"]} images)</h1>
<p>Decoding: {e(", ".join(f"{k} {v}" for k, v in result["decoding"].items()))}. Unavailable: {e(unavailable)}.</p>
<table><tr><th>system</th>{"".join(f"<th>{n}</th>" for n in names)}</tr>{table}</table>
<h2>Health</h2>{warn}<p>distinct captions {hl["distinct_pct"]:.1f}%, vocabulary used {hl["vocab_used"]},
mean length {hl["mean_length"]:.2f}, ending mid-phrase {hl["half_phrase_pct"]:.1f}%,
most common caption {e(hl["most_common"])!r} ({hl["most_common_pct"]:.1f}%)</p>
<h2>Sample</h2>{"".join(cards)}"""
    write_bytes(path, page.encode("utf-8"))
