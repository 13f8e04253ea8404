"""The bundled model's card (captioner/bundled/open-clipart/MODEL_CARD.md): the model loads as the card says, and
the figures in its tables are what the commands beside them print.

The slow test needs the open corpus the card's commands build:

    CAPTIONER_OPEN_CORPUS=runs/open python -m pytest -m slow tests/test_model_card.py

Without CAPTIONER_OPEN_CORPUS it builds the corpus with the card's own `npm pack` and `captioner data` lines
(Debian tuxpaint-stamps-default, openclipart-svg and wamerican, the npm registry and '.[corpus]'; ~15 min).
bench/truth.py also reads OpenCV's sample photos (Debian opencv-doc)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from captioner.api import Captioner

ROOT = Path(__file__).parents[1]
MODEL = ROOT / "src" / "captioner" / "bundled" / "open-clipart"
CARD = (MODEL / "MODEL_CARD.md").read_text()
FLAT = " ".join(CARD.split())  # the card's prose with its line breaks as spaces
EXAMPLES = ROOT / "examples" / "images"


def _section(title: str) -> str:
    """The card's text under the level-2 heading that starts with `title`, to the next level-1 or -2 heading."""
    start = re.search(rf"^## {re.escape(title)}", CARD, re.M)
    assert start, title
    rest = CARD[start.end() :]
    end = re.search(r"^##? ", rest, re.M)
    return rest[: end.start()] if end else rest


def _rows(text: str) -> dict[str, list[str]]:
    """A markdown table's rows: {first cell without bold: the other cells}."""
    out = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0].strip("*")] = [c.strip("*") for c in cells[1:]]
    return out


def test_bundled_model_loads_as_its_card_describes_it() -> None:
    cap = Captioner.load(runtime="torch")  # the checkpoint itself
    cfg = cap.runtime.ck.config.model
    assert "embedding 256, LSTM 512" in FLAT and (cfg.kind, cfg.embed, cfg.hidden) == ("copy", 256, 512)
    assert "top-5 ImageNet classes" in FLAT and cfg.copy_k == 5
    assert "`model.name_threshold = 0.4`" in FLAT and cap.runtime.name_threshold == 0.4
    assert "English, Russian, German, French and Spanish" in FLAT
    assert cap.languages == ("de", "en", "es", "fr", "ru")
    with safe_open(str(MODEL / "model.safetensors"), "pt") as f:  # "stored in fp16"
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert torch.float16 in dtypes and not {d for d in dtypes if d.is_floating_point} - {torch.float16}
    size = (MODEL / "model.safetensors").stat().st_size
    assert "Weights: 16 MB" in FLAT and round(size / 2**20) == 16


def test_cards_russian_example_captions_are_what_caption_prints() -> None:
    """The card quotes `captioner caption --lang ru examples/images`; those are the captions printed."""
    text = FLAT.split("(`captioner caption --lang ru examples/images`):")[1]
    said = dict(re.findall(r'(\w+) "([^"]+)"', text.split(".")[0]))
    assert set(said) == {"astronaut", "chelsea", "coffee", "rocket"}, said
    cap = Captioner.load()
    for name, caption in said.items():
        assert cap.caption(str(EXAMPLES / f"{name}.jpg"), lang="ru").caption == caption, name


def _corpus(tmp: Path) -> Path:
    given = os.environ.get("CAPTIONER_OPEN_CORPUS")
    if given:
        return Path(given)
    block = CARD.split("## Reproduce", 1)[1].split("```bash", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    steps = [ln for ln in block.splitlines() if ln.startswith(("npm pack", "captioner data"))]
    assert len(steps) == 2, steps
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for step in steps:
        subprocess.run(step, shell=True, cwd=tmp, env=env, check=True)  # noqa: S602 - the card's command
    return tmp / "runs" / "open"


def _bench(script: str, *args: str) -> str:
    cmd = [sys.executable, str(ROOT / "bench" / script), str(MODEL), *args]
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_card_tables_are_what_their_commands_print(tmp_path: Path) -> None:
    data = str(_corpus(tmp_path))
    per_language = _rows(_section("Per language"))
    assert set(per_language) >= {"en", "fr", "de", "es", "ru"}
    printed = _rows(_bench("languages.py", "--data", data))
    for lang in ("en", "fr", "de", "es", "ru"):
        assert printed[lang] == per_language[lang], lang
    truth = _rows(_section("Truth on photos"))
    out = _bench("truth.py", "--data", data)
    printed = {
        name: cells
        for line in out.splitlines()
        if (m := re.match(r"(\S.*?)\s{2,}((?:\s*[\d.]+%){8})$", line))
        for name, cells in [(m.group(1), m.group(2).split())]
    }
    for card_row, bench_row in (
        ("this model, truth rules", "checkpoint, truth rules"),
        ("this model, naming rule only", "checkpoint, naming rule only"),
        ("classifier head: a <top-1 name>", "classifier head: a <top-1 name>"),
    ):
        assert truth[card_row] == printed[bench_row], card_row
    cider = dict(re.findall(r"test split \(823 images\), (truth rules|naming rule only): CIDEr-D (\d\.\d{4})", out))
    text = " ".join(_section("Truth on photos").split())
    assert f"CIDEr-D {cider['naming rule only']} with the naming rule only, {cider['truth rules']} with all" in text
    agree = _rows(_section("Languages agree"))
    out = _bench("agreement.py", "--data", data)
    for block in out.split("\n\n"):
        name, n = re.match(r"\s*(.+?): (\d+) images", block).groups()  # type: ignore[union-attr]
        if name not in agree:  # GCompris's sets, where Debian's gcompris-qt-data is installed
            continue
        got = dict(re.findall(r"  (\w\w): agreement ([\d.]+%)", block))
        bare, doubled = re.search(r"English: bare (\d+), doubled (\d+)", block).groups()  # type: ignore[union-attr]
        after = [c.split("→")[-1].strip() for c in agree[name]]
        assert after == [n, got["de"], got["es"], got["fr"], got["ru"], bare, doubled], name
