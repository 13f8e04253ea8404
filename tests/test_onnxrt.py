"""The onnxruntime path: Captioner.load(DIR, runtime="onnx") and `captioner caption --runtime onnx` give the
PyTorch path's captions for the bundled model, import no PyTorch, and refuse a damaged or incomplete export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from captioner.api import Captioner
from captioner.cli.main import main
from captioner.errors import CaptionerError

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).parents[1]
BUNDLED = ROOT / "src" / "captioner" / "bundled" / "open-clipart"
EXAMPLES = sorted((ROOT / "examples" / "images").glob("*.jpg"))


@pytest.fixture
def exported(bundled_export: Path) -> Path:
    return bundled_export


def test_onnx_runtime_captions_equal_torch_on_the_examples(exported: Path) -> None:
    want = Captioner.load(BUNDLED).caption(EXAMPLES, beam=3, n_best=3)
    got = Captioner.load(exported, runtime="onnx").caption(EXAMPLES, beam=3, n_best=3)
    assert [r.caption for r in got] == [r.caption for r in want]
    assert [[a for a, _ in r.alternatives] for r in got] == [[a for a, _ in r.alternatives] for r in want]
    for g, w in zip(got, want, strict=True):
        assert g.confidence == pytest.approx(w.confidence, abs=1e-3)
        assert [t.label for t in g.tags] == [t.label for t in w.tags]
    int8 = Captioner.load(exported, runtime="onnx", int8=True)
    assert int8.runtime.info["runtime"] == "onnx-int8"
    assert [r.caption for r in int8.caption(EXAMPLES)] == [r.caption for r in want]


def test_a_batch_runs_each_graph_once_but_the_decoders_steps(exported: Path) -> None:
    """init.onnx runs once for a batch (every search selects its rows), the encoder once; captions unchanged."""
    cap = Captioner.load(exported, runtime="onnx")
    want = [r.caption for r in cap.caption(EXAMPLES, beam=3)]
    runs: dict[str, int] = {}

    class Counted:
        def __init__(self, name: str, session: object) -> None:
            self.name, self.session = name, session

        def run(self, *args: object, **kwargs: object) -> object:
            runs[self.name] = runs.get(self.name, 0) + 1
            return self.session.run(*args, **kwargs)  # type: ignore[attr-defined]

    rt = cap.runtime
    rt.sessions = {g: Counted(g, s) for g, s in rt.sessions.items()}  # type: ignore[attr-defined]
    assert [r.caption for r in cap.caption(EXAMPLES, beam=3)] == want
    assert runs["encoder"] == 1 and runs["init"] == 1 and runs["decoder"] >= 2


def test_the_bundled_model_runs_its_own_export_by_default_with_torchs_captions(tmp_path: Path) -> None:
    """runtime auto (the default) runs CHECKPOINT/onnx, the bundled model's own export, which is current (its
    manifest's source hashes are the checkpoint's files) and captions as PyTorch does, in every language and
    with the alternatives; a torch option goes to PyTorch; an export of an older checkpoint is refused by name."""
    import shutil

    default = Captioner.load()
    assert default.runtime.info["runtime"] == "onnx" and default.runtime.info["model"] == str(BUNDLED / "onnx")
    torch_cap = Captioner.load(runtime="torch")
    for lang in default.languages:
        got, want = default.caption(EXAMPLES, n_best=3, lang=lang), torch_cap.caption(EXAMPLES, n_best=3, lang=lang)
        texts = [[(r.caption, [a for a, _ in r.alternatives]) for r in rs] for rs in (got, want)]
        assert texts[0] == texts[1], lang
    assert Captioner.load(bf16=True).runtime.info["runtime"] == "torch"
    copy = tmp_path / "model"
    shutil.copytree(BUNDLED, copy)
    (copy / "config.json").write_text((copy / "config.json").read_text() + "\n")
    with pytest.raises(CaptionerError, match=r"exported from another config.json than .*; rerun `captioner export"):
        Captioner.load(copy)
    assert Captioner.load(copy, runtime="torch").runtime.info["runtime"] == "torch"
    shutil.rmtree(copy / "onnx")
    assert Captioner.load(copy).runtime.info["runtime"] == "torch"  # no export of its own


def test_upgrade_keeps_the_own_export_current_or_names_the_command(tmp_path: Path, capsys) -> None:
    """`captioner upgrade` rewrites policy.json (and with --data vocab.json's tables); the own export gets both, so
    the default runtime still runs it, with PyTorch's captions. An export of other weights is left as it is, and
    upgrade and the default runtime name the command that rewrites it."""
    import dataclasses
    import shutil

    from captioner.policy import POLICY_FILE
    from captioner.text.vocab import Vocab

    copy = tmp_path / "model"
    shutil.copytree(BUNDLED, copy)
    bare = dataclasses.replace(Vocab.load(copy / "vocab.json"), countable=())  # an older vocabulary: no articles
    bare.save(copy / "vocab.json")
    assert main(["upgrade", str(copy)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{copy / POLICY_FILE}: written") and out[1] == (
        f"{copy / 'onnx'}: its policy.json and vocab.json are the checkpoint's now"
    )
    for name in ("vocab.json", POLICY_FILE):
        assert (copy / "onnx" / name).read_bytes() == (copy / name).read_bytes()
    default, torch_cap = Captioner.load(copy), Captioner.load(copy, runtime="torch")
    assert default.runtime.info["runtime"] == "onnx"
    got, want = [r.caption for r in default.caption(EXAMPLES)], [r.caption for r in torch_cap.caption(EXAMPLES)]
    assert got == want and default.runtime.policy.sha256 == torch_cap.runtime.policy.sha256
    assert default.runtime.policy.data["languages"]["en"]["countable"] == []  # the upgraded rules, not the old
    (copy / "config.json").write_text((copy / "config.json").read_text() + "\n")
    assert main(["upgrade", str(copy)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{copy / 'onnx'}: exported from other weights or words; rerun `captioner export {copy} --out {copy / 'onnx'}`"
    )
    with pytest.raises(CaptionerError, match=r"exported from another config.json"):
        Captioner.load(copy)


def test_onnxruntime_sessions_take_their_threads_from_omp_num_threads() -> None:
    """Every session captioner opens (the export's graphs, both detectors) runs OMP_NUM_THREADS threads when it is
    set (Ray sets it to an actor's num_cpus) and one per core (0) otherwise."""
    code = (
        "from captioner import Captioner; from captioner.sights import people\n"
        "cap = Captioner.load()\n"
        "sessions = [*cap.runtime.sessions.values(), people.detector_session(people.MODEL),"
        " people.detector_session(people.PERSON_MODEL)]\n"
        "print(sorted({s.get_session_options().intra_op_num_threads for s in sessions}))\n"
    )
    for env, want in (({"OMP_NUM_THREADS": "1"}, "[1]"), ({}, "[0]")):
        clean = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**clean, **env})
        assert out.returncode == 0 and out.stdout.strip() == want, (env, out.stdout, out.stderr[-500:])


def test_onnx_path_never_imports_torch(exported: Path) -> None:
    code = (
        "import sys; from captioner import Captioner\n"
        f"r = Captioner.load({str(exported)!r}, runtime='onnx').caption({str(EXAMPLES[0])!r})\n"
        "print(r.caption); assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == Captioner.load(exported, runtime="onnx").caption(EXAMPLES[0]).caption


def test_cli_caption_runtime_onnx(exported: Path, capsys) -> None:
    assert main(["caption", "--runtime", "onnx", "--checkpoint", str(exported), *map(str, EXAMPLES)]) == 0
    onnx_lines = capsys.readouterr().out.splitlines()
    assert main(["caption", *map(str, EXAMPLES)]) == 0
    assert onnx_lines == capsys.readouterr().out.splitlines() and len(onnx_lines) == len(EXAMPLES)
    assert main(["caption", "--runtime", "onnx", "--checkpoint", str(BUNDLED), str(EXAMPLES[0])]) == 2
    assert "manifest.json" in capsys.readouterr().err  # a checkpoint is not an export


def test_damaged_or_incomplete_export_is_refused(exported: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "x"
    shutil.copytree(exported, copy)
    (copy / "vocab.json").write_text((copy / "vocab.json").read_text() + " ")
    with pytest.raises(CaptionerError, match=r"vocab.json: sha256 differs from manifest.json"):
        Captioner.load(copy, runtime="onnx")
    (copy / "vocab.json").unlink()
    with pytest.raises(CaptionerError, match=r"vocab.json: listed in manifest.json but missing"):
        Captioner.load(copy, runtime="onnx")
    fp32 = tmp_path / "fp32"
    shutil.copytree(exported, fp32)
    m = json.loads((fp32 / "manifest.json").read_text())
    m["files"] = {k: v for k, v in m["files"].items() if ".int8." not in k and ".fp16." not in k}
    del m["int8"]
    (fp32 / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CaptionerError, match=r"the export has no int8 graphs \(export with --int8\)"):
        Captioner.load(fp32, runtime="onnx", int8=True)
    with pytest.raises(CaptionerError, match="torch options"):
        Captioner.load(exported, runtime="onnx", bf16=True)
    with pytest.raises(CaptionerError, match="int8 is for runtime onnx"):
        Captioner.load(BUNDLED, runtime="torch", int8=True)
    with pytest.raises(CaptionerError, match=r"open-clipart/onnx: the export has no int8 graphs"):
        Captioner.load(BUNDLED, int8=True)  # its own export is float32


def test_service_runs_on_the_onnx_runtime(exported: Path) -> None:
    from fastapi.testclient import TestClient

    from captioner.serve.app import create_app

    cap = Captioner.load(exported, runtime="onnx")
    with TestClient(create_app(cap)) as client:
        health = client.get("/health").json()
        assert health["runtime"] == "onnx" and health["model"] == str(exported) and health["kind"] == "copy"
        png = EXAMPLES[1].read_bytes()
        r = client.post("/caption?beam=3", files={"image": (EXAMPLES[1].name, png, "image/jpeg")}).json()
    assert r["caption"] == Captioner.load(BUNDLED).caption(EXAMPLES[1]).caption
