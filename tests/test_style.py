"""One meaning in every language and one English style, on built examples: the concept tables come from the
training captions, a language switch keeps the English caption's concept, a bare countable noun gets its
article, and no word is said twice in a row."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import torch

from captioner.config import ModelConfig
from captioner.corpus.prepare import build_vocab, countable_nouns, noun_genders, repeated_words, word_translations
from captioner.data.manifest import Item
from captioner.decode.constrained import constrained_beam_search
from captioner.decode.rules import Rules, decode
from captioner.decode.search import beam_search, greedy
from captioner.decode.stepper import TorchStepper
from captioner.models import build_model
from captioner.policy import SAYABLE_WITHIN, Policy
from captioner.sights.look import Sight
from captioner.text.vocab import END_IX, Vocab

ITEMS = [
    Item("a.png", ["A cat.", "Кошка.", "Un chat."], "train", langs=["en", "ru", "fr"]),
    Item("b.png", ["cat", "кошка"], "train", langs=["en", "ru"]),
    Item("c.png", ["cat", "кот"], "train", langs=["en", "ru"]),
    Item("d.png", ["a red car", "красная машина"], "train", langs=["en", "ru"]),
    Item("e.png", ["scissors", "ножницы"], "train", langs=["en", "ru"]),
    Item("f.png", ["a box for trash that can be recycled", "мышь"], "train", langs=["en", "ru"]),
    Item("g.png", ["mouse", "мышь"], "train", langs=["en", "ru"]),
    Item("h.png", ["cow", "корова"], "test", langs=["en", "ru"]),  # not training
]
DRAWING = Sight(False, frozenset(), 0)


def test_concept_tables_come_from_the_training_captions_and_countable_nouns_from_wordnet_too(tmp_path: Path) -> None:
    known = {w for it in ITEMS for c in it.captions for w in c.lower().strip(".").split()}
    # one-word pairs; "a cat" / "un chat" and "red car" / "красная машина" are single pairs, too few to align
    assert word_translations(ITEMS, known) == {"ru": {"cat": "кошка", "mouse": "мышь", "scissors": "ножницы"}}
    english = [it.captions[0] for it in ITEMS if it.split == "train"]
    # WordNet's and the word list's countable nouns; not "scissors" (no plural), "red" (an adjective first),
    # "trash" (a substance), "recycled"
    assert countable_nouns(english, known) == ("box", "car", "cat", "mouse")
    # a word WordNet lacks is countable where the captions say "a"/"an" before it and it heads such a caption
    more = known | {"zorblat", "thing"}
    assert countable_nouns([*english, "a zorblat", "a big zorblat"], more) == ("box", "car", "cat", "mouse", "zorblat")
    assert countable_nouns([*english, "a zorblat thing"], more) == ("box", "car", "cat", "mouse")  # neither both
    arrows = [Item(f"{d}.png", [f"{d} arrow", f"стрелка {r}"], "train", langs=["en", "ru"])
              for d, r in (("up", "вверх"), ("left", "влево"), ("down", "вниз"))]  # fmt: skip
    words = {w for it in arrows for c in it.captions for w in c.split()}
    assert word_translations(arrows, words) == {"ru": {"arrow": "стрелка"}}  # "up" / "вверх": one pair only
    assert word_translations(ITEMS + arrows[:1], known | words)["ru"]["cat"] == "кошка"  # one-word pairs first
    vocab, _ = build_vocab(ITEMS, min_count=1)
    assert vocab.translations["ru"]["cat"] == "кошка" and vocab.countable == ("box", "car", "cat", "mouse")
    vocab.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == vocab  # the tables round-trip through vocab.json


def _vocab() -> Vocab:
    vocab, _ = build_vocab(ITEMS, min_count=1)
    return vocab


def _stepper(vocab: Vocab, loves: dict[str, float], batch: int = 1) -> TorchStepper:
    """An untrained decoder whose next-word scores are ruled by the biases `loves` (word -> bias)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="showtell", embed=8, hidden=16), len(vocab), 6).eval()
    with torch.no_grad():
        model.head.weight.mul_(0.01)
        model.head.bias.zero_()
        for w, b in loves.items():
            model.head.bias[vocab.stoi[w]] = b
    return TorchStepper(model, torch.randn(batch, 6), vocab.no_end_mask())


