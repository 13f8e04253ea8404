"""Captioning at volume: `caption --out` resumes where it stopped (also after SIGKILLs while it works), names
bad inputs in error rows, shards merge into the unsharded file, and Ray Data's path (captioner.ray, on a local
Ray instance with 2 CPUs) gives the CLI's rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from captioner.batch import read_rows, shard_file
from captioner.cli.main import main

from .conftest import make_image

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples" / "images"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 small generated images (random blocks, each its own) in a folder."""
    folder = tmp_path_factory.mktemp("many")
    for i in range(240):
        make_image(folder / f"img{i:03d}.png", 1000 + i, (96, 80))
    return folder


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _caption(*args: str) -> int:
    return main(["caption", *args])


def test_out_writes_rows_then_skips_what_it_holds_and_finishes_the_rest(tmp_path: Path, capsys) -> None:
    out = tmp_path / "c.jsonl"
    assert _caption(str(EXAMPLES), "--out", str(out), "--batch-size", "3") == 0
    rows = _rows(out)
    assert [(Path(r["path"]).name, r["caption"]) for r in rows] == [
        ("astronaut.jpg", "a person"), ("chelsea.jpg", "a cat"), ("coffee.jpg", "an espresso coffee"),
        ("rocket.jpg", "a rocket"),
    ]  # fmt: skip
    assert {tuple(sorted(r)) for r in rows} == {
        ("caption", "confidence", "decoding", "language", "model", "model_sha256", "path")
    }
    assert rows[0]["language"] == "en" and len(rows[0]["model_sha256"]) == 64
    capsys.readouterr()
    assert _caption(str(EXAMPLES), "--out", str(out)) == 0  # again: nothing to do
    assert _rows(out) == rows and "0 captioned now (0 could not be), 4 were there already" in capsys.readouterr().err
    out.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    assert _caption(str(EXAMPLES), "--out", str(out)) == 0  # two were lost: only they are captioned
    assert _rows(out) == rows and "2 captioned now (0 could not be), 2 were there already" in capsys.readouterr().err
    assert _caption(str(EXAMPLES), "--out", str(out), "--lang", "ru") == 0  # another decoding: rows of its own
    capsys.readouterr()
    assert _caption(str(EXAMPLES), "--lang", "ru") == 0
    shown = [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]
    ru = _rows(out)[4:]
    assert [r["caption"] for r in ru] == shown and shown == ["человек", "кошка", "чашка кофе", "ракета"]
    assert {r["language"] for r in ru} == {"ru"}


def test_a_line_a_kill_cut_short_is_dropped_and_a_foreign_line_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "c.jsonl"
    assert _caption(str(EXAMPLES / "chelsea.jpg"), "--out", str(out)) == 0
    whole = out.read_bytes()
    out.write_bytes(whole + whole[:40])  # the start of a row, no newline: what a kill mid-append leaves
    assert read_rows(out) == ([json.loads(whole)], len(whole))
    assert _caption(str(EXAMPLES / "chelsea.jpg"), str(EXAMPLES / "rocket.jpg"), "--out", str(out)) == 0
    assert [Path(r["path"]).name for r in _rows(out)] == ["chelsea.jpg", "rocket.jpg"]  # the cut line is gone
    out.write_text("path,caption\n")
    assert _caption(str(EXAMPLES / "chelsea.jpg"), "--out", str(out)) == 2
    assert f"{out}:1: not a caption row; give --out a new file or one captioner wrote" in capsys.readouterr().err
    assert out.read_text() == "path,caption\n"  # nothing written over


def test_bad_inputs_get_error_rows_naming_them_and_the_rest_of_the_batch_is_captioned(tmp_path: Path) -> None:
    (tmp_path / "corrupt.jpg").write_bytes((EXAMPLES / "chelsea.jpg").read_bytes()[:300])
    (tmp_path / "notes.jpg").write_text("not an image at all")
    inputs = [EXAMPLES / "chelsea.jpg", tmp_path / "corrupt.jpg", tmp_path / "missing.jpg", tmp_path / "notes.jpg",
              EXAMPLES / "rocket.jpg"]  # fmt: skip
    out = tmp_path / "c.jsonl"
    assert _caption(*map(str, inputs), "--out", str(out), "--batch-size", "8") == 1  # one batch holds them all
    got = {Path(r["path"]).name: r.get("caption") or r["error"] for r in _rows(out)}
    assert got["chelsea.jpg"] == "a cat" and got["rocket.jpg"] == "a rocket"
    assert got["missing.jpg"] == "file not found" and got["notes.jpg"] == "not an image PIL can read"
    assert got["corrupt.jpg"].startswith("corrupt or truncated image")
    assert list(got) == [p.name for p in inputs]


