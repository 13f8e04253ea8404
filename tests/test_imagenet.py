"""Class names a person would say: basic-level names from WordNet, and which words name an object."""

from __future__ import annotations

from importlib.resources import files

import pytest

from captioner.features.imagenet import WORDNET, build_hypernym_table, class_words, imagenet_classes, naming_nouns

CLASSES = {c.lemmas[0]: c.index for c in imagenet_classes()}


def name(lemma: str, known: set[str] = set()) -> str:  # noqa: B006 - read only
    return class_words(known)[CLASSES[lemma]].word


def test_basic_level_names_walk_up_wordnet() -> None:
    assert name("tabby") == "cat"  # 'tabby cat': WordNet confirms a tabby is a cat
    assert name("tench") == "fish"  # tench > cyprinid fish
    assert name("prairie chicken") == "bird"  # not 'chicken': a prairie chicken is a grouse
    assert name("sports car") == "car" and name("garbage truck") == "truck"
    assert name("espresso") == "coffee"  # espresso > coffee, a basic-level noun
    assert name("espresso", {"espresso"}) == "espresso"  # the caption data's own word wins
    assert name("binoculars") == "binoculars"  # not 'glasses' (field glasses): kept as it is
    assert name("tricycle") == "tricycle"  # nothing basic within three levels: its own word
    names = class_words()
    assert len(names) == 1000 and all(" " not in n.word and n.word for n in names)


@pytest.mark.skipif(not (WORDNET / "data.noun").is_file(), reason="needs Debian wordnet-base")
def test_hypernym_table_is_regenerated_exactly_from_wordnet() -> None:
    shipped = (files("captioner") / "data" / "imagenet_hypernyms.tsv").read_text(encoding="utf-8")
    assert build_hypernym_table() == shipped


@pytest.mark.skipif(not (WORDNET / "data.noun").is_file(), reason="needs Debian wordnet-base")
def test_naming_nouns_accept_synonyms_and_basic_hypernyms_only() -> None:
    assert naming_nouns("gander") == {"gander", "goose", "bird"}
    assert {"gravestone", "headstone", "tombstone"} <= naming_nouns("gravestone")
    assert "truck" not in naming_nouns("cherry")  # 'garden truck' is produce, not a truck
    assert "guy" not in naming_nouns("cat")  # slang senses of people are not the animal
    assert naming_nouns("tape measure") >= {"tape", "tapeline"}
