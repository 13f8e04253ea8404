"""The page `captioner export --web` writes, in headless Chromium: its captions are `captioner caption`'s, its
preprocessing is Pillow's bit for bit, its people detectors are people.py's, its beam search and constrained
search are decoding.py's, and it fetches nothing but its own folder."""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import shutil
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captioner.api import default_model_path
from captioner.cli.main import main
from captioner.decode.constrained import constrained_beam_search
from captioner.decode.search import beam_search
from captioner.errors import CaptionerError
from captioner.features.images import open_image
from captioner.features.spec import EncoderSpec, preprocess
from captioner.policy import load_policy
from captioner.runtime.onnx_runtime import OnnxRuntime, OnnxStepper
from captioner.runtime.page import download_bytes, write_page
from captioner.sights.look import look, pixels
from captioner.sights.photo import flat_share, photo_scores
from captioner.text.vocab import Vocab

ROOT = Path(__file__).parents[1]
EXAMPLES = sorted((ROOT / "examples" / "images").glob("*.jpg"))
ORT_WEB = Path(os.environ.get("CAPTIONER_ORT_WEB", ROOT / ".cache" / "onnxruntime-web-1.31.1.tgz"))
browser = pytest.mark.skipif(
    (shutil.which("chromium") is None or not ORT_WEB.exists()) and not os.environ.get("CI"),
    reason="Debian chromium or onnxruntime-web's npm package missing (.ci/run installs both)",
)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def page(bundled_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str, Path]]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    web = tmp_path_factory.mktemp("web")
    write_page(bundled_export, web, ORT_WEB)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(web)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"):  # fmt: skip
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_script_timeout(300)
    try:
        yield driver, f"http://127.0.0.1:{server.server_address[1]}/", web
    finally:
        driver.quit()
        server.shutdown()


def _run(driver: object, body: str, *args: object) -> object:
    """Run an async JS body (it may await; `args` holds the arguments) and return its value or raise its error."""
    js = (
        "const done = arguments[arguments.length - 1], args = [...arguments].slice(0, -1);"
        f"(async () => {{ {body} }})().then((v) => done({{ ok: v }}), (e) => done({{ error: String(e.stack || e) }}));"
    )
    out = driver.execute_async_script(js, *args)  # type: ignore[attr-defined]
    assert "error" not in out, out["error"]
    return out["ok"]


def _upload(driver: object, images: list[Path]) -> dict[str, str]:
    """Drop the images on the open page and wait for every caption: {file name: caption}."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, "file").send_keys("\n".join(str(p) for p in images))  # type: ignore[attr-defined]
    done = "#results li[data-ms]"
    WebDriverWait(driver, 240).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, done)) == len(images))
    return {
        li.get_attribute("data-name"): li.find_element(By.CSS_SELECTOR, ".caption").get_attribute("data-caption")
        for li in driver.find_elements(By.CSS_SELECTOR, done)  # type: ignore[attr-defined]
    }


@browser
def test_page_captions_equal_captioner_caption(page: tuple, capsys) -> None:
    from selenium.webdriver.common.by import By

    driver, base, _ = page
    driver.get(base)
    got = _upload(driver, EXAMPLES)
    from captioner.api import Captioner

    assert main(["caption", *map(str, EXAMPLES)]) == 0
    want = {Path(k).name: v for k, v in (line.split("\t") for line in capsys.readouterr().out.splitlines())}
    assert got == want and want["astronaut.jpg"] == "a person"  # every rule of truth.py, the people detectors too
    driver.get(base)  # again, with "look for people" unticked: the captions of Captioner people=False
    driver.find_element(By.ID, "people").click()
    astronaut = ROOT / "examples" / "images" / "astronaut.jpg"
    blind = Captioner.load(people=False).caption(str(astronaut)).caption
    assert _upload(driver, [astronaut]) == {"astronaut.jpg": blind} and blind != "a person"
    assert float(driver.find_element(By.ID, "timing").get_attribute("data-first")) > 0  # time to the first caption
    assert all(float(li.get_attribute("data-ms")) > 0 for li in driver.find_elements(By.CSS_SELECTOR, "#results li"))
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert fetched and all(u.startswith(base) or u.startswith("blob:") for u in fetched)  # nothing from elsewhere


@browser
def test_page_captions_in_the_language_picked(page: tuple) -> None:
    """The language picker offers the model's languages; Russian captions equal the API's, and an unknown
    language is the API's error."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from captioner.api import Captioner

    driver, base, web = page
    driver.get(base)
    WebDriverWait(driver, 120).until(lambda d: d.find_element(By.ID, "status").get_attribute("data-ready"))
    picker = Select(driver.find_element(By.ID, "lang"))
    cap = Captioner.load()
    assert [o.get_attribute("value") for o in picker.options] == [
        "",
        *(t for t in cap.languages if t not in ("en", "und")),
    ]
    picker.select_by_value("ru")
    got = _upload(driver, EXAMPLES)
    want = {Path(r.source).name: r.caption for r in cap.caption([str(p) for p in EXAMPLES], lang="ru")}
    assert got == want and all(any("а" <= ch <= "я" for ch in c) for c in got.values())  # Cyrillic words
    assert got["astronaut.jpg"] == "человек"
    err = _run(
        driver, "const m = await captioner.load(); try { captioner.language(m, 'xx'); } catch (e) { return e.message; }"
    )
    assert err == f"language 'xx' is unknown to this model; it knows {', '.join(cap.languages)}"