def test_shards_merge_into_the_unsharded_file(images: Path, tmp_path: Path, capsys) -> None:
    some = sorted(images.iterdir())[:40]
    whole, parts = tmp_path / "whole.jsonl", tmp_path / "parts.jsonl"
    args = [*map(str, some), "--no-people", "--batch-size", "8"]
    assert _caption(*args, "--out", str(whole)) == 0
    assert _caption(*args, "--out", str(parts), "--shard", "0/3") == 0
    assert _caption(*args, "--out", str(parts), "--merge", "3") == 2  # shards 1 and 2 not run yet
    assert "--merge 3: 32 inputs have no row in parts.shard-0-of-3.jsonl .. parts.shard-2-of-3.jsonl" in (
        capsys.readouterr().err
    )
    assert not parts.exists()
    for i in (2, 1):
        assert _caption(*args, "--out", str(parts), "--shard", f"{i}/3") == 0
    assert [len(_rows(shard_file(parts, i, 3))) for i in range(3)] == [8, 16, 16]  # batch-aligned blocks
    assert _caption(*args, "--out", str(parts), "--merge", "3") == 0
    assert parts.read_bytes() == whole.read_bytes()


def _count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_killed_five_times_while_working_then_resumed_equals_an_uninterrupted_run(images: Path, tmp_path: Path) -> None:
    """Each run is SIGKILLed as soon as it has added rows (so it is mid-work), six runs in all; the rows at the end
    are an uninterrupted run's, in its order, none twice, and after every kill every whole line is a row."""
    args = [str(images), "--no-people", "--batch-size", "8"]
    want = tmp_path / "want.jsonl"
    assert _caption(*args, "--out", str(want)) == 0
    out = tmp_path / "got.jsonl"
    cmd = [sys.executable, "-m", "captioner.cli", "caption", *args, "--out", str(out)]
    kills = 0
    while kills < 5:
        before = _count(out)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
        deadline = time.monotonic() + 120
        while _count(out) <= before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        rows, _ = read_rows(out)  # raises on a broken whole line
        assert len(rows) < 240 and len({r["path"] for r in rows}) == len(rows)
    assert subprocess.run(cmd, capture_output=True, cwd=tmp_path).returncode == 0
    assert out.read_bytes() == want.read_bytes()


@pytest.fixture(scope="module")
def ray_local() -> Iterator[object]:
    ray = pytest.importorskip("ray") if not os.environ.get("CI") else __import__("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _cli_rows(tmp_path: Path, paths: list[Path], *extra: str) -> list[dict]:
    out = tmp_path / "cli.jsonl"
    assert _caption(*map(str, paths), "--out", str(out), *extra) in (0, 1)
    return _rows(out)


def _plain(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if v is not None} for r in rows]


def test_ray_data_gives_the_cli_rows_on_the_examples_by_path_and_by_bytes(ray_local, tmp_path: Path) -> None:
    from captioner.ray import caption_dataset

    paths = [*sorted(EXAMPLES.glob("*.jpg")), tmp_path / "missing.jpg"]
    want = _cli_rows(tmp_path, paths)

    def by_path(rows: list[dict]) -> list[dict]:  # Ray Data keeps no row order unless asked to
        return sorted(_plain(rows), key=lambda r: r["path"])

    ds = ray_local.data.from_items([{"path": str(p)} for p in paths])
    assert by_path(caption_dataset(ds, batch_size=4, num_cpus=2).take_all()) == by_path(want)
    blobs = ray_local.data.from_items([{"path": str(p), "bytes": p.read_bytes()} for p in paths[:-1]])
    assert by_path(caption_dataset(blobs, batch_size=4, num_cpus=2).take_all()) == by_path(want[:-1])


def test_ray_data_asked_for_two_actors_gives_the_cli_rows_on_generated_images(ray_local, images: Path, tmp_path):
    from captioner.ray import caption_dataset

    paths = sorted(images.iterdir())
    want = _cli_rows(tmp_path, paths, "--no-people", "--batch-size", "16")
    ds = ray_local.data.from_items([{"path": str(p)} for p in paths])
    got = caption_dataset(ds, batch_size=16, concurrency=2, num_cpus=1, people=False).take_all()
    assert sorted(_plain(got), key=lambda r: r["path"]) == want  # actors finish batches in any order
