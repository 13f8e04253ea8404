"""The Python API and the `captioner caption` command, with the bundled model."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from captioner import Captioner
from captioner.api import default_model_path
from captioner.cli.main import main

ROOT = Path(__file__).parents[1]


def test_readme_python_example_runs_and_names_the_cat(monkeypatch) -> None:
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "Captioner.load()" in b)
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - the documented example, as written
    first, second, third = out.getvalue().splitlines()
    assert first.startswith("a cat ") and "Egyptian cat" in first
    assert second == "['an espresso coffee', 'a rocket']"
    assert third == "кошка ('de', 'en', 'es', 'fr', 'ru')"


def test_readme_caption_commands_print_what_the_readme_shows(monkeypatch, capsys) -> None:
    """Each `captioner caption` command in the README's set-up section, run as written, prints the block that
    follows it (the English examples and the Russian one)."""
    readme = (ROOT / "README.md").read_text()
    pairs = re.findall(r"```bash\n[^\n]*?captioner caption ([^\n]*)\n```\n\n```\n(.*?)```", readme, re.S)
    assert len(pairs) == 2, pairs
    monkeypatch.chdir(ROOT)
    for args, shown in pairs:
        assert main(["caption", *args.split()]) == 0
        assert capsys.readouterr().out == shown, args


def test_inputs_of_every_kind_give_the_same_caption() -> None:
    cap = Captioner.load()
    path = ROOT / "examples" / "images" / "coffee.jpg"
    img = Image.open(path)
    results = cap.caption([str(path), path.read_bytes(), img, np.asarray(img)], beam=3)
    assert len({r.caption for r in results}) == 1
    single = cap.caption(path, beam=3)
    assert single.caption == results[0].caption and single.source == str(path)
    assert len(single.tags) == 5 and single.tags[0].label == "espresso"
    twins = Captioner.load(ensemble=[default_model_path()])  # an ensemble of identical members
    assert twins.caption(path, beam=3).caption == single.caption


def test_caption_cli_formats_and_bad_files(tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.jpg").write_text("not an image")
    code = main(["caption", str(ROOT / "examples" / "images"), str(tmp_path / "bad.jpg")])
    out, err = capsys.readouterr()
    assert code == 1
    lines = dict(line.split("\t") for line in out.splitlines())
    assert lines[str(ROOT / "examples" / "images" / "chelsea.jpg")] == "a cat"
    assert "bad.jpg\tERROR: not an image" in err and "1 of 5 files could not be captioned" in err
    assert main(["caption", "--json", "--n-best", "2", str(ROOT / "examples" / "images" / "rocket.jpg")]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["caption"] == "a rocket" and len(row["alternatives"]) == 1 and row["tags"][0]["label"] == "missile"
    assert main(["caption", "--name-threshold", "2", str(ROOT / "examples" / "images" / "rocket.jpg")]) == 2
    assert "model.name_threshold: must be in [0, 1]" in capsys.readouterr().err


def test_caption_cli_no_people_skips_the_people_detectors(monkeypatch, capsys, tmp_path: Path) -> None:
    from captioner.sights import people

    astronaut = str(ROOT / "examples" / "images" / "astronaut.jpg")
    assert main(["caption", "--json", astronaut]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["caption"], row["photo"], row["people"]) == ("a person", True, 1)  # found by the detectors

    def no_call(model: str) -> object:
        raise AssertionError(f"a people detector ran: {model}")

    monkeypatch.setattr(people, "detector_session", no_call)
    assert main(["caption", "--json", "--no-people", astronaut]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["caption"] != "a person" and (row["photo"], row["people"]) == (True, None)  # not looked for
    from PIL import Image, ImageDraw

    drawing = tmp_path / "shapes.png"
    img = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(img).ellipse((60, 30, 240, 170), fill=(220, 40, 40), outline="black", width=4)
    img.save(drawing)
    assert main(["caption", "--json", str(drawing)]) == 0  # a drawing: no detector runs (no_call still in place)
    row = json.loads(capsys.readouterr().out)
    assert (row["photo"], row["people"]) == (False, 0)
