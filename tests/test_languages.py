"""Captions in several languages: a language token starts each caption, decoding in one language says only its
words, an unknown language is a clear error, evaluation scores one language, and the held-out-style split."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from captioner.config import ModelConfig
from captioner.corpus.heldout import held_out_style
from captioner.data.manifest import Item
from captioner.decode.rules import Rules, decode
from captioner.decode.search import beam_search, greedy, sample
from captioner.decode.stepper import TorchStepper
from captioner.errors import CaptionerError
from captioner.models import build_model
from captioner.policy import Policy
from captioner.sights.colours import RU_WORD_COLOURS, colour_words
from captioner.sights.look import Sight
from captioner.text.metrics import coco_metrics
from captioner.text.vocab import END_IX, START_IX, Vocab
from tests.conftest import COLORS

RU = {"red": "красный", "green": "зелёный", "blue": "синий", "yellow": "жёлтый"}
RU_SHAPE = {"square": "квадрат", "circle": "круг"}


def _bilingual_vocab() -> Vocab:
    caps = ["a red cat", "a blue dog", "красный кот", "синяя собака", "un chat rouge"]
    return Vocab.build(caps, 1, ["en", "en", "ru", "ru", "fr"])


def test_a_language_token_starts_each_caption_and_the_vocab_round_trips(tmp_path: Path) -> None:
    v = _bilingual_vocab()
    assert v.itos[4:7] == ("<en>", "<fr>", "<ru>")
    assert {t: sorted(v.itos[i] for i in ids) for t, ids in v.langs.items()} == {
        "en": ["a", "blue", "cat", "dog", "red"],
        "fr": ["chat", "rouge", "un"],
        "ru": ["кот", "красный", "синяя", "собака"],
    }
    assert v.encode("красный кот", lang="ru") == [v.stoi["<ru>"], v.stoi["красный"], v.stoi["кот"], END_IX]
    assert v.encode("a red cat")[0] == v.stoi["<en>"]  # English by default
    assert v.decode(v.encode("красный кот", lang="ru")) == "красный кот"
    assert v.no_end_mask()[[v.stoi["<en>"], v.stoi["<fr>"], v.stoi["<ru>"], START_IX]].all()  # no empty caption
    v.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == v


def test_an_unknown_language_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(CaptionerError, match=r"language 'de' is unknown to this model; it knows en, fr, ru"):
        _bilingual_vocab().first("de")
    with pytest.raises(CaptionerError, match=r"language 'ru': this model was trained without language tags"):
        Vocab.build(["a red cat"], 1).first("ru")
    assert Vocab.build(["a red cat"], 1).first("en") == START_IX


@pytest.mark.parametrize("how", ["greedy", "beam", "sample", "truth"])
def test_no_word_leaks_from_one_language_into_another(how: str) -> None:
    """An untrained decoder would say any word; in Russian it says only Russian words, in English only English."""
    v = _bilingual_vocab()
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="showtell", embed=8, hidden=16), len(v), 6).eval()
    feats = torch.randn(16, 6)
    for lang in ("ru", "en"):
        rules = Rules.from_policy(Policy.build(v, 0.0, "efficientnet-lite0"), lang)
        st = TorchStepper(model, feats, v.no_end_mask())
        st.first, st.forbid = rules.first, rules.forbid([Sight(False, frozenset(), 0)] * 16)
        if how == "greedy":
            caps = greedy(st, 6)
        elif how == "beam":
            caps = [c for cs in beam_search(st, 3, 6, n_best=3) for c in cs]
        elif how == "sample":
            caps = sample(st, 6, temperature=5.0, seed=1)
        else:
            blind = [Sight(False, frozenset(), 0)] * 16
            caps = [c for cs in decode(TorchStepper(model, feats, v.no_end_mask()), blind, rules, 6) for c in cs]
        said = {v.itos[t] for c in caps for t in c.tokens}
        assert said and said <= {v.itos[i] for i in v.langs[lang]}, (lang, said)


def test_russian_german_french_and_spanish_colour_words_are_ruled_out_as_english_ones_are() -> None:
    assert {"красный", "красная", "красного", "синяя", "синий", "белые", "серого"} <= RU_WORD_COLOURS.keys()
    assert not {"белка", "сердце", "серьги", "синица"} & RU_WORD_COLOURS.keys()  # nouns that start alike
    v = _bilingual_vocab()
    rules = Rules.from_policy(Policy.build(v, 0.0, "efficientnet-lite0"), "ru")
    blue_only = rules.forbid([Sight(False, frozenset({"blue"}), 0)])[0]
    assert blue_only[v.stoi["красный"]] and not blue_only[v.stoi["синяя"]] and not blue_only[v.stoi["кот"]]
    assert {"rote", "blauen", "weiß"} <= colour_words("de").keys() and colour_words("de")["grünes"] == {"green"}
    assert colour_words("fr")["blanches"] == {"white"} and colour_words("es")["azules"] == {"blue"}
    assert not {"rotkehlchen", "blaubeere", "chat", "gato"} & (colour_words("de") | colour_words("es")).keys()
    fr = Vocab.build(["un chat rouge", "a red cat"], 1, ["fr", "en"])
    fr_rules = Rules.from_policy(Policy.build(fr, 0.0, "efficientnet-lite0"), "fr")
    blue_only = fr_rules.forbid([Sight(False, frozenset({"blue"}), 0)])[0]
    assert blue_only[fr.stoi["rouge"]] and not blue_only[fr.stoi["chat"]]
    assert colour_words("it") == {}


def test_scores_in_another_language_use_unicode_tokens_and_no_meteor() -> None:
    refs = {str(i): [f"красный кот номер{i}", "кот"] for i in range(3)}
    hyps = {str(i): f"Красный кот, номер{i}!" for i in range(3)}
    m = coco_metrics(refs, hyps, meteor=True, lang="ru")
    assert m["tokenizer"] == "captioner-unicode" and "METEOR" in m["unavailable"] and m["BLEU-1"] == pytest.approx(1)


def _emoji(key: str, style: str, split: str) -> Item:
    return Item(f"images/{style}/{key}.png", [key], split, style, extra={"group": key}, langs=["en"])


def test_held_out_style_split_has_no_trained_concept_style_pair() -> None:
    items = [
        *(_emoji(k, s, "train") for k in ("a", "b") for s in ("openmoji", "twemoji", "noto")),
        _emoji("c", "twemoji", "train"),  # only in the held-out style: no other style trained on it
        *(_emoji("d", s, "test") for s in ("openmoji", "twemoji")),
        Item("images/tuxpaint/x.png", ["x"], "val", "tuxpaint"),
        Item("images/tuxpaint/y.png", ["y"], "test", "tuxpaint"),
    ]
    got = held_out_style(items, "twemoji")
    trained = {(it.extra.get("group"), it.source) for it in got if it.split == "train"}
    tested = {(it.extra["group"], it.source) for it in got if it.split == "test"}
    assert tested == {("a", "twemoji"), ("b", "twemoji")} and not tested & trained
    assert {g for g, _ in tested} <= {g for g, s in trained}  # every test emoji was trained in another style
    assert {it.image for it in got if it.split != "test"} == {
        *(f"images/{s}/{k}.png" for k in ("a", "b") for s in ("openmoji", "noto")),
        "images/tuxpaint/x.png",
    }
    one = held_out_style(items, "twemoji", only="openmoji")
    assert {it.source for it in one if it.split == "train"} == {"openmoji"}
    with pytest.raises(CaptionerError, match="--only twemoji: the style trained on cannot be the held-out one"):
        held_out_style(items, "twemoji", only="twemoji")
    with pytest.raises(CaptionerError, match="--style 'fluent': not an emoji style"):
        held_out_style(items, "fluent")


@pytest.fixture(scope="module")
def bilingual_run(tmp_path_factory: pytest.TempPathFactory, encoder) -> Path:  # type: ignore[no-untyped-def]
    """Drawn shapes captioned in English and Russian (a JSONL with a language per row; two validation images in
    Russian only, which English validation skips), and a model trained on them."""
    from captioner.cli.main import main
    from captioner.corpus.prepare import prepare
    from captioner.features.extract import extract

    root = tmp_path_factory.mktemp("bilingual")
    rows = []
    for name, rgb in COLORS.items():
        for shape in ("square", "circle"):
            for k in range(3):
                img = Image.new("RGB", (64, 64), (255, 255, 255))
                box = (8 + 3 * k, 8 + 2 * k, 56 - k, 56 - 2 * k)
                (ImageDraw.Draw(img).rectangle if shape == "square" else ImageDraw.Draw(img).ellipse)(box, fill=rgb)
                img.save(root / f"{name}_{shape}_{k}.png")
                split = "val" if k == 2 else "train"
                if not (split == "val" and name == "yellow"):  # validation images with no English caption
                    rows.append({"image": f"{name}_{shape}_{k}.png", "caption": f"a {name} {shape}", "split": split})
                rows.append({"image": f"{name}_{shape}_{k}.png", "caption": f"{RU[name]} {RU_SHAPE[shape]}",
                             "lang": "ru", "split": split})  # fmt: skip
    Image.new("RGB", (64, 64), (90, 90, 90)).save(root / "grey.png")  # captioned in no language the model learns
    rows.append({"image": "grey.png", "caption": "un quadrato grigio", "lang": "und", "split": "train"})
    (root / "caps.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    prepare("jsonl", root / "caps.jsonl", root / "data", min_count=1)
    extract(root / "data", root / "data" / "features", encoder, workers=0)
    args = ["train.epochs=3", "train.steps_per_epoch=40", "train.batch_size=24", "train.lr=0.01", "model.dropout=0"]
    assert main(["train", f"train.data={root / 'data'}", f"train.out={root / 'run'}", *args]) == 0
    return root


def test_caption_and_evaluate_in_the_language_asked_for(bilingual_run: Path, capsys) -> None:
    from captioner.api import Captioner
    from captioner.cli.main import main
    from captioner.evaluate.run import evaluate

    cap = Captioner.load(bilingual_run / "run" / "best", people=False)
    assert cap.languages == ("en", "ru")
    img = bilingual_run / "red_circle_0.png"
    ru_words = {w for c in RU.values() for w in [c]} | set(RU_SHAPE.values())
    assert set(cap.caption(img, lang="ru").caption.split()) <= ru_words
    assert set(cap.caption(img).caption.split()) <= {"a", *COLORS, "square", "circle"}
    assert main(["caption", str(img), "--checkpoint", str(bilingual_run / "run" / "best"), "--lang", "de"]) == 2
    assert "language 'de' is unknown to this model; it knows en, ru" in capsys.readouterr().err
    r = evaluate(bilingual_run / "run" / "best", "val", out=bilingual_run / "eval-ru", meteor=False, lang="ru")
    refs = {
        p["image_id"]: p["caption"] for p in json.loads((bilingual_run / "eval-ru" / "predictions.json").read_text())
    }
    assert r["metrics"]["tokenizer"] == "captioner-unicode" and r["metrics"]["images"] == 8
    assert all(set(c.split()) <= ru_words for c in refs.values())
    nn = json.loads((bilingual_run / "eval-ru" / "baselines.json").read_text())["nearest neighbour (k=1)"]
    assert all(set(c.split()) <= ru_words for c in nn)  # the baselines answer in Russian too
    assert np.isfinite(r["metrics"]["CIDEr-D"])


def test_validation_scores_each_language_and_chooses_on_their_mean(bilingual_run: Path, tmp_path: Path, capsys) -> None:
    from captioner.cli.main import main

    hist = json.loads((bilingual_run / "run" / "latest" / "train_state.json").read_text())["history"]
    assert len(hist) == 3
    for h in hist:
        assert h["CIDEr-D"] == pytest.approx((h["CIDEr-D en"] + h["CIDEr-D ru"]) / 2)
        assert h["BLEU-4"] == pytest.approx((h["BLEU-4 en"] + h["BLEU-4 ru"]) / 2)
    best = json.loads((bilingual_run / "run" / "best" / "meta.json").read_text())
    assert best["epoch"] == max(hist, key=lambda h: h["CIDEr-D"])["epoch"]  # the first of equal ones
    # Russian captions scored against Russian references (against English ones every n-gram would miss)
    assert hist[-1]["BLEU-2 ru"] == pytest.approx(1.0) and hist[-1]["BLEU-2 en"] == pytest.approx(1.0)
    shutil.copytree(bilingual_run / "run", tmp_path / "run")
    args = ["train.steps_per_epoch=40", "train.batch_size=24", "train.lr=0.01", "model.dropout=0", "train.epochs=4"]
    assert (
        main(["train", f"train.data={bilingual_run / 'data'}", f"train.out={tmp_path / 'run'}", *args, "--resume"]) == 0
    )
    assert re.search(
        r"best validation CIDEr-D [0-9.]+ \(BLEU-4 [0-9.]+, the mean over en, ru\)", capsys.readouterr().out
    )


def test_training_leaves_out_images_with_no_caption_in_a_taught_language(bilingual_run: Path) -> None:
    from captioner.config import load_config
    from captioner.train.data import load_data

    d = load_data(load_config(None, [f"train.data={bilingual_run / 'data'}"]))
    assert d.store.row["grey.png"] not in d.train_rows.tolist() and all(d.train_caps)
    assert len(d.train_rows) == 2 * 2 * len(COLORS)


def test_languages_with_too_few_captions_or_unknown_are_not_taught(caplog) -> None:
    from collections import Counter

    from captioner.corpus.prepare import build_vocab, taught_languages
    from captioner.data.manifest import Item

    assert taught_languages(Counter({"en": 500, "ru": 400, "it": 8, "und": 50})) == {"en", "ru"}
    assert taught_languages(Counter({"und": 50})) == set()  # nothing known: one language, no tokens
    items = [Item(f"{i}.png", ["a cat", "кошка"], "train", langs=["en", "ru"]) for i in range(60)]
    items.append(Item("x.png", ["gatto", "mystery"], "train", langs=["it", "und"]))
    with caplog.at_level("INFO", logger="captioner.corpus.prepare"):
        vocab, _ = build_vocab(items, min_count=1)
    assert vocab.langs.keys() == {"en", "ru"} and not {"gatto", "mystery", "<it>", "<und>"} & set(vocab.itos)
    assert "captions in it (1), und (1) are left out of training" in caplog.text


def test_a_photo_is_named_in_the_language_asked_for_by_the_class_words_translation() -> None:
    from captioner.corpus.prepare import word_translations

    items = [
        Item("a.png", ["A cat.", "Кошка.", "Chat."], "train", langs=["en", "ru", "fr"]),
        Item("b.png", ["cat", "кошка"], "train", langs=["en", "ru"]),
        Item("c.png", ["cat", "кот"], "train", langs=["en", "ru"]),
        Item("d.png", ["a red dog", "красная собака"], "train", langs=["en", "ru"]),  # not one word: no pair
        Item("e.png", ["cow", "корова"], "test", langs=["en", "ru"]),  # not training
    ]
    known = {"cat", "кошка", "кот", "chat", "dog", "собака", "cow", "корова"}
    assert word_translations(items, known) == {"fr": {"cat": "chat"}, "ru": {"cat": "кошка"}}
    v = Vocab.build(["a cat", "кошка", "кот", "dog", "собака"], 1, ["en", "ru", "ru", "en", "ru"])
    v = Vocab(v.itos, 1, (), v.langs, {"ru": {"cat": "кошка"}})
    photo = [Sight(True, frozenset(), 0)] * 2
    offered = (np.array([[0.9], [0.9]]), np.array([[v.stoi["cat"]], [v.stoi["dog"]]]))
    ru = Rules.from_policy(Policy.build(v, 0.5, "efficientnet-lite0"), "ru").musts(photo, offered)
    assert ru[0] is not None and ru[0].words == {v.stoi["кошка"]} and ru[1] is None  # "dog": no translation
    en = Rules.from_policy(Policy.build(v, 0.5, "efficientnet-lite0"), "en").musts(photo, offered)
    assert en[0].words == {v.stoi["cat"]} and en[1].words == {v.stoi["dog"]}  # type: ignore[union-attr]