@browser
def test_page_gives_an_untranslatable_caption_way_as_python_does(page: tuple, monkeypatch) -> None:
    """A built drawing whose English caption German's table cannot say ("a cake"): Python and the page both say
    instead the concept every language can say ("a fountain"), in English and German, as they do for a photo whose
    class is not confident enough to name (scikit-image's retina photo); and both make German's article agree
    with its noun ("eine katze", decoded "ein katze")."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from captioner.api import Captioner
    from captioner.decode.rules import Rules

    driver, base, _ = page
    import skimage.data

    image, cap, cat = ROOT / "tests" / "data" / "untranslatable.png", Captioner.load(), EXAMPLES[1]
    fundus = Path(skimage.data.__file__).parent / "microaneurysms.png"  # a photo, no class confident enough to name
    want = {lang: cap.caption(str(image), lang=lang).caption for lang in ("en", "de")}
    cats = {lang: cap.caption(str(cat), lang=lang).caption for lang in ("en", "de")}
    fundus_caps = {lang: cap.caption(str(fundus), lang=lang) for lang in ("en", "de")}
    assert cats["de"] == "eine katze" and fundus_caps["en"].photo
    with monkeypatch.context() as m:
        m.setattr(Rules, "sayable_must", lambda self, caption: None)
        assert Captioner.load().caption(str(image)).caption == "a cake"  # without the rule
        assert Captioner.load().caption(str(fundus)).caption != fundus_caps["en"].caption  # and this one
    assert want["en"] == "a fountain" and "cake" not in cap.runtime.vocab.translations["de"]
    for lang in ("", "de"):
        driver.get(base)
        WebDriverWait(driver, 120).until(lambda d: d.find_element(By.ID, "status").get_attribute("data-ready"))
        Select(driver.find_element(By.ID, "lang")).select_by_value(lang)
        got = _upload(driver, [image, cat, fundus])
        assert got == {image.name: want[lang or "en"], cat.name: cats[lang or "en"],
                       fundus.name: fundus_caps[lang or "en"].caption}  # fmt: skip


def _test_images(folder: Path) -> list[str]:
    """The examples and images that take every branch of the resize: reduce() first (both factors, or one),
    an upscale, a side already the input size, partial transparency, an EXIF rotation."""
    folder.mkdir(exist_ok=True)
    for p in EXAMPLES:
        shutil.copy(p, folder / p.name)
    cat = Image.open(EXAMPLES[1])
    cat.resize((2000, 1500)).save(folder / "reduce-both.png")
    cat.resize((5000, 700)).save(folder / "reduce-x.png")
    cat.resize((50, 31)).save(folder / "upscale.png")
    cat.resize((224, 1000)).save(folder / "narrow.png")
    rgba = np.asarray(cat.convert("RGBA")).copy()
    rgba[:80, :, 3] = 0
    rgba[80:200, :, 3] = np.arange(rgba.shape[1]) % 256
    Image.fromarray(rgba).save(folder / "alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 clockwise to view
    cat.save(folder / "rotated.jpg", exif=exif, quality=90)
    return sorted(p.name for p in folder.iterdir())


@browser
def test_page_preprocessing_colours_and_photo_test_are_pythons(page: tuple, bundled_export: Path) -> None:
    """Preprocessing bit for bit, the colours shown, the flat share, the photo probe's score on the page's compact
    encoder against onnxruntime's on the same graph (to 1e-4), and the photo test's verdict."""
    from captioner.runtime.onnx_runtime import OnnxRuntime

    driver, base, web = page
    names = _test_images(web / "t")
    spec = EncoderSpec.from_json(json.loads((web / "encoder.json").read_text()))
    policy = load_policy(web, Vocab.load(web / "vocab.json"))
    want = {n: preprocess(open_image(web / "t" / n), spec) for n in names}
    driver.get(base)
    got = _run(
        driver,
        """const m = await captioner.load(), spec = m.spec, out = {};
        for (const n of args[0]) {
          const px = await captioner.pixels(await (await fetch('t/' + n)).blob());
          const x = captioner.preprocess(px.data, px.width, px.height, spec);
          const shown = [...captioner.shownColours(x, spec, m.policy.colours)];
          const { pooled } = await captioner.encode(m, x);
          const p = m.policy.photo;
          const flat = captioner.flatShare(x, spec.input_size);
          out[n] = [Array.from(x), flat, captioner.photoScore(pooled, p.probe), shown,
                    (await captioner.look(m, x, pooled, false)).photo];
        }
        return out;""",
        names,
    )
    rt = OnnxRuntime(bundled_export, True, None)  # the graphs the page runs
    for n in names:
        x = np.asarray(got[n][0], np.float32).reshape(want[n].shape)
        assert np.array_equal(x, want[n]), (n, int((x != want[n]).sum()))
        _, _, pooled = rt.encode(want[n][None])
        assert got[n][1] == pytest.approx(float(flat_share(want[n][None])[0]), abs=1e-12), n
        score = float(photo_scores(pooled, policy.data["photo"]["probe"])[0])
        assert got[n][2] == pytest.approx(score, abs=1e-4), n
        (seen,) = look(want[n][None], pooled, spec, policy.data, people=False)
        assert (set(got[n][3]), got[n][4]) == (seen.colours, seen.photo), n


@browser
def test_page_finds_the_people_python_finds(page: tuple) -> None:
    """The page's square pixels, Pillow's bilinear resize and both people detectors (people.js) against
    truth.pixels, Pillow and people.py on the same images: the same pixels, the same faces and persons (scores to
    1e-4), the caption Python gives two people side by side, and the cameraman (grey, read as a drawing: people.py's
    grey rule) captioned as Python captions him."""
    import skimage.data as sd

    from captioner.api import Captioner
    from captioner.sights import people

    driver, base, web = page
    names = _test_images(web / "t")
    half = open_image(EXAMPLES[0]).crop((0, 0, 256, 512)).resize((112, 224))  # the astronaut's left half
    two = Image.new("RGB", (224, 224))
    two.paste(half, (0, 0))
    two.paste(half, (112, 0))
    two.save(web / "t" / "two.png")
    names.append("two.png")
    shutil.copy(Path(sd.__file__).parent / "camera.png", web / "t" / "camera.png")
    names.append("camera.png")
    spec = EncoderSpec.from_json(json.loads((web / "encoder.json").read_text()))
    driver.get(base)
    got = _run(
        driver,
        """const model = await captioner.load(), out = {};
        for (const n of args[0]) {
          const px = await captioner.pixels(await (await fetch('t/' + n)).blob());
          const sq = captioner.squarePixels(captioner.preprocess(px.data, px.width, px.height, model.spec), model.spec);
          const small = captioner.bilinear(sq, 192, 192), large = captioner.bilinear(sq, 416, 416);
          const faces = await captionerPeople.faces(model.people, sq, captioner.bilinear, 0.3);
          const persons = await captionerPeople.persons(model.people, sq, captioner.bilinear, 0.3);
          out[n] = [Array.from(sq.d), Array.from(small.d), Array.from(large.d), faces.map((d) => d[0]),
                    persons.map((d) => d[0])];
        }
        const r = await captioner.captionBlob(model, await (await fetch('t/two.png')).blob());
        out['two.png'].push([r.caption, r.photo, r.people]);
        const g = await captioner.captionBlob(model, await (await fetch('t/camera.png')).blob());
        out['camera.png'].push([g.caption, g.photo, g.people]);
        return out;""",
        names,
    )
    for n in names:
        rgb = pixels(preprocess(open_image(web / "t" / n), spec)[None], spec)[0]
        assert np.array_equal(np.asarray(got[n][0], np.uint8).reshape(rgb.shape), rgb), n
        for size, resized in ((192, got[n][1]), (416, got[n][2])):
            want = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
            assert np.array_equal(np.asarray(resized, np.uint8).reshape(want.shape), want), (n, size)
        assert got[n][3] == pytest.approx(people.faces(rgb, 0.3), abs=1e-4), n
        assert got[n][4] == pytest.approx(people.persons(rgb, 0.3), abs=1e-4), n
    two_py = Captioner.load().caption(open_image(web / "t" / "two.png"))  # (read as a drawing: test_truth's note)
    assert len(got["two.png"][3]) >= 2 and got["two.png"][5] == [two_py.caption, two_py.photo, two_py.people]
    want = Captioner.load().caption(open_image(web / "t" / "camera.png"))
    assert got["camera.png"][5] == [want.caption, want.photo, want.people] == ["a person", True, 1]


@browser
def test_page_beam_search_equals_python(page: tuple, bundled_export: Path) -> None:
    driver, base, web = page
    # The search itself, on the fp32 graphs (int8 kernels round differently in each runtime, about 0.1% of a score):
    # the page is pointed at them for this test.
    rt = OnnxRuntime(bundled_export, False, None)
    compact = (web / "page.json").read_text()
    for g in ("encoder", "init", "decoder"):
        shutil.copyfile(bundled_export / f"{g}.onnx", web / f"{g}.onnx")
    (web / "page.json").write_text(json.dumps({"graphs": {g: f"{g}.onnx" for g in ("encoder", "init", "decoder")}}))
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(6, 2280)).astype(np.float32)
    feats[:, 1280:] *= 4  # logits with a clear top class, so the constrained search has a word to place
    (web / "feats.bin").write_bytes(feats.tobytes())
    try:
        driver.get(base)
        got = _run(
            driver,
            """const m = await captioner.load(), f = new Float32Array(await (await fetch('feats.bin')).arrayBuffer());
            const out = [];
            for (let i = 0; i < 6; i++) {
              const x = new ort.Tensor('float32', f.slice(i * 2280, (i + 1) * 2280), [1, 2280]);
              const st = new captioner.Stepper(m, x);
              const must = Number((await st.start(1)).copy_w.data[0]);
              const row = {must};
              for (const [len, lp] of [[m.manifest.max_len, 0], [m.manifest.max_len, 1], [3, 0]])
                row[`${len}/${lp}`] = (await captioner.beamSearch(st, 3, len, 3, lp)).map((c) => [c.tokens, c.logprob]);
              for (const len of [m.manifest.max_len, 2]) {
                const c = await captioner.constrainedBeamSearch(st, [must], 3, len);
                row[`must/${len}`] = c && [c.tokens, c.logprob];
              }
              out.push(row);
            }
            return out;""",
        )
    finally:  # the compact graphs again, for the other tests
        (web / "page.json").write_text(compact)
        for g in ("encoder", "init", "decoder"):
            (web / f"{g}.onnx").unlink()
    names = list(rt.manifest["state"])
    for i, row in enumerate(got):
        st = OnnxStepper(rt.sessions["init"], rt.sessions["decoder"], names, feats[i : i + 1], False, rt.no_end)
        for length, lp in ((rt.max_len, 0), (rt.max_len, 1), (3, 0)):
            want = beam_search(st, 3, length, length_penalty=lp, n_best=3)[0]
            assert [t for t, _ in row[f"{length}/{lp}"]] == [c.tokens for c in want], (i, length, lp)
            assert [s for _, s in row[f"{length}/{lp}"]] == pytest.approx([c.logprob for c in want], abs=1e-3)
        for length in (rt.max_len, 2):
            c = constrained_beam_search(st, 0, {row["must"]}, 3, length)
            assert row[f"must/{length}"] == (None if c is None else [c.tokens, pytest.approx(c.logprob, abs=1e-3)])


def test_the_page_carries_the_compact_graphs(page: tuple, bundled_export: Path) -> None:
    """An export with compact graphs (`--int8`) puts those in the page, never the fp32 ones; page.json names them."""
    _, _, web = page
    compact = json.loads((bundled_export / "manifest.json").read_text())["int8"]
    assert json.loads((web / "page.json").read_text()) == {"graphs": compact}
    assert all((web / f).is_file() for f in compact.values())
    assert not any((web / f"{g}.onnx").exists() for g in ("encoder", "init", "decoder"))


@browser
def test_the_page_downloads_at_most_25_mb_gzipped(bundled_export: Path, tmp_path: Path) -> None:
    """The issue's goal for the page: what a browser downloads from `serve --page` (each file's .gz) is at most
    25 MB; every .gz holds its file's bytes."""
    import gzip

    web = tmp_path / "web"
    sizes = write_page(bundled_export, web, ORT_WEB)
    for name in sizes:
        if name.endswith(".gz"):
            assert gzip.decompress((web / name).read_bytes()) == (web / name[:-3]).read_bytes()
    assert download_bytes(sizes) <= 25e6, download_bytes(sizes)