def _said(vocab: Vocab, caps: list) -> list[str]:
    return [vocab.decode(cs[0].tokens, articles=True) for cs in caps]


def test_a_language_switch_keeps_the_english_captions_concept() -> None:
    v = _vocab()
    policy = Policy.build(v, 0.0, "efficientnet-lite0")
    loves = {"cat": 9.0, "мышь": 12.0, "кот": 8.0, "chat": 4.0, "#END#": 6.0}  # Russian alone would say "мышь"
    en, ru = Rules.from_policy(policy, "en"), Rules.from_policy(policy, "ru")
    assert ru.concept is not None and ru.concept.first == en.first and en.concept is None
    blind = dataclasses.replace(ru, concept=None)  # the same rules with no concept: each language guesses
    assert _said(v, decode(_stepper(v, loves), [DRAWING], blind, 6)) == ["мышь"]
    assert _said(v, decode(_stepper(v, loves), [DRAWING], en, 6)) == ["a cat"]
    said = decode(_stepper(v, loves), [DRAWING], ru, 6)[0][0].tokens  # the translation of "cat", in Russian's words
    assert v.stoi["кошка"] in said, v.decode(said)  # (a decoder of biases alone adds its "мышь" around it)
    assert v.translations["ru"] == {"cat": "кошка", "mouse": "мышь", "scissors": "ножницы"}


def test_an_english_caption_another_language_cannot_say_gives_way_to_a_noun_every_language_can() -> None:
    v = _vocab()  # Russian's table: cat, mouse, scissors; French has none, so it asks nothing
    policy = Policy.build(v, 0.0, "efficientnet-lite0")
    en, ru = Rules.from_policy(policy, "en"), Rules.from_policy(policy, "ru")
    assert en.sayable == {v.stoi["cat"], v.stoi["mouse"]} and ru.sayable == frozenset()  # countable, sayable
    assert policy.language("en")["sayable"] == sorted(en.sayable) and en.said_in == (ru.rename.keys(),)  # type: ignore[union-attr]
    assert en.sayable_within == SAYABLE_WITHIN
    loves = {"car": 6.8, "cat": 6.0, "#END#": 6.0}  # "car": no Russian word for it; "cat" 0.4 per token below
    free = dataclasses.replace(en, sayable=frozenset())
    assert _said(v, decode(_stepper(v, loves), [DRAWING], free, 6)) == ["a car"]
    assert _said(v, decode(_stepper(v, loves), [DRAWING], en, 6)) == ["a cat"]
    assert v.stoi["кошка"] in decode(_stepper(v, loves), [DRAWING], ru, 6)[0][0].tokens  # the same concept
    far = {"car": 9.0, "cat": 6.0, "#END#": 6.0}  # "cat" 1.5 per token below: further than sayable_within
    assert _said(v, decode(_stepper(v, far), [DRAWING], en, 6)) == ["a car"]
    keep = {"scissors": 9.0, "cat": 6.0, "#END#": 6.0}  # Russian can say "scissors" (not countable): it stays
    assert _said(v, decode(_stepper(v, keep), [DRAWING], en, 6)) == ["scissors"]


def test_a_bare_countable_noun_gets_its_article_and_nothing_else_does() -> None:
    v = _vocab()
    en = Rules.from_policy(Policy.build(v, 0.0, "efficientnet-lite0"), "en")
    assert en.article == v.stoi["a"] and en.countable == {v.stoi[w] for w in ("box", "car", "cat", "mouse")}
    assert en.with_article([v.stoi["cat"]]) == [v.stoi["a"], v.stoi["cat"]]
    assert en.with_article([v.stoi["red"], v.stoi["cat"]]) == [v.stoi["a"], v.stoi["red"], v.stoi["cat"]]
    assert en.with_article([v.stoi["a"], v.stoi["cat"]]) is None  # already determined
    assert en.with_article([v.stoi["scissors"]]) is None and en.with_article([v.stoi["red"]]) is None
    for loves, want in (({"cat": 9.0, "#END#": 6.0}, "a cat"), ({"scissors": 9.0, "#END#": 6.0}, "scissors")):
        for beam in (1, 3):
            caps = decode(_stepper(v, loves), [DRAWING], en, 6, beam=beam, n_best=2)
            assert _said(v, caps) == [want]
            best = caps[0][0]
            assert best.confidence == best.logprob / (len(best.tokens) + 1)  # scored as said, article and all
    ru = Rules.from_policy(Policy.build(v, 0.0, "efficientnet-lite0"), "ru")
    assert ru.article == -1 and ru.with_article([v.stoi["кошка"]]) is None  # English's rule only


