"""What a new machine meets: the caption path opens no file but Python's, the package's and the model's (an
audit hook watches every entry point); the bundled model ships in the package with its caption policy, current;
a checkpoint made before policies gets the command that upgrades it; a missing piece is a one-line error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import captioner
from captioner.api import default_model_path
from captioner.cli.main import main
from captioner.data.lexicon import WORDNET, person_words
from captioner.policy import POLICY_FILE, POLICY_VERSION, build_policy, policy_bytes
from captioner.sights.people import person_words as shipped_person_words
from captioner.text.vocab import Vocab

ROOT = Path(__file__).parents[1]
EXAMPLES = sorted((ROOT / "examples" / "images").glob("*.jpg"))
PACKAGE = Path(captioner.__file__).parent
ORT_WEB = Path(os.environ.get("CAPTIONER_ORT_WEB", ROOT / ".cache" / "onnxruntime-web-1.31.1.tgz"))
# What the standard library, PyTorch and onnxruntime read about the operating system at import or start-up
# (mimetypes' table, the distribution check, the loader's map of the process); no data of ours or of a user's.
OS_FILES = frozenset({"/dev/null", "/etc/mime.types", "/etc/os-release", "/proc/self/maps"})


def _audited(tmp: Path, entry: str, *args: str) -> dict:
    out = tmp / f"audit-{entry}.json"
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONER_MODEL"}
    cmd = [sys.executable, str(ROOT / "tests" / "audited.py"), str(out), entry, *args]
    subprocess.run(cmd, check=True, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    return json.loads(out.read_text())


def _outside(opened: list[str], *allowed: Path) -> list[str]:
    harness = ROOT / "tests" / "audited.py"
    roots = [Path(sys.prefix), Path(sys.base_prefix), PACKAGE, harness, *allowed]
    return [p for p in opened if p not in OS_FILES and not any(Path(p).is_relative_to(r) for r in roots)]


@pytest.mark.parametrize(
    "entry",
    ["caption", "caption --lang ru", "api", "serve", "caption --runtime onnx", "export --web"],
)
def test_caption_path_opens_no_file_outside_python_the_package_and_the_model(
    entry: str, tmp_path: Path, bundled_export: Path
) -> None:
    """Every file Python opens while the entry point captions (or exports) the example images lies under the
    interpreter's prefix, the installed package (the bundled model inside it), the model folder or the user's own
    inputs and outputs: no WordNet, no word list, nothing else of the system's."""
    images = tmp_path / "images"
    images.mkdir()
    for p in EXAMPLES:
        shutil.copy(p, images / p.name)
    model = default_model_path()
    if entry.startswith("caption"):
        more = ["--checkpoint", str(bundled_export)] if "onnx" in entry else []
        got = _audited(tmp_path, "cli", *entry.split(), *more, str(images))
        model = bundled_export if more else model
        allowed = [images]
    elif entry == "api":
        got = _audited(tmp_path, "api", *map(str, sorted(images.iterdir())))
        allowed = [images]
    elif entry == "serve":
        got = _audited(tmp_path, "serve", str(images / "chelsea.jpg"))
        allowed = [images]
        assert got["output"] == "a cat"
    else:
        if not ORT_WEB.exists() and not os.environ.get("CI"):
            pytest.skip("onnxruntime-web's npm package missing (.ci/run fetches it)")
        web = tmp_path / "web"
        got = _audited(tmp_path, "cli", "export", str(model), "--out", str(tmp_path / "x"), "--web", str(web),
                       "--ort-web", str(ORT_WEB))  # fmt: skip
        allowed = [tmp_path / "x", web, ORT_WEB]
        assert (web / POLICY_FILE).read_bytes() == (model / POLICY_FILE).read_bytes()
    assert _outside(got["opened"], model, *allowed) == []
    assert any(Path(p).is_relative_to(model) for p in got["opened"])  # the hook saw the model being read
    if entry.startswith("caption") or entry == "api":
        assert "a cat" in got["output"] or "кошка" in got["output"]


