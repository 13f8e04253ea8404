"""The seminar's own files: its caption pickle and GoogLeNet codes import, train and evaluate without images;
its Lasagne GoogLeNet weights load safely, match Lasagne's own outputs, and caption new images."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from captioner.cli.main import build_parser, main
from captioner.corpus.prepare import prepare
from captioner.data.manifest import read_manifest, split_by_hash
from captioner.errors import CaptionerError
from captioner.features.encoders import googlenet_spec, load_encoder, preprocess
from captioner.features.extract import FeatureStore
from captioner.features.googlenet import GoogLeNet, load_googlenet
from captioner.text.vocab import Vocab

from .lasagne_weights import random_weights
from .py2pickle import Unicode, dumps

WORDS = ["a", "dog", "cat", "on", "the", "grass", "sits", "red", "ball", "man"]
ROWS = 60


def _captions(i: int) -> list[str]:
    rng = np.random.default_rng(i)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 7)))) for _ in range(5 + i % 3)]


@pytest.fixture
def seed_dir(tmp_path: Path) -> Path:
    """data/ as in the seminar's tarball: caption_tokens.pcl (Python 2 protocol 2) and image_codes.npy."""
    d = tmp_path / "data"
    d.mkdir()
    caps = [[Unicode(c) if i % 2 else c for c in _captions(i)] for i in range(ROWS)]  # py2 unicode and str alike
    (d / "caption_tokens.pcl").write_bytes(dumps(caps))
    np.save(d / "image_codes.npy", np.random.default_rng(0).normal(size=(ROWS, 1000)).astype(np.float32))
    return d


def test_seed_import_round_trip(seed_dir: Path, tmp_path: Path) -> None:
    summary = prepare("seed", seed_dir, tmp_path / "out")
    items = read_manifest(tmp_path / "out")
    assert [it.captions for it in items] == [_captions(i) for i in range(ROWS)]
    assert [it.image for it in items] == [f"seed/{i:06d}" for i in range(ROWS)]
    assert [it.split for it in items] == [split_by_hash(f"seed/{i:06d}") for i in range(ROWS)]
    assert summary["images"] == ROWS
    vocab = Vocab.load(tmp_path / "out" / "vocab.json")
    assert vocab.min_count == 5 and vocab.itos[4] == "<en>" and set(vocab.itos[5:]) <= set(WORDS)  # COCO: English
    store = FeatureStore(tmp_path / "out" / "features")
    np.testing.assert_array_equal(store.get("logits", list(range(ROWS))), np.load(seed_dir / "image_codes.npy"))
    assert store.spec == googlenet_spec(floor=True) and list(store.arrays) == ["logits"]
    (seed_dir / "caption_tokens.pcl").rename(seed_dir / "caption_tokens.pkl")  # the notebook's name works too
    prepare("seed", seed_dir, tmp_path / "out2")
    assert read_manifest(tmp_path / "out2") == items


def _karpathy(path: Path, rows: int, bad_row: int | None = None) -> Path:
    splits = ["train", "val", "test", "restval"]
    images = []
    for i in range(rows):
        sents = [{"tokens": c.split(), "raw": c} for c in _captions(i)]
        if i == bad_row:
            sents[0]["tokens"] = ["something", "else"]
        images.append(
            {"filepath": "val2014", "filename": f"COCO_{i:012d}.jpg", "split": splits[i % 4], "sentences": sents}
        )
    path.write_text(json.dumps({"images": images, "dataset": "coco"}))
    return path


def test_karpathy_split_after_row_check(seed_dir: Path, tmp_path: Path, capsys) -> None:
    good = _karpathy(tmp_path / "dataset_coco.json", ROWS)
    prepare("seed", seed_dir, tmp_path / "k", karpathy=good)
    items = read_manifest(tmp_path / "k")
    assert [it.split for it in items] == [["train", "val", "test", "train"][i % 4] for i in range(ROWS)]
    assert items[3].image == "val2014/COCO_000000000003.jpg"

    bad = _karpathy(tmp_path / "bad.json", ROWS, bad_row=17)
    with pytest.raises(CaptionerError, match=r"images\[17\] \(val2014/COCO_000000000017.jpg\) does not match"):
        prepare("seed", seed_dir, tmp_path / "b", karpathy=bad)
    short = _karpathy(tmp_path / "short.json", ROWS - 1)
    args = ["prepare", "--format", "seed", str(seed_dir), "--out", str(tmp_path / "s"), "--karpathy", str(short)]
    assert main(args) == 2
    assert f"{ROWS - 1} images, but the captions pickle has {ROWS} rows" in capsys.readouterr().err
    assert not (tmp_path / "s" / "manifest.jsonl").exists()


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("touch /tmp/captioner-seed-pwned",))


