"""The house by stage: imports point one way down the stages, no module imports another's private name, and
modules and functions stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import captioner

PACKAGE = Path(captioner.__file__).parent
# Each stage may import itself and the stages before it, never one after it.
STAGES = (
    ("config", "errors", "files", "ticker", "unpickle"),  # shared by all
    ("data",),  # importers, manifests, the build-time word-data readers
    ("text",),  # tokenizer, vocabulary, endings, metrics
    ("features",),  # images, preprocessing, encoders, extraction
    ("corpus",),  # prepare and the corpus builders (they extract features)
    ("models",),
    ("sights",),  # what the pixels show
    ("policy",),  # the caption policy, built from a vocabulary and the sights' settings
    ("decode",),  # search, the PyTorch stepper, the rules
    ("train",),
    ("evaluate",),
    ("runtime",),  # PyTorch and onnxruntime runtimes, export, the page
    ("api",),
    ("batch",),
    ("ray", "serve"),
    ("cli",),
    ("__init__",),
)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _stage(module: str) -> int:
    """The stage of a dotted module under captioner ('captioner.decode.rules' -> the decode stage's index)."""
    head = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, names in enumerate(STAGES) if head in names)


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)
        out[name] = ast.parse(path.read_text(encoding="utf-8"))
    return out


def _imports(tree: ast.Module) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every import of captioner's modules, lazy ones in functions too."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("captioner"):
            assert node.level == 0, f"line {node.lineno}: relative import"
            out.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("captioner")]
    return out


def test_every_module_is_in_a_stage_and_imports_point_down_the_stages() -> None:
    bad = []
    for name, tree in _modules().items():
        here = _stage(name) if name != "captioner" else len(STAGES) - 1
        for module, _, line in _imports(tree):
            if _stage(module) > here:
                bad.append(f"{name}:{line} imports {module}, a later stage")
    assert bad == []


def test_no_module_imports_another_modules_private_name() -> None:
    bad = [
        f"{name}:{line} imports {n} from {module}"
        for name, tree in _modules().items()
        for module, names, line in _imports(tree)
        for n in names
        if n.startswith("_") and module != name
    ]
    assert bad == []


def test_modules_and_functions_are_small() -> None:
    big = []
    for name, tree in _modules().items():
        lines = max((getattr(n, "end_lineno", 0) or 0) for n in ast.walk(tree))
        if lines > MAX_MODULE_LINES:
            big.append(f"{name}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES:
                    big.append(f"{name}.{node.name}: {n} lines")
    assert big == []


ROOT = PACKAGE.parents[1]
BENCH_SHARE = 0.15  # bench/ at most this share of the project's Python lines


def _lines(folder: Path) -> int:
    return sum(len(p.read_text(encoding="utf-8").splitlines()) for p in folder.rglob("*.py"))


def test_bench_is_a_small_share_and_every_script_answers_help() -> None:
    import subprocess
    import sys

    total = sum(_lines(ROOT / d) for d in ("src", "tests", "bench", "tools", ".ci"))
    assert _lines(ROOT / "bench") <= BENCH_SHARE * total
    scripts = sorted(p for p in (ROOT / "bench").glob("*.py") if p.name != "common.py")
    for p in scripts:
        r = subprocess.run([sys.executable, str(p), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "usage:" in r.stdout, (p.name, r.stderr[-500:])
        assert "sys.path" not in p.read_text(encoding="utf-8") and "from tests" not in p.read_text(encoding="utf-8")