def test_the_bundled_model_ships_inside_the_package_with_a_current_policy() -> None:
    """default_model_path is inside the installed package, and its policy.json is what build_policy makes of its
    vocabulary, threshold and encoder today: the contract cannot go stale beside the code that writes it."""
    model = default_model_path()
    assert model.is_relative_to(PACKAGE) and (model / "model.safetensors").is_file()
    config = json.loads((model / "config.json").read_text())
    encoder = json.loads((model / "encoder.json").read_text())["name"]
    policy = build_policy(Vocab.load(model / "vocab.json"), config["model"]["name_threshold"], encoder)
    assert (model / POLICY_FILE).read_bytes() == policy_bytes(policy)
    meta = json.loads((model / "meta.json").read_text())
    import hashlib

    assert meta["policy_sha256"] == hashlib.sha256(policy_bytes(policy)).hexdigest()


@pytest.mark.skipif(not (WORDNET / "data.noun").is_file() and not os.environ.get("CI"), reason="needs wordnet-base")
def test_the_shipped_person_words_are_wordnets() -> None:
    assert shipped_person_words() == frozenset(person_words())
    assert {"astronaut", "woman", "officer", "people"} <= shipped_person_words() and "cat" not in shipped_person_words()


def test_a_checkpoint_made_before_policies_names_the_upgrade_and_upgrades(tmp_path: Path, capsys) -> None:
    old = tmp_path / "old"
    shutil.copytree(default_model_path(), old, ignore=shutil.ignore_patterns("onnx"))  # made before own exports
    (old / POLICY_FILE).unlink()
    image = str(EXAMPLES[1])
    assert main(["caption", "--checkpoint", str(old), image]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"captioner: error: {old / POLICY_FILE}: missing; this model was made before caption policies. "
        f"Build it once with `captioner upgrade {old}`\n"
    )
    assert main(["upgrade", str(old)]) == 0
    assert capsys.readouterr().out.startswith(f"{old / POLICY_FILE}: written (version {POLICY_VERSION}, sha256 ")
    assert (old / POLICY_FILE).read_bytes() == (default_model_path() / POLICY_FILE).read_bytes()
    assert main(["upgrade", str(old)]) == 0
    assert capsys.readouterr().out == f"{old / POLICY_FILE}: already current (version {POLICY_VERSION})\n"
    assert main(["caption", "--checkpoint", str(old), image]) == 0
    assert capsys.readouterr().out == f"{image}\ta cat\n"


def test_a_policy_of_the_flat_patch_photo_test_names_the_upgrade_and_upgrades(tmp_path: Path, capsys) -> None:
    """Version 1 policies carried the flat-patch threshold ({"flat": 0.01}); this captioner reads the probe."""
    import hashlib

    old = tmp_path / "old"
    shutil.copytree(default_model_path(), old, ignore=shutil.ignore_patterns("onnx"))  # made before own exports
    data = json.loads((old / POLICY_FILE).read_text())
    (old / POLICY_FILE).write_bytes(policy_bytes({**data, "version": 1, "photo": {"flat": 0.01}}))
    meta = json.loads((old / "meta.json").read_text())
    meta["policy_sha256"] = hashlib.sha256((old / POLICY_FILE).read_bytes()).hexdigest()
    (old / "meta.json").write_text(json.dumps(meta))
    assert main(["caption", "--checkpoint", str(old), str(EXAMPLES[1])]) == 2
    assert capsys.readouterr().err == (
        f"captioner: error: {old / POLICY_FILE}: caption policy version 1, this captioner reads {POLICY_VERSION}; "
        f"rebuild it with `captioner upgrade {old}`\n"
    )
    assert main(["upgrade", str(old)]) == 0
    assert (old / POLICY_FILE).read_bytes() == (default_model_path() / POLICY_FILE).read_bytes()