def test_an_indefinite_article_agrees_with_its_noun_in_german_french_and_spanish() -> None:
    items = [Item(f"{i}.png", caps, "train", langs=["en", "de", "fr", "es"]) for i, caps in enumerate([
        ["A cat.", "Eine Katze.", "Un chat.", "Un gato."],
        ["A black cat.", "Eine schwarze Katze.", "Un chat noir.", "Un gato negro."],
        ["A star.", "Ein Stern.", "Une étoile.", "Una estrella."],
        ["A cup of coffee.", "Eine Tasse Kaffee.", "Une tasse de café.", "Una taza de café."],
        ["cat", "Katze", "chat", "gato"]])]  # fmt: skip
    items += [Item(f"h{i}.png", [c], "train", langs=["de"]) for i, c in enumerate(["Eine Hose.", "Ein weiße Hose."])]
    known = {w for it in items for c in it.captions for w in c.lower().strip(".").split()}
    # German's noun is last ("eine schwarze katze"), but not after a capitalised noun ("Eine Tasse Kaffee");
    # French's and Spanish's is next ("un chat noir"); "une tasse de café" is longer than GENDERED_MAX; "hose" is
    # given "eine" and "ein" once each: no row
    assert noun_genders(items, known) == {"de": {"katze": "eine", "stern": "ein"},
                                          "es": {"estrella": "una", "gato": "un"},
                                          "fr": {"chat": "un", "étoile": "une"}}  # fmt: skip
    v, _ = build_vocab(items, min_count=1)
    policy = Policy.build(v, 0.0, "efficientnet-lite0")
    fr, es = Rules.from_policy(policy, "fr"), Rules.from_policy(policy, "es")
    wrong_star, wrong_cat = [v.stoi[w] for w in ("un", "étoile", "noir")], [v.stoi["una"], v.stoi["gato"]]
    assert fr.agreeing(wrong_star) == [v.stoi["une"], *wrong_star[1:]]  # the noun next, in French
    assert es.agreeing(wrong_cat) == [v.stoi["un"], v.stoi["gato"]]
    assert es.agreeing([v.stoi["un"], v.stoi["gato"]]) is None
    de = Rules.from_policy(policy, "de")
    ids = [v.stoi[w] for w in ("ein", "katze")]
    assert de.agreeing(ids) == [v.stoi["eine"], v.stoi["katze"]] and de.styled(ids) == de.agreeing(ids)
    assert de.agreeing([v.stoi["eine"], v.stoi["katze"]]) is None  # it agrees
    black = [v.stoi[w] for w in ("eine", "schwarze", "katze")]
    assert de.agreeing([v.stoi["ein"], *black[1:]]) == black
    assert de.agreeing([v.stoi[w] for w in ("ein", "tasse", "kaffee")]) is None  # no table row for "kaffee"
    from captioner.api import Captioner

    cat = Path(__file__).parents[1] / "examples" / "images" / "chelsea.jpg"
    got = Captioner.load().caption(str(cat), lang="de", n_best=3)  # the bundled model decodes "ein katze"
    assert got.caption == "eine katze" and got.confidence < 0  # scored as said