def test_malicious_pickles_are_refused_and_never_run(seed_dir: Path, tmp_path: Path) -> None:
    marker = Path("/tmp/captioner-seed-pwned")
    marker.unlink(missing_ok=True)
    (seed_dir / "caption_tokens.pcl").write_bytes(pickle.dumps([["a dog"], _Evil()], protocol=2))
    with pytest.raises(CaptionerError, match=r"caption_tokens.pcl: refused to load: the pickle asks for posix.system"):
        prepare("seed", seed_dir, tmp_path / "out")
    (seed_dir / "caption_tokens.pcl").write_bytes(pickle.dumps([["a dog"], [np.float32(1)]], protocol=2))
    with pytest.raises(CaptionerError, match="refused to load: the pickle asks for numpy"):
        prepare("seed", seed_dir, tmp_path / "out")
    weights = tmp_path / "blvc_googlenet.pkl"
    weights.write_bytes(pickle.dumps({"param values": [_Evil()], "synset words": []}, protocol=2))
    with pytest.raises(CaptionerError, match="blvc_googlenet.pkl: refused to load: the pickle asks for posix.system"):
        load_googlenet(weights)
    obj = np.array([os.system], dtype=object)  # an object array would call anything it holds
    weights.write_bytes(pickle.dumps({"param values": [obj]}, protocol=4))
    with pytest.raises(CaptionerError, match="an array of Python objects"):
        load_googlenet(weights)
    assert not marker.exists()


def test_bad_codes_and_caption_rows_are_named(seed_dir: Path, tmp_path: Path) -> None:
    np.save(seed_dir / "image_codes.npy", np.zeros((ROWS - 1, 1000), np.float32))
    with pytest.raises(CaptionerError, match=r"image_codes.npy: shape \(59, 1000\) float32, expected \(60, D\)"):
        prepare("seed", seed_dir, tmp_path / "out")
    (seed_dir / "caption_tokens.pcl").write_bytes(dumps([["a dog"], "not a list"]))
    with pytest.raises(CaptionerError, match="caption_tokens.pcl: row 1 is not a non-empty list of caption strings"):
        prepare("seed", seed_dir, tmp_path / "out")


def lasagne_shapes() -> list[tuple[int, ...]]:
    """'param values' shapes in Lasagne's order (DATA_FACTS section 3): conv W (out, in, kh, kw), Dense W (in, out)."""
    return [
        tuple(p.shape[::-1]) if n == "loss3/classifier" and k == "W" else tuple(p.shape)
        for n, k, p in GoogLeNet().lasagne_order()
    ]