def test_an_edited_or_foreign_policy_is_refused(tmp_path: Path, capsys) -> None:
    ck = tmp_path / "ck"
    shutil.copytree(default_model_path(), ck, ignore=shutil.ignore_patterns("onnx"))  # made before own exports
    data = json.loads((ck / POLICY_FILE).read_text())
    (ck / POLICY_FILE).write_text(json.dumps({**data, "name_threshold": 0.1}))
    assert main(["caption", "--checkpoint", str(ck), str(EXAMPLES[1])]) == 2
    assert "policy.json: changed since it was built; rebuild it with `captioner upgrade" in capsys.readouterr().err
    (ck / POLICY_FILE).write_bytes(policy_bytes({**data, "vocab_sha256": "0" * 64}))
    meta = json.loads((ck / "meta.json").read_text())
    import hashlib

    meta["policy_sha256"] = hashlib.sha256((ck / POLICY_FILE).read_bytes()).hexdigest()
    (ck / "meta.json").write_text(json.dumps(meta))
    assert main(["caption", "--checkpoint", str(ck), str(EXAMPLES[1])]) == 2
    assert f"policy.json: built for another vocabulary than {ck / 'vocab.json'}" in capsys.readouterr().err


BLOCK = "import sys; sys.modules[{name!r}] = None; from captioner.cli.main import main; sys.exit(main({args!r}))"


@pytest.mark.parametrize(
    ("missing", "args", "message"),
    [
        ("onnxruntime", ["caption", "--runtime", "torch", "IMAGE"],
         "the people detectors need onnxruntime: pip install onnxruntime (or caption with --no-people)"),
        ("onnxruntime", ["caption", "IMAGE"], "runtime onnx needs onnxruntime: pip install onnxruntime (or caption "
                                              "with --runtime torch --no-people)"),
        ("onnxruntime", ["caption", "--runtime", "onnx", "--checkpoint", "EXPORT", "IMAGE"],
         "runtime onnx needs onnxruntime: pip install onnxruntime (or caption with --runtime torch --no-people)"),
        ("onnx", ["export", "MODEL", "--out", "OUT"], "export needs the onnx extra: pip install -e '.[onnx]'"),
        ("uvicorn", ["serve"], "serve needs uvicorn: pip install fastapi uvicorn python-multipart"),
    ],
)  # fmt: skip
def test_a_missing_package_is_one_line_naming_it_and_how_to_get_it(
    missing: str, args: list[str], message: str, tmp_path: Path, bundled_export: Path
) -> None:
    names = {"IMAGE": str(EXAMPLES[1]), "EXPORT": str(bundled_export), "MODEL": str(default_model_path()),
             "OUT": str(tmp_path / "out")}  # fmt: skip
    argv = [names.get(a, a) for a in args]
    r = subprocess.run([sys.executable, "-c", BLOCK.format(name=missing, args=argv)], capture_output=True, text=True)
    assert (r.returncode, r.stderr.splitlines()[-1:]) == (2, [f"captioner: error: {message}"]), r.stderr
    assert "Traceback" not in r.stderr
    if args[1:3] == ["--runtime", "torch"]:  # PyTorch without the detectors still captions
        r = subprocess.run([sys.executable, "-c", BLOCK.format(name=missing, args=[*argv[:1], "--no-people",
                            *argv[1:]])], capture_output=True, text=True)  # fmt: skip
        assert (r.returncode, r.stdout) == (0, f"{EXAMPLES[1]}\ta cat\n"), r.stderr


def test_a_missing_model_says_how_to_point_at_one(tmp_path: Path, capsys) -> None:
    assert main(["caption", "--checkpoint", str(tmp_path / "nowhere"), str(EXAMPLES[1])]) == 2
    hint = "model not found (pass a checkpoint folder, or set CAPTIONER_MODEL)"
    assert capsys.readouterr().err == f"captioner: error: {tmp_path / 'nowhere'}: {hint}\n"


def test_a_missing_detector_graph_is_one_line_naming_it(monkeypatch) -> None:
    import numpy as np

    from captioner.errors import CaptionerError
    from captioner.sights import people

    monkeypatch.setattr(people, "MODEL", "missing.onnx")
    with pytest.raises(CaptionerError, match=r"data/missing.onnx: the people detector's graph is missing; reinstall"):
        people.faces(np.zeros((224, 224, 3), np.uint8))