@browser
def test_captioner_serve_sends_the_page_cross_origin_isolated_and_it_captions_alike(page: tuple, capsys) -> None:
    """`serve --page` sends the isolation headers, so the page runs onnxruntime-web's threads; its captions stay
    `captioner caption`'s. A plain static server (the other tests) is not isolated and runs one thread."""
    import httpx

    from .test_serve import _server

    driver, base, web = page
    driver.get(base)
    assert driver.execute_script("return self.crossOriginIsolated") is False
    with _server(default_model_path(), "--page", str(web)) as port:
        r = httpx.get(f"http://127.0.0.1:{port}/page/")
        assert r.status_code == 200 and r.headers["cross-origin-embedder-policy"] == "require-corp"
        assert r.headers["cross-origin-opener-policy"] == "same-origin"
        wasm = f"http://127.0.0.1:{port}/page/ort/ort-wasm-simd-threaded.wasm"
        zipped = httpx.get(wasm, headers={"Accept-Encoding": "gzip"})  # httpx decodes it
        assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["content-type"] == "application/wasm"
        assert int(zipped.headers["content-length"]) == (web / "ort" / "ort-wasm-simd-threaded.wasm.gz").stat().st_size
        assert zipped.content == (web / "ort" / "ort-wasm-simd-threaded.wasm").read_bytes()
        plain = httpx.get(wasm, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == zipped.content
        driver.get(f"http://127.0.0.1:{port}/page/")
        assert driver.execute_script("return self.crossOriginIsolated") is True
        got = _upload(driver, EXAMPLES)
        threads = driver.execute_script("return [ort.env.wasm.numThreads, navigator.hardwareConcurrency]")
        assert threads[0] == threads[1] > 1  # a thread per core
    assert main(["caption", *map(str, EXAMPLES)]) == 0
    want = {Path(k).name: v for k, v in (line.split("\t") for line in capsys.readouterr().out.splitlines())}
    assert got == want


def _tgz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_write_page_refuses_the_wrong_package_or_encoder(bundled_export: Path, tmp_path: Path) -> None:
    other = _tgz(tmp_path / "x.tgz", {"package.json": b'{"name": "left-pad", "license": "MIT"}'})
    with pytest.raises(CaptionerError, match=r"x.tgz: package 'left-pad' \(MIT\), not onnxruntime-web"):
        write_page(bundled_export, tmp_path / "web", other)
    meta = b'{"name": "onnxruntime-web", "license": "MIT", "version": "9.9"}'
    partial = _tgz(tmp_path / "p.tgz", {"package.json": meta, "dist/ort.wasm.min.js": b""})
    with pytest.raises(CaptionerError, match=r"onnxruntime-web 9.9 lacks dist/ort-wasm-simd-threaded.mjs"):
        write_page(bundled_export, tmp_path / "web", partial)
    with pytest.raises(CaptionerError, match=r"nothing.tgz: onnxruntime-web not found"):
        write_page(bundled_export, tmp_path / "web", tmp_path / "nothing.tgz")
    seminar = tmp_path / "seminar"
    shutil.copytree(bundled_export, seminar)
    spec = json.loads((seminar / "encoder.json").read_text())
    (seminar / "encoder.json").write_text(json.dumps({**spec, "resize": "seminar", "channels": "BGR"}))
    with pytest.raises(CaptionerError, match=r"--web: the page preprocesses as Pillow's .* uses 'seminar' \(BGR\)"):
        write_page(seminar, tmp_path / "web", other)
    assert not (tmp_path / "web").exists()  # nothing half-written
    assert main(["export", str(default_model_path()), "--out", str(tmp_path / "o"), "--web", "w"]) == 2