@pytest.fixture
def weights(tmp_path: Path, monkeypatch) -> Path:
    """blvc_googlenet.pkl as the Lasagne model zoo wrote it from Python 2, with seeded random weights."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "blvc_googlenet.pkl"
    words = [f"n{i:08d} class{i}, other name" for i in range(1000)]
    path.write_bytes(dumps({"param values": random_weights(lasagne_shapes()), "synset words": words}))
    return path


def test_lasagne_order_and_sizes() -> None:
    shapes = lasagne_shapes()
    ref = np.load(Path(__file__).parent / "data" / "lasagne_googlenet.npz")
    assert len(shapes) == 116 and sum(int(np.prod(s)) for s in shapes) == 6_998_552
    assert [str(s) for s in shapes] == list(ref["shapes"])  # the order Lasagne's get_all_params gave


def test_port_matches_lasagne_logits(weights: Path) -> None:
    """Logits of the committed Lasagne run (tools/lasagne_reference.py) on three scikit-image photos."""
    import skimage.data

    ref = np.load(Path(__file__).parent / "data" / "lasagne_googlenet.npz")
    photos = [Image.fromarray(getattr(skimage.data, n)()).convert("RGB") for n in ("chelsea", "coffee", "astronaut")]
    for floor in (False, True):
        enc = load_encoder("googlenet-bvlc-floor" if floor else "googlenet-bvlc", weights)
        x = torch.stack([enc.preprocess(p) for p in photos])
        got = enc.forward_features(x).logits.numpy()
        want = ref["floor" if floor else "ceil"]
        assert np.abs(got - want).max() < 1e-3 * np.abs(want).max()  # measured: 2e-4 on logits up to 500
        assert (got.argmax(1) == want.argmax(1)).all()
    assert enc.labels[:2] == ("class0", "class1")
    assert list((weights.parent / "cache" / "captioner").glob("googlenet-*.safetensors"))  # converted once


def test_seminar_preprocessing_matches_skimage() -> None:
    from skimage.transform import resize

    rng = np.random.default_rng(0)
    for h, w in ((300, 400), (500, 260), (100, 150), (224, 224)):
        im = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        nh, nw = (224, w * 224 // h) if h < w else (h * 224 // w, 224)
        r = resize(im, (nh, nw), order=1, mode="constant", anti_aliasing=False, preserve_range=True)
        r = r[nh // 2 - 112 : nh // 2 + 112, nw // 2 - 112 : nw // 2 + 112][..., ::-1] - [104, 117, 123]  # BGR
        got = preprocess(Image.fromarray(im), googlenet_spec(False)).transpose(1, 2, 0)
        assert np.abs(got - r).max() < 1e-3, (h, w)


def test_wrong_count_shape_and_order_are_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    vals, words = random_weights(lasagne_shapes()), ["x"] * 1000
    path = tmp_path / "w.pkl"
    cases = [
        (vals[:-1], "'param values' has 115 arrays, GoogLeNet needs 116"),
        (vals[:4] + [vals[4][:, :32]] + vals[5:], r"param values\[4\] \(conv2/3x3 W\) is \(192, 32, 3, 3\)"),
        (vals[:2] + [vals[3], vals[2]] + vals[4:], r"param values\[2\] \(conv2/3x3_reduce W\) is \(64,\)"),
        (vals[:-2] + [vals[-2].T, vals[-1]], r"param values\[114\] \(loss3/classifier W\) is \(1000, 1024\)"),
    ]
    for values, message in cases:
        path.write_bytes(dumps({"param values": values, "synset words": words}))
        with pytest.raises(CaptionerError, match=message):
            load_googlenet(path)
    path.write_bytes(dumps({"param values": vals, "synset words": words[:10]}))
    with pytest.raises(CaptionerError, match="'synset words' must be a list of 1000 class names"):
        load_googlenet(path)


def test_train_and_evaluate_on_the_seminar_codes(seed_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["prepare", "--format", "seed", str(seed_dir), "--out", str(tmp_path / "d")]) == 0
    seed_toml = str(Path(__file__).parents[1] / "configs" / "seed.toml")
    run = tmp_path / "run"
    args = ["train", seed_toml, f"train.data={tmp_path / 'd'}", f"train.out={run}", "train.epochs=2"]
    assert main([*args, "train.steps_per_epoch=5", "train.batch_size=20"]) == 0
    ev = tmp_path / "ev"
    assert main(["evaluate", str(run / "best"), "--split", "val", "--no-meteor", "--out", str(ev)]) == 0
    m = json.loads((ev / "metrics.json").read_text())
    assert m["images"] == sum(split_by_hash(f"seed/{i:06d}") == "val" for i in range(ROWS))
    assert {"nearest neighbour (k=1)", "a/an <top-1 ImageNet class>"} <= set(m["baselines"])
    assert 0 <= m["metrics"]["CIDEr-D"]


def test_extract_and_caption_through_googlenet(weights: Path, tmp_path: Path, capsys) -> None:
    from .conftest import make_image

    src = tmp_path / "imgs"
    for i in range(6):
        make_image(src / f"p{i}.png", i, size=(300, 200))
        (src / f"p{i}.txt").write_text(f"a picture number {i % 2}\n")
    prepare("folder", src, tmp_path / "d", min_count=1, ratios=(1.0, 0.0, 0.0))
    data = str(tmp_path / "d")
    args = ["extract", data, "--encoder", "googlenet-bvlc-floor", "--encoder-weights", str(weights), "--workers", "0"]
    assert main(args) == 0
    store = FeatureStore(tmp_path / "d" / "features")
    assert store.spec == googlenet_spec(floor=True) and store.get("logits", [0]).shape == (1, 1000)
    run = tmp_path / "run"
    seed_toml = str(Path(__file__).parents[1] / "configs" / "seed.toml")
    fit = ["train.epochs=2", "train.steps_per_epoch=40", "train.lr=0.01", "model.dropout=0"]
    assert main(["train", seed_toml, f"train.data={data}", f"train.out={run}", *fit]) == 0
    capsys.readouterr()
    cmd = ["caption", str(src / "p0.png"), "--checkpoint", str(run / "best"), "--json"]
    assert main(cmd) == 2
    assert "encoder googlenet-bvlc-floor needs its weights: pass --encoder-weights" in capsys.readouterr().err
    assert main([*cmd, "--encoder-weights", str(weights)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["caption"] in ("a picture number 0", "a picture number 1"), out
    assert out["tags"][0]["label"].startswith("class")  # tags come from the pickle's 'synset words'
    from fastapi.testclient import TestClient

    from captioner.api import Captioner
    from captioner.serve.app import create_app

    cap = Captioner.load(run / "best", encoder_weights=weights)
    assert cap.caption(str(src / "p0.png")).caption == out["caption"]
    with TestClient(create_app(cap)) as client:  # what `captioner serve --encoder-weights` runs
        png = (src / "p0.png").read_bytes()
        assert (
            client.post("/caption", files={"image": ("p0.png", png, "image/png")}).json()["caption"] == out["caption"]
        )
    serve = build_parser().parse_args(["serve", "--checkpoint", str(run / "best"), "--encoder-weights", str(weights)])
    assert serve.encoder_weights == str(weights)
    ort = pytest.importorskip("onnxruntime")  # the seminar's network exports too (LRN, floor pooling)
    assert main(["export", str(run / "best"), "--out", str(tmp_path / "onnx"), "--encoder-weights", str(weights)]) == 0
    x = torch.stack([cap.runtime.encoder.preprocess(Image.open(src / "p0.png").convert("RGB"))])
    got = ort.InferenceSession(str(tmp_path / "onnx" / "encoder.onnx")).run(None, {"image": x.numpy()})[1]
    want = cap.runtime.encoder.forward_features(x).logits.numpy()
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()


def test_external_features_train_but_refuse_raw_images(folder_dataset: Path, tmp_path: Path, capsys) -> None:
    feats = np.random.default_rng(0).normal(size=(12, 32)).astype(np.float32)
    np.save(tmp_path / "mine.npy", feats)
    args = ["prepare", "--format", "folder", str(folder_dataset), "--out", str(tmp_path / "d")]
    assert main([*args, "--features", str(tmp_path / "mine.npy"), "--split-ratio", "1,0,0", "--min-count", "1"]) == 0
    store = FeatureStore(tmp_path / "d" / "features")
    assert store.spec.name == "external" and store.spec.pooled_dim == 32
    np.testing.assert_array_equal(store.get("pooled", list(range(12))), feats)
    run = tmp_path / "run"
    assert main(["train", f"train.data={tmp_path / 'd'}", f"train.out={run}", "train.epochs=1"]) == 0
    capsys.readouterr()
    assert main(["caption", str(folder_dataset / "img00.png"), "--checkpoint", str(run / "best")]) == 2
    err = capsys.readouterr().err
    assert "trained on features brought with `prepare --features` (mine.npy sha1:" in err and "32-d" in err
    np.save(tmp_path / "short.npy", feats[:5])
    assert main([*args[:-2], "--out", str(tmp_path / "e"), "--features", str(tmp_path / "short.npy")]) == 2
    assert "short.npy: shape (5, 32) float32, expected (12, D)" in capsys.readouterr().err


def test_weights_file_for_a_packaged_encoder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CaptionerError, match="encoder efficientnet-lite0: its weights come from its package"):
        load_encoder("efficientnet-lite0", tmp_path / "blvc_googlenet.pkl")
    with pytest.raises(CaptionerError, match="blvc_googlenet.pkl: GoogLeNet weights not found"):
        load_encoder("googlenet-bvlc", tmp_path / "blvc_googlenet.pkl")
