"""What a new user meets at the command line: messages, warnings, help, and quiet output."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from captioner.cli.main import build_parser, main
from captioner.errors import CaptionerError
from captioner.files import temp_dir, write_json
from captioner.ticker import Ticker

from .conftest import make_image


def test_version_and_every_option_has_help_with_its_default(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert re.fullmatch(r"captioner \d+\.\d+\.\d+\n", capsys.readouterr().out)
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    parsers = list(sub.choices.items())
    for name, parser in parsers:
        for action in parser._actions:
            if action.dest == "dataset":  # `data`'s own subcommands
                parsers += [(f"{name} {n}", p) for n, p in action.choices.items()]
            elif action.dest != "help" and not action.help:
                raise AssertionError(f"{name} {action.option_strings or action.dest}: no help")
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "larger uploads get 413 (default: 10.0)" in text and "(default: 40000000)" in text


def test_empty_image_cell_is_named_as_empty(tmp_path: Path, capsys) -> None:
    (tmp_path / "c.csv").write_text("image,caption\n,a dog\n")
    assert main(["prepare", "--format", "csv", str(tmp_path / "c.csv"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "c.csv:2: the image path is empty" in err and "--allow-outside-root" not in err


def test_train_only_dataset_is_warned_at_prepare(tmp_path: Path, caplog) -> None:
    for i in range(3):
        make_image(tmp_path / f"i{i}.png", i)
    (tmp_path / "c.csv").write_text("image,caption,split\n" + "".join(f"i{i}.png,a dog,train\n" for i in range(3)))
    with caplog.at_level(logging.WARNING):
        assert main(["prepare", "--format", "csv", str(tmp_path / "c.csv"), "--out", str(tmp_path / "o")]) == 0
    assert "no image is in split 'val' (train only)" in caplog.text
    assert "100% of training words are rarer than --min-count 5 and become #UNK#" in caplog.text


def test_evaluate_on_a_run_folder_points_to_best(tiny_checkpoint: Path, capsys) -> None:
    assert main(["evaluate", str(tiny_checkpoint.parent), "--no-meteor"]) == 2
    assert f"did you mean {tiny_checkpoint}?" in capsys.readouterr().err


def test_evaluate_table_is_aligned_and_java_says_nothing(tiny_checkpoint: Path, tmp_path: Path, capfd) -> None:
    assert main(["evaluate", str(tiny_checkpoint), "--split", "val", "--out", str(tmp_path / "ev")]) == 0
    out, err = capfd.readouterr()
    assert "PTBTokenizer" not in err and "Untokenizable" not in err
    rows = [line for line in out.splitlines() if "CIDEr-D" in line and "images)" in line]
    assert len(rows) >= 5 and len({line.index("BLEU-1") for line in rows}) == 1  # one column, long names too
    page = (tmp_path / "ev" / "report.html").read_text()
    assert "Decoding: method beam" in page or "Decoding: method greedy" in page
    assert "{&#x27;" not in page  # no escaped Python dict


def test_caption_warns_when_every_image_gets_the_same_caption(tiny_checkpoint: Path, tmp_path: Path, caplog) -> None:
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (64, 64), (220, 20, 20)).save(tmp_path / f"red{i}.png")
    with caplog.at_level(logging.WARNING):
        assert main(["caption", str(tmp_path), "--checkpoint", str(tiny_checkpoint)]) == 0
    assert "MOST IMAGES GET THE SAME CAPTION" in caplog.text


def test_progress_is_logged_when_stderr_is_not_a_terminal(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="captioner.progress"), Ticker(4, "extract", "img", every=0.0) as t:
        for _ in range(4):
            t.update()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("extract: 1/4 img") and lines[-1].startswith("extract: 4/4 img")


def test_written_files_and_folders_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        before = os.umask(0o027)  # the library never changes it
        write_json(tmp_path / "a.json", {"x": 1})
        d = temp_dir(tmp_path, ".x.")
        assert os.umask(0o027) == before
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
    assert d.stat().st_mode & 0o777 == 0o750
    with pytest.raises(CaptionerError, match="could not write"):
        write_json(tmp_path / "a.json" / "b.json", {})
