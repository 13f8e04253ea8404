"""extract(): correct features, bad files skipped and counted, resume after SIGKILL equals one run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from captioner.cli.main import main
from captioner.corpus.prepare import prepare
from captioner.features.extract import FeatureStore, extract
from captioner.features.images import open_image

from .conftest import make_image


@pytest.fixture
def prepared(folder_dataset: Path, tmp_path: Path) -> Path:
    prepare("folder", folder_dataset, tmp_path / "data", min_count=1)
    return tmp_path / "data"


def test_extract_matches_direct_forward_and_stores_fp16(prepared: Path, encoder, tmp_path: Path) -> None:
    report = extract(prepared, tmp_path / "f", encoder, grid=True, batch_size=5, workers=2)
    assert (report.total, report.extracted, report.failed) == (12, 12, {})
    store = FeatureStore(tmp_path / "f")
    assert store.arrays["pooled"].dtype == np.float16 and store.arrays["grid"].shape == (12, 49, 1280)
    assert json.loads((tmp_path / "f" / "encoder.json").read_text()) == encoder.spec.to_json()
    img = open_image(prepared.parent / "src" / store.images[3])
    want = encoder.forward_features(encoder.preprocess(img)[None])
    np.testing.assert_allclose(store.get("pooled", [3])[0], want.pooled[0].numpy(), rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(store.get("logits", [3])[0], want.logits[0].numpy(), rtol=1e-2, atol=2e-2)
    again = extract(prepared, tmp_path / "f", encoder, grid=True)
    assert again.extracted == 0 and again.resumed_from == 12  # already complete: nothing redone


def test_bad_images_are_named_skipped_and_counted(prepared: Path, caplog, capsys, tmp_path: Path) -> None:
    src = prepared.parent / "src"
    (src / "img03.png").write_bytes(b"plain text, not an image")
    data = (src / "img05.png").read_bytes()
    (src / "img05.png").write_bytes(data[: len(data) // 2])
    (src / "img07.png").unlink()
    code = main(["extract", str(prepared), "--out", str(tmp_path / "f"), "--batch-size", "4", "--workers", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "9 of 12 images encoded" in out and "skipped 3 unreadable images" in out
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "img03.png: skipped: not an image" in warned and "img07.png: skipped: file not found" in warned
    store = FeatureStore(tmp_path / "f")
    assert sorted(store.failed) == ["img03.png", "img05.png", "img07.png"] and len(store.row) == 9


def test_resume_after_sigkill_equals_uninterrupted(tmp_path: Path, encoder) -> None:
    src = tmp_path / "src"
    for i in range(24):
        make_image(src / f"p{i:02d}.png", 100 + i, (96, 80))
        (src / f"p{i:02d}.txt").write_text(f"picture {i}\n")
    prepare("folder", src, tmp_path / "data", min_count=1)
    extract(tmp_path / "data", tmp_path / "whole", encoder, batch_size=2, workers=0)

    cmd = [
        sys.executable,
        "-m",
        "captioner.cli",
        "extract",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "part"),
        "--batch-size",
        "2",
        "--workers",
        "0",
    ]
    progress, kills, killed_at = tmp_path / "part" / "progress.json", [], 0
    for target in (4, 10, 16):  # kill it three times, each time further along, resuming in between
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            try:
                done = json.loads(progress.read_text())["done"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                done = 0
            if target <= done < 22:
                time.sleep(random.uniform(0, 0.05))  # anywhere in the next batch, mid-write included
                os.kill(proc.pid, signal.SIGKILL)
                kills.append(done)
                break
            time.sleep(0.005)
        proc.wait()
    assert len(kills) == 3 and kills == sorted(kills), "the extraction finished before it could be killed"
    killed_at = kills[-1]
    assert not (tmp_path / "part" / "index.json").exists()
    report = extract(tmp_path / "data", tmp_path / "part", encoder, batch_size=2, workers=0)
    assert report.resumed_from >= killed_at and report.extracted == 24 - report.resumed_from
    for kind in ("pooled", "logits"):
        a = np.load(tmp_path / "whole" / f"{kind}.npy")
        b = np.load(tmp_path / "part" / f"{kind}.npy")
        assert np.array_equal(a, b), kind
    assert (tmp_path / "whole" / "index.json").read_text() == (tmp_path / "part" / "index.json").read_text()


def test_missing_index_gives_clear_error(tmp_path: Path) -> None:
    from captioner.errors import CaptionerError

    with pytest.raises(CaptionerError, match="feature index .* not found"):
        FeatureStore(tmp_path)


def test_make_image_helper_differs_by_seed(tmp_path: Path) -> None:
    a = open_image(make_image(tmp_path / "a.png", 1))
    b = open_image(make_image(tmp_path / "b.png", 2))
    assert np.asarray(a).tolist() != np.asarray(b).tolist()


def test_sharded_extraction_equals_single_process(prepared: Path, encoder, tmp_path: Path, capsys) -> None:
    from captioner.data.manifest import shard_bounds
    from captioner.features.extract import merge_shards

    assert [shard_bounds(12, i, 3, 4) for i in range(3)] == [(0, 4), (4, 8), (8, 12)]
    assert [shard_bounds(10, i, 2, 4) for i in range(2)] == [(0, 4), (4, 10)]
    extract(prepared, tmp_path / "one", encoder, batch_size=4, workers=0)
    with pytest.raises(Exception, match="shard 1 of 2 is missing"):
        extract(prepared, tmp_path / "many", encoder, batch_size=4, workers=0, shard=(0, 2))
        merge_shards(prepared, tmp_path / "many", 2)
    assert (
        main(
            [
                "extract",
                str(prepared),
                "--out",
                str(tmp_path / "many"),
                "--shard",
                "1/2",
                "--batch-size",
                "4",
                "--workers",
                "0",
            ]
        )
        == 0
    )
    assert main(["extract", str(prepared), "--out", str(tmp_path / "many"), "--merge", "2"]) == 0
    for kind in ("pooled", "logits"):
        assert np.array_equal(np.load(tmp_path / "one" / f"{kind}.npy"), np.load(tmp_path / "many" / f"{kind}.npy"))
    assert FeatureStore(tmp_path / "many").images == FeatureStore(tmp_path / "one").images


def test_extract_under_torchrun_shards_and_merges(prepared: Path, encoder, tmp_path: Path) -> None:
    extract(prepared, tmp_path / "one", encoder, batch_size=4, workers=0)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "captioner.cli",
        "extract",
        str(prepared),
        "--out",
        str(tmp_path / "tr"),
        "--batch-size",
        "4",
        "--workers",
        "0",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = np.load(tmp_path / "one" / "pooled.npy"), np.load(tmp_path / "tr" / "pooled.npy")
    np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), rtol=2e-3, atol=2e-3)  # fp16 ulp