def test_no_word_is_said_twice_in_a_row_but_those_the_captions_repeat() -> None:
    items = [Item(f"{i}.png", ["family man man boy", "a fish fish"][: 1 + (i == 0)], "train") for i in range(2)]
    assert repeated_words(items, {"man", "fish", "boy"}) == ("man",)  # "fish fish": one caption only
    v = _vocab()
    st = _stepper(v, {"cat": 12.0, "#END#": 2.0}, batch=3)  # a decoder that would say "cat cat cat ..."
    caps = [c.tokens for c in greedy(st, 6)]
    caps += [c.tokens for cs in beam_search(st, 3, 6, n_best=3) for c in cs]
    caps += [c.tokens for i in range(3) if (c := constrained_beam_search(st, i, {v.stoi["red"]}, 3, 6))]
    assert caps and all(t.count(v.stoi["cat"]) >= 1 for t in caps[:3])
    assert all(a != b for t in caps for a, b in zip(t, t[1:], strict=False)), [v.decode(t) for t in caps]
    assert all(END_IX not in t for t in caps) and np.all([len(t) <= 6 for t in caps])
    st.repeat = np.zeros(len(v), dtype=bool)
    st.repeat[v.stoi["cat"]] = True  # "cat" may follow itself: a decoder that loves it says it again
    assert any(a == b == v.stoi["cat"] for c in greedy(st, 6) for a, b in zip(c.tokens, c.tokens[1:], strict=False))
    policy = Policy.build(dataclasses.replace(v, repeatable=("cat",)), 0.0, "efficientnet-lite0")
    rules = Rules.from_policy(policy, "en")
    assert rules.repeatable is not None and np.flatnonzero(rules.repeatable).tolist() == [v.stoi["cat"]]


def test_upgrade_with_the_training_data_gives_an_older_model_its_concept_tables(tmp_path: Path, capsys) -> None:
    """A vocabulary made before concept tables gets them from its dataset's training captions, and the policy
    rebuilt from it says the English caption's concept in Russian."""
    from captioner.api import default_model_path
    from captioner.cli.main import main
    from captioner.data.manifest import write_manifest
    from captioner.policy import POLICY_FILE

    old = tmp_path / "old"
    shutil.copytree(default_model_path(), old, ignore=shutil.ignore_patterns("onnx"))  # made before own exports
    bare = dataclasses.replace(Vocab.load(old / "vocab.json"), translations={}, countable=(), repeatable=(), genders={})
    bare.save(old / "vocab.json")
    items = [Item(f"{i}.png", ["A cat.", "Кошка.", "Un chat."], "train", langs=["en", "ru", "fr"]) for i in range(3)]
    items += [Item("x.png", ["zzzq", "кот"], "train", langs=["en", "ru"])]  # a word the vocabulary lacks: no row
    write_manifest(tmp_path / "data", items, tmp_path)
    assert main(["upgrade", str(old), "--data", str(tmp_path / "data")]) == 0
    assert capsys.readouterr().out.startswith(f"{old / POLICY_FILE}: written")
    got = Vocab.load(old / "vocab.json")
    # "cat" from the captions; English words no caption says by WordNet: a copied class name, "jacket", is
    # countable, "scissors" (no plural) and "red" (an adjective first) are not
    assert {"cat", "jacket"} <= set(got.countable) and not {"scissors", "red"} & set(got.countable)
    assert got.translations == {"fr": {"cat": "chat"}, "ru": {"cat": "кошка"}}  # "chat" aligned from "un chat"
    assert got.genders == {"fr": {"chat": "un"}}  # from "Un chat."
    assert got.repeatable == () and dataclasses.replace(got, translations={}, countable=(), genders={}) == bare
    policy = Policy.build(got, 0.4, "efficientnet-lite0").data
    assert policy["languages"]["ru"]["rename"] == {str(got.stoi["cat"]): got.stoi["кошка"]}
    assert policy["languages"]["en"]["countable"] == sorted(got.stoi[w] for w in got.countable)
    assert policy["concept"] == "en"


def test_decoding_keeps_words_whose_middle_is_a_language_tag() -> None:
    """ "tent" is 't' + 'en' + 't': only the language tokens themselves ('<en>') are left out of a caption."""
    v = Vocab.build(["a tent", "a tree", "палатка"], 1, ["en", "en", "ru"])
    ids = [v.stoi[w] for w in ("<en>", "a", "tent")]
    assert v.decode(ids, articles=True) == "a tent"
