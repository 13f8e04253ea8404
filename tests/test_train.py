"""Training: a killed run resumes to the same bytes; checkpoints load safely or fail clearly."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from captioner.cli.main import main
from captioner.errors import CaptionerError
from captioner.policy import POLICY_FILE
from captioner.train.checkpoint import FILES, load_checkpoint, save_checkpoint

from .conftest import make_image


def _args(data: Path, out: Path) -> list[str]:
    return [
        str(Path(__file__).parents[1] / "configs" / "seed.toml"),
        f"train.data={data}",
        f"train.out={out}",
        "train.epochs=4",
        "train.steps_per_epoch=12",
        "train.batch_size=16",
        "train.checkpoint_every=5",
        "model.hidden=256",
        "train.patience=0",
    ]


def test_killed_training_resumes_to_identical_weights(shapes_data: Path, tmp_path: Path) -> None:
    assert main(["train", *_args(shapes_data, tmp_path / "whole")]) == 0
    want = load_file(tmp_path / "whole" / "latest" / "model.safetensors")
    want_hist = json.loads((tmp_path / "whole" / "latest" / "train_state.json").read_text())["history"]

    rng = random.Random(0)
    cmd = [sys.executable, "-m", "captioner.cli", "train", *_args(shapes_data, tmp_path / "cut")]
    kills = 0
    for attempt in range(3):  # kill at a random moment after a checkpoint exists, then resume
        proc = subprocess.Popen(
            cmd + (["--resume"] if attempt else []), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            if (tmp_path / "cut" / "latest").exists() or (tmp_path / "cut" / "latest.old").exists():
                time.sleep(rng.uniform(0.0, 0.5))
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    kills += 1
                break
            time.sleep(0.01)
        proc.wait()
    assert kills >= 1
    assert main(["train", *_args(shapes_data, tmp_path / "cut"), "--resume"]) == 0
    got = load_file(tmp_path / "cut" / "latest" / "model.safetensors")
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].equal(want[k]), k
    hist = json.loads((tmp_path / "cut" / "latest" / "train_state.json").read_text())["history"]
    assert hist == want_hist
    assert (tmp_path / "cut" / "best" / "model.safetensors").exists() and (tmp_path / "cut" / "curves.png").exists()


def test_without_validation_best_follows_the_training_loss(tmp_path: Path) -> None:
    """No val split: 'best' is the epoch of lowest training loss and early stopping waits for the loss to stall."""
    from captioner.train.state import Progress, end_epoch

    saved: list[str] = []
    prog = Progress()
    for loss in (3.2, 2.5, 1.8, 1.9, 2.0):
        end_epoch(prog, {"epoch": prog.epoch + 1, "step": 1, "train_loss": loss}, 2, 10, lambda n, _s: saved.append(n))
    assert saved.count("best") == 3 and prog.best_cider == -1.8  # epochs 1, 2 and 3 improved
    assert prog.epoch == 10  # two epochs without a lower loss: stopped early
    saved.clear()
    prog = Progress()  # train.val_images = 0: validation loss, no CIDEr-D
    for loss, val in ((3.0, 2.0), (2.5, 2.2), (2.0, 1.5)):
        _end = {"epoch": prog.epoch + 1, "step": 1, "train_loss": loss, "val_loss": val}
        end_epoch(prog, _end, 0, 10, lambda n, _s: saved.append(n))
    assert saved.count("best") == 2 and prog.best_cider == -1.5  # epochs 1 and 3, by validation loss


def test_training_on_a_train_only_dataset_writes_best_and_says_so(tmp_path: Path, capsys, caplog, recwarn) -> None:
    from captioner.corpus.prepare import prepare

    src = tmp_path / "src"
    for i in range(4):
        make_image(src / f"i{i}.png", i)
        (src / f"i{i}.txt").write_text(f"a square number {i}\n")
    prepare("folder", src, tmp_path / "data", min_count=1, ratios=(1.0, 0.0, 0.0))
    from captioner.features.extract import extract

    extract(tmp_path / "data", tmp_path / "data" / "features", "efficientnet-lite0", workers=0)
    out = tmp_path / "run"
    args = ["train", f"train.data={tmp_path / 'data'}", f"train.out={out}", "train.epochs=2"]
    assert main([*args, "--resume"]) == 2  # nothing to resume is an error, not a silent fresh start
    assert "latest does not exist, so there is nothing to resume" in capsys.readouterr().err
    with caplog.at_level("WARNING"):
        assert main(args) == 0
    assert "no validation images" in caplog.text
    assert not [w for w in recwarn if "legend" in str(w.message)]  # the curves plot warns about nothing
    printed = capsys.readouterr().out
    assert "no validation split: best/ is epoch" in printed and "CIDEr-D" not in printed
    assert (out / "best" / "model.safetensors").exists() and (out / "curves.png").exists()
    assert main([*args, "--resume"]) == 0
    assert capsys.readouterr().out.startswith(f"nothing to do: {out}/latest had finished 2 of 2 epochs")


@pytest.fixture
def checkpoint(shapes_data: Path, tmp_path: Path) -> Path:
    args = _args(shapes_data, tmp_path / "run")
    assert main(["train", *args[:-4], "train.epochs=1", "train.steps_per_epoch=2"]) == 0
    return tmp_path / "run" / "best"


def test_checkpoint_loads_and_fails_clearly(checkpoint: Path, tmp_path: Path) -> None:
    ck = load_checkpoint(checkpoint)
    assert ck.config.model.hidden == 200 and ck.spec.name == "efficientnet-lite0" and len(ck.vocab) > 4

    bad = tmp_path / "bad"
    shutil.copytree(checkpoint, bad)
    (bad / "vocab.json").unlink()
    with pytest.raises(CaptionerError, match="incomplete checkpoint, missing vocab.json"):
        load_checkpoint(bad)

    shutil.rmtree(bad)
    shutil.copytree(checkpoint, bad)
    meta = json.loads((bad / "meta.json").read_text())
    (bad / "meta.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(CaptionerError, match="checkpoint format 99"):
        load_checkpoint(bad)

    shutil.rmtree(bad)
    shutil.copytree(checkpoint, bad)
    w = load_file(bad / "model.safetensors")
    w["head.weight"] = w["head.weight"][:-1]
    save_file(w, bad / "model.safetensors")
    with pytest.raises(CaptionerError, match=r"weights do not fit the config \(head.weight"):
        load_checkpoint(bad)

    (bad / "model.safetensors").write_bytes(b"\x80\x04garbage pickle")
    with pytest.raises(CaptionerError, match="unreadable weights"):
        load_checkpoint(bad)


def test_training_refuses_to_overwrite_and_names_missing_grid(
    checkpoint: Path, shapes_data: Path, tmp_path: Path, capsys
) -> None:
    args = _args(shapes_data, checkpoint.parent)
    assert main(["train", *args]) == 2
    assert "latest exists: pass --resume" in capsys.readouterr().err
    assert main(["train", *args[:2], f"train.out={tmp_path / 'x'}", "train.features=" + str(tmp_path)]) == 2
    assert "feature index" in capsys.readouterr().err


def _saved_step(out: Path) -> int:
    """The global step of the newest complete 'latest' checkpoint (0 while there is none)."""
    for name in ("latest", "latest.old"):
        try:
            return int(json.loads((out / name / "meta.json").read_text())["global_step"])
        except (OSError, ValueError, KeyError):
            continue
    return 0


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("touch /tmp/captioner-pwned",))


def test_legacy_pt_loads_weights_only_and_malicious_pickle_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    import torch

    legacy = tmp_path / "legacy"
    shutil.copytree(checkpoint, legacy)
    torch.save(load_file(legacy / "model.safetensors"), legacy / "model.pt")
    (legacy / "model.safetensors").unlink()
    assert load_checkpoint(legacy).config.model.hidden == 200

    Path("/tmp/captioner-pwned").unlink(missing_ok=True)
    torch.save({"head.weight": _Evil()}, legacy / "model.pt")
    with pytest.raises(CaptionerError, match="refused to load"):
        load_checkpoint(legacy)
    assert not Path("/tmp/captioner-pwned").exists()


def test_disk_full_is_reported_and_the_old_file_survives(tmp_path: Path, monkeypatch) -> None:
    import errno

    from captioner import files

    files.write_json(tmp_path / "m.json", {"v": 1})

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(CaptionerError, match="disk full while writing; the previous version is intact"):
        files.write_json(tmp_path / "m.json", {"v": 2})
    assert json.loads((tmp_path / "m.json").read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temp file left behind


def test_sigkill_during_checkpoint_writes_never_loses_the_last_good_one(shapes_data: Path, tmp_path: Path) -> None:
    """Checkpoint every step and kill at random moments, many times: 'latest' always loads and resumes."""
    out = tmp_path / "k"
    args = [
        str(Path(__file__).parents[1] / "configs" / "seed.toml"),
        f"train.data={shapes_data}",
        f"train.out={out}",
        "train.epochs=3",
        "train.steps_per_epoch=15",
        "train.batch_size=16",
        "train.checkpoint_every=1",
        "model.hidden=256",
        "train.patience=0",
    ]
    cmd = [sys.executable, "-m", "captioner.cli", "train", *args]
    rng, steps, kills = random.Random(1), [0], 0
    for attempt in range(8):  # each kill lands while training runs: after the run has saved a new step
        proc = subprocess.Popen(
            cmd + (["--resume"] if attempt else []), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        start = time.time()
        while proc.poll() is None and time.time() - start < 60:
            if _saved_step(out) > steps[-1]:  # this run is past its start-up and is training
                time.sleep(rng.uniform(0.0, 0.05))
                proc.kill()
                kills += 1
                break
            time.sleep(0.002)
        proc.wait()
        ck = load_checkpoint(out / "latest")  # falls back to latest.old if the swap was cut
        steps.append(ck.meta["global_step"])
        if steps[-1] == 45:
            break
    assert kills >= 5, steps  # most attempts were killed mid-training, not before it started
    assert steps == sorted(steps) and len(set(steps)) == len(steps), steps  # every run added steps; none lost
    assert main(["train", *args, "--resume"]) == 0
    assert json.loads((out / "latest" / "meta.json").read_text())["global_step"] == 45


def test_checkpoint_files_follow_the_umask(checkpoint: Path, tmp_path: Path) -> None:
    ck = load_checkpoint(checkpoint)
    extra = {"step": torch.zeros(1)}
    old = os.umask(0o027)
    try:
        save_checkpoint(tmp_path / "ck", ck.model, ck.config, ck.vocab, ck.spec, ck.meta, extra, {"step": 0})
    finally:
        os.umask(old)
    modes = {f.name: f.stat().st_mode & 0o777 for f in (tmp_path / "ck").iterdir()}
    assert modes == {f: 0o640 for f in (*FILES, POLICY_FILE, "train_state.safetensors", "train_state.json")}
    assert (tmp_path / "ck").stat().st_mode & 0o777 == 0o750
