"""`captioner export --web DIR`: a static folder that captions images in the browser, with no server.

DIR holds index.html and the page's modules (SCRIPTS, from this package's webpage/), the export's graphs and JSON, the
people detectors of people.py under people/ (their ONNX graphs and licences; the page reads their settings, as
every rule, from the export's policy.json), and onnxruntime-web's WebAssembly build under ort/, copied from the npm
package the user names (`npm pack onnxruntime-web` writes one; nothing is downloaded here) with its licence. Any
static file server can serve DIR; each file of GZIP_MIN bytes or more has FILE.gz beside it (gzip -9), which
`captioner serve --page` (and servers that look for such files, as nginx's gzip_static) sends to browsers that accept
gzip: download_bytes is what such a browser downloads. The page preprocesses, encodes, looks for people,
beam-searches and names the image in the page itself."""

from __future__ import annotations

import gzip
import json
import shutil
import tarfile
from importlib.resources import files
from pathlib import Path

from captioner.errors import CaptionerError
from captioner.files import write_bytes, write_json
from captioner.policy import POLICY_FILE
from captioner.runtime.onnx_runtime import GRAPHS
from captioner.sights import people

PAGE = files("captioner") / "webpage"
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
EXPORTED = ("vocab.json", "labels.json", "encoder.json", "manifest.json", POLICY_FILE)  # and the graphs (page.json)
# The page's modules, each named after the Python module it ports, in the order they load (each reads the ones
# before it): text.vocab, features.spec, sights.photo, sights.colours, sights.people, sights.look, decode.search and
# decode.constrained, decode.rules, runtime.onnx_runtime, and api (captioner.js).
SCRIPTS = ("vocab.js", "spec.js", "photo.js", "colours.js", "people.js", "look.js", "search.js", "rules.js",
           "onnx_runtime.js", "captioner.js")  # fmt: skip
SCRIPT_SLOT = "<!-- scripts: runtime/page.py writes the modules here, in runtime.page.SCRIPTS order -->"
GZIP_MIN = 1024  # bytes: larger files get FILE.gz beside them (what `serve --page` sends when gzip is accepted)
DETECTORS = (people.MODEL, people.PERSON_MODEL, "BLAZEFACE_LICENSE.txt", "NANODET_LICENSE.txt")
ORT_LICENSE = """onnxruntime-web {version}: MIT License (the npm package's "license" field; the package carries
no licence file, so the text of the MIT License follows, with onnxruntime's copyright line).

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
documentation files (the "Software"), to deal in the Software without restriction, including without limitation the
rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
permit persons to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial portions of
the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE
WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def _ort_package(path: Path) -> tuple[str, dict[str, bytes]]:
    """The version and the WebAssembly files of onnxruntime-web, from `npm pack`'s .tgz or an unpacked package."""
    hint = "give the .tgz that `npm pack onnxruntime-web` writes, or its unpacked package/ folder"
    if not path.exists():
        raise CaptionerError(f"{path}: onnxruntime-web not found ({hint})")
    if path.is_dir():
        read = {n: (path / n).read_bytes() for n in ["package.json", *(f"dist/{f}" for f in ORT_FILES)]
                if (path / n).is_file()}  # fmt: skip
    else:
        try:
            with tarfile.open(path) as tar:
                names = {f"package/{n}" for n in ["package.json", *(f"dist/{f}" for f in ORT_FILES)]}
                read = {m.name.removeprefix("package/"): tar.extractfile(m).read()  # type: ignore[union-attr]
                        for m in tar.getmembers() if m.name in names and m.isfile()}  # fmt: skip
        except (tarfile.TarError, OSError) as e:
            raise CaptionerError(f"{path}: not a readable npm package ({e}); {hint}") from e
    try:
        meta = json.loads(read.pop("package.json"))
    except (KeyError, ValueError):
        raise CaptionerError(f"{path}: no valid package.json; {hint}") from None
    if meta.get("name") != "onnxruntime-web" or meta.get("license") != "MIT":
        raise CaptionerError(f"{path}: package {meta.get('name')!r} ({meta.get('license')}), not onnxruntime-web (MIT)")
    missing = [f for f in ORT_FILES if f"dist/{f}" not in read]
    if missing:
        raise CaptionerError(f"{path}: onnxruntime-web {meta.get('version')} lacks dist/{', dist/'.join(missing)}")
    return str(meta.get("version")), {f: read[f"dist/{f}"] for f in ORT_FILES}


def write_page(export_dir: Path, web: Path, ort_web: Path) -> dict[str, int]:
    """Copy the page, the export's JSON and graphs (its compact ones when it has them: `export --int8`; page.json
    names those the page runs), and onnxruntime-web into web/; returns file sizes."""
    spec = json.loads((export_dir / "encoder.json").read_text())
    if spec.get("resize") != "shorter-side+center-crop" or spec.get("channels") != "RGB":
        raise CaptionerError(
            f"--web: the page preprocesses as Pillow's shorter-side resize and centre crop of RGB images; "
            f"encoder {spec.get('name')!r} uses {spec.get('resize')!r} ({spec.get('channels')})"
        )
    version, ort = _ort_package(ort_web)
    web.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((export_dir / "manifest.json").read_text())
    graphs = manifest.get("int8") or {g: f"{g}.onnx" for g in GRAPHS}
    for name in (*EXPORTED, *graphs.values()):
        shutil.copyfile(export_dir / name, web / name)
    write_json(web / "page.json", {"graphs": graphs})
    tags = "\n".join(f'<script src="{name}"></script>' for name in SCRIPTS)
    html = (PAGE / "index.html").read_text(encoding="utf-8").replace(SCRIPT_SLOT, tags)
    write_bytes(web / "index.html", html.encode("utf-8"))
    for name in SCRIPTS:
        write_bytes(web / name, (PAGE / name).read_bytes())
    (web / "people").mkdir(exist_ok=True)
    for name in DETECTORS:
        write_bytes(web / "people" / name, (files("captioner") / "data" / name).read_bytes())
    (web / "ort").mkdir(exist_ok=True)
    for name, data in ort.items():
        write_bytes(web / "ort" / name, data)
    (web / "ort" / "LICENSE").write_text(ORT_LICENSE.format(version=version))
    write_json(web / "ort" / "package.json", {"name": "onnxruntime-web", "version": version, "license": "MIT"})
    for p in sorted(web.rglob("*")):
        if p.is_file() and p.suffix != ".gz" and p.stat().st_size >= GZIP_MIN:
            write_bytes(p.with_name(p.name + ".gz"), gzip.compress(p.read_bytes(), 9, mtime=0))
    return {str(p.relative_to(web)): p.stat().st_size for p in sorted(web.rglob("*")) if p.is_file()}


def download_bytes(sizes: dict[str, int]) -> int:
    """What a browser that accepts gzip downloads of a page write_page wrote (its file sizes): each file's .gz
    where it has one, else the file."""
    return sum(sizes.get(f"{name}.gz", n) for name, n in sizes.items() if not name.endswith(".gz"))
