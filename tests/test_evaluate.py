"""Metrics parity with pycocoevalcap, health statistics, baselines, and the evaluate command end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from captioner.cli.main import main
from captioner.data.manifest import dataset_root, read_manifest
from captioner.errors import CaptionerError
from captioner.evaluate import baselines as bl
from captioner.evaluate.run import evaluate, score_predictions
from captioner.features.imagenet import imagenet_classes, with_article
from captioner.text import metrics

REFS = {
    "1": ["A man riding a bike down the road.", "A cyclist on a street."],
    "2": ["Two dogs playing in the grass.", "Dogs run on a lawn."],
    "3": ["A red bus parked by the curb.", "A bus on a city street."],
}
HYPS = {"1": "a man riding a bike", "2": "two dogs on the grass", "3": "a bus on the street"}
java = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")


@java
def test_coco_metrics_equal_direct_pycocoevalcap() -> None:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in REFS.items()})
    res = tok.tokenize({k: [{"caption": v}] for k, v in HYPS.items()})
    want = {f"BLEU-{i + 1}": b for i, b in enumerate(Bleu(4).compute_score(gts, res, verbose=0)[0])}
    want["METEOR"] = Meteor().compute_score(gts, res)[0]
    want["ROUGE-L"] = Rouge().compute_score(gts, res)[0]
    want["CIDEr-D"] = Cider().compute_score(gts, res)[0]
    got = metrics.coco_metrics(REFS, HYPS)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k
    assert got["unavailable"] == {"SPICE": metrics.SPICE_WHY} and got["tokenizer"] == "ptb-java"


def test_without_java_meteor_is_unavailable_and_the_rest_runs(monkeypatch) -> None:
    monkeypatch.setattr(metrics.shutil, "which", lambda _: None)
    got = metrics.coco_metrics(REFS, {k: REFS[k][0] for k in REFS})
    assert "METEOR" not in got and "needs Java" in got["unavailable"]["METEOR"]
    assert got["BLEU-1"] == pytest.approx(1.0) and got["tokenizer"] == "captioner-ptb"


def test_health_statistics_and_same_caption_warning(caplog) -> None:
    h = metrics.health(["a dog with a", "a dog with a", "a dog with a", "a red cat"])
    assert h["distinct_pct"] == 50.0 and h["vocab_used"] == 5 and h["mean_length"] == 3.75
    assert h["half_phrase_pct"] == 75.0 and h["most_common"] == "a dog with a"
    assert metrics.health(["a red cat", "a big red"], no_end={"red"})["half_phrase_pct"] == 50.0
    assert h["most_common_pct"] == 75.0 and "75% of images get the same caption" in h["warning"]
    assert "MOST IMAGES GET THE SAME CAPTION" in caplog.text
    assert "warning" not in metrics.health(["a", "b", "c"])


def test_nearest_and_consensus() -> None:
    train = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], np.float32)
    assert bl.nearest(train, np.array([[1, 0.1], [-1, -0.2]], np.float32), k=2).tolist() == [[0, 2], [3, 1]]
    cider = bl.CiderD([["a red bus"], ["two dogs on grass"], ["a cat"], ["a street at night"], ["a bus stop"]])
    cands = [["two dogs on grass", "a red bus", "a red bus on a street", "a red bus by a street"]]
    assert bl.pick(cands, cands, cider) == ["a red bus on a street"]  # agrees most with the others
    assert bl.pick([["zebra", "a red bus"]], [["a red bus", "red bus", "a bus"]], cider) == ["a red bus"]
    assert bl.most_frequent([["A dog."], ["a cat"], ["a dog"]]) == "a dog"


def test_cider_d_equals_pycocoevalcap_with_the_same_document_frequencies() -> None:
    from pycocoevalcap.cider.cider import Cider

    toks = {k: [" ".join(metrics.tokenize(c)) for c in v] for k, v in REFS.items()}
    hyps = {k: [" ".join(metrics.tokenize(v))] for k, v in HYPS.items()}
    want = Cider().compute_score(toks, hyps)[1]
    cider = bl.CiderD(list(REFS.values()))
    got = [cider.score(HYPS[k], REFS[k]) for k in REFS]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_imagenet_names_and_class_baseline() -> None:
    classes = imagenet_classes()
    assert len(classes) == 1000 and classes[281].lemmas[0] == "tabby" and classes[967].lemmas[0] == "espresso"
    assert classes[281].wnid == "n02123045"
    logits = np.zeros((2, 1000), np.float32)
    logits[0, 967], logits[1, 281] = 5, 5
    assert bl.class_captions(logits) == ["an espresso", "a tabby"]
    assert with_article("owl") == "an owl" and with_article("cat") == "a cat"


def test_evaluate_writes_predictions_metrics_report(
    tiny_checkpoint: Path, shapes_data: Path, tmp_path: Path, capsys
) -> None:
    assert (
        main(
            [
                "evaluate",
                str(tiny_checkpoint),
                "--split",
                "val",
                "--beam",
                "2",
                "--out",
                str(tmp_path / "ev"),
                "--no-meteor",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "nearest-neighbour consensus" in printed and "health:" in printed
    preds = json.loads((tmp_path / "ev" / "predictions.json").read_text())
    n_val = sum(it.split == "val" for it in read_manifest(shapes_data))
    assert len(preds) == n_val and set(preds[0]) == {"image_id", "caption"}
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["split"] == "val" and m["decoding"]["beam"] == 2 and "pycocoevalcap" in m["versions"]
    assert m["decoding"]["name_threshold"] == 0.0  # a Show-and-Tell checkpoint names nothing
    assert set(m["baselines"]) >= {
        "nearest neighbour (k=1)",
        "nearest-neighbour consensus (k=5)",
        "rerank (model + weighted neighbours, n-best + neighbours)",
        "a/an <top-1 ImageNet class>",
    }
    page = (tmp_path / "ev" / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") == n_val and "confidence" in page
    again = score_predictions(tmp_path / "ev" / "predictions.json", shapes_data, "val", meteor=False)
    for k in ("BLEU-4", "ROUGE-L", "CIDEr-D"):
        assert again["metrics"][k] == pytest.approx(m["metrics"][k])


def test_bad_predictions_and_mismatched_features(tiny_checkpoint: Path, shapes_data: Path, tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps([{"image_id": "nope.png", "caption": "x"}]))
    with pytest.raises(CaptionerError, match="1 image ids are not in split 'val'"):
        score_predictions(tmp_path / "p.json", shapes_data, "val")
    (tmp_path / "q.json").write_text(json.dumps({"image_id": 1}))
    with pytest.raises(CaptionerError, match="expected a JSON list"):
        score_predictions(tmp_path / "q.json", shapes_data, "val")
    feats = tmp_path / "feats"
    shutil.copytree(shapes_data / "features", feats)
    index = json.loads((feats / "index.json").read_text())
    index["spec"]["input_size"] = 240
    (feats / "index.json").write_text(json.dumps(index))
    with pytest.raises(CaptionerError, match="encoder mismatch in input_size"):
        evaluate(tiny_checkpoint, "val", features=feats)


def test_rerank_trades_model_logprob_against_weighted_neighbours() -> None:
    from captioner.evaluate.run import rerank

    cider = bl.CiderD([["a red circle"], ["a blue square"], ["two red circles"], ["a green circle"]])
    cands = [["a blue square", "a red circle", "a green circle"]]
    judges = [["a red circle", "two red circles", "a red circle"]]
    even = [[1 / 3] * 3]
    logprob = [[-0.1, -2.0, -2.0]]  # the model prefers the square
    assert rerank(cands, judges, even, logprob, cider, weight=0.0) == ["a blue square"]
    assert rerank(cands, judges, even, logprob, cider, weight=10.0) == ["a red circle"]  # the neighbours agree
    twin = [["a green circle", "a red circle", "a red circle"]]  # the first neighbour is a near twin
    assert rerank(cands, twin, [[0.98, 0.01, 0.01]], logprob, cider, weight=10.0) == ["a green circle"]


def test_similarity_weights_share_a_softmax_over_neighbours() -> None:
    caps = [["a cat", "a kitten"], ["a dog"], ["a fish"]]
    nn, sims = bl.nearest_sims(
        np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], np.float32), np.array([[1.0, 0.1]], np.float32), k=2
    )
    assert nn.tolist() == [[0, 1]]
    w = bl.similarity_weights(caps, nn, sims, tau=0.1)[0]
    e = np.exp((sims[0] - sims[0].max()) / 0.1)
    want = e / e.sum()
    assert w == pytest.approx([want[0] / 2, want[0] / 2, want[1]])  # neighbour 0's weight split over its 2 captions
    assert sum(w) == pytest.approx(1.0)
    assert bl.similarity_weights(caps, nn, sims, tau=1e-4)[0] == pytest.approx([0.5, 0.5, 0.0])


def test_ensemble_of_checkpoints_evaluates_and_refuses_another_vocabulary(
    tiny_checkpoint: Path, shapes_data: Path, tmp_path: Path
) -> None:
    from captioner.train.checkpoint import load_checkpoint, load_ensemble, upgrade

    assert load_ensemble([tiny_checkpoint]).model.__class__ is load_checkpoint(tiny_checkpoint).model.__class__
    other = tmp_path / "other"
    shutil.copytree(tiny_checkpoint, other)
    m = evaluate(tiny_checkpoint, "val", 2, out=tmp_path / "ev", meteor=False, ensemble=[other])
    single = evaluate(tiny_checkpoint, "val", 2, out=tmp_path / "ev1", meteor=False)
    assert m["ensemble"] == [str(tiny_checkpoint), str(other)] and "ensemble" not in single
    consensus = "rerank (ensemble members' consensus + weighted neighbours)"
    assert consensus in m["baselines"] and consensus not in single["baselines"]
    assert m["metrics"]["CIDEr-D"] == pytest.approx(single["metrics"]["CIDEr-D"])  # twins decode as one
    vocab = json.loads((other / "vocab.json").read_text())
    vocab["itos"][-1], vocab["itos"][-2] = vocab["itos"][-2], vocab["itos"][-1]
    (other / "vocab.json").write_text(json.dumps(vocab))
    upgrade(other)  # its policy rebuilt for the changed vocabulary, so that it loads
    with pytest.raises(CaptionerError, match="its vocabulary differs"):
        evaluate(tiny_checkpoint, "val", 2, out=tmp_path / "ev2", meteor=False, ensemble=[other])


def test_split_sights_reads_each_image_once_and_names_what_is_missing(
    tiny_checkpoint: Path, shapes_data: Path, monkeypatch
) -> None:
    from captioner.evaluate import run as ev
    from captioner.features.extract import FeatureStore
    from captioner.train.checkpoint import load_checkpoint

    ck = load_checkpoint(tiny_checkpoint)
    store = FeatureStore(shapes_data / "features")
    sp = ev.load_split(read_manifest(shapes_data), store, "val")
    opened: list[Path] = []
    real = ev.open_image
    monkeypatch.setattr(ev, "open_image", lambda p: opened.append(p) or real(p))
    root = dataset_root(shapes_data)
    sights = ev.split_sights(ck, sp, root, store)
    assert opened == [root / it.image for it in sp.items]
    assert not any(s.photo or s.people for s in sights)  # flat drawn shapes are not photographs
    broken = root / sp.items[1].image

    def refuse(p: Path) -> object:
        if p == broken:
            raise ev.ImageError("corrupt or truncated image")
        return real(p)

    monkeypatch.setattr(ev, "open_image", refuse)  # the shared fixture's files stay as they are
    with pytest.raises(CaptionerError, match=f"{broken}: corrupt or truncated image"):
        ev.split_sights(ck, sp, root, store)
