"""Synthetic compositional scenes: captions from the scene graph, seeded, held-out combinations kept apart."""

from __future__ import annotations

import json
from pathlib import Path

from captioner.cli.main import main
from captioner.corpus.scenes import HELD_OUT, caption
from captioner.data.manifest import read_manifest


def test_captions_state_count_colour_and_position() -> None:
    assert caption([("red", "circle")]) == "a red circle"
    assert caption([("orange", "square")]) == "an orange square"
    assert caption([("blue", "square"), ("blue", "square")]) == "two blue squares"
    assert caption([("red", "circle"), ("green", "triangle"), ("green", "triangle")]) == (
        "a red circle to the left of two green triangles"
    )
    assert caption([("red", "circle"), ("blue", "square"), ("green", "triangle")]) == (
        "a red circle to the left of a blue square and a green triangle"
    )


def test_scenes_are_seeded_and_hold_out_combinations(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert main(["data", "scenes", "--out", str(tmp_path / name), "--count", "120", "--seed", "3"]) == 0
    a, b = read_manifest(tmp_path / "a"), read_manifest(tmp_path / "b")
    assert a == b
    assert (tmp_path / "a" / a[0].image).read_bytes() == (tmp_path / "b" / a[0].image).read_bytes()
    held = [f"{c} {s}" for c, s in HELD_OUT]
    assert not any(h in c for it in a for c in it.captions for h in held)  # never seen in train/val/test
    novel = read_manifest(tmp_path / "a" / "novel")
    assert novel and all(any(h in it.captions[0] or h + "s" in it.captions[0] for h in held) for it in novel)
    assert {it.split for it in novel} == {"test"} and (tmp_path / "a" / "novel" / "vocab.json").exists()
    assert (tmp_path / "a" / novel[0].image).exists()


def test_cutouts_join_the_scenes_without_colour(tmp_path: Path) -> None:
    from PIL import Image

    from captioner.corpus.scenes import CUTOUTS

    stamps = tmp_path / "stamps"
    for rel in CUTOUTS.values():
        (stamps / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGBA", (40, 30), (10, 120, 10, 255)).save(stamps / rel)
    assert caption([("red", "circle"), ("", "duck"), ("", "duck")]) == "a red circle to the left of two ducks"
    assert caption([("", "apple")]) == "an apple"
    out = tmp_path / "s"
    assert main(["data", "scenes", "--out", str(out), "--count", "60", "--seed", "1", "--cutouts", str(stamps)]) == 0
    caps = [c for it in read_manifest(out) + read_manifest(out / "novel") for c in it.captions]
    assert any(w in c for c in caps for w in ("duck", "frog", "apple"))
    assert json.loads((out / "dataset.json").read_text())["cutouts"] == ["apple", "duck", "frog"]
    shapes_only = tmp_path / "t"
    assert main(["data", "scenes", "--out", str(shapes_only), "--count", "60", "--cutouts", "none"]) == 0
    assert not any(w in c for it in read_manifest(shapes_only) for c in it.captions for w in ("duck", "frog", "apple"))
