"""The HTTP service: answers, limits, errors, concurrent batching, and the page in a real headless Chromium."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from captioner.api import Captioner
from captioner.serve.app import Limits, create_app

from .conftest import COLORS


def _png(color: tuple[int, int, int] = (220, 20, 20), size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", size, (255, 255, 255))
    img.paste(color, (8, 8, 56, 56))
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def cap(tiny_checkpoint: Path) -> Captioner:
    return Captioner.load(tiny_checkpoint)


def test_caption_health_and_page(cap: Captioner) -> None:
    with TestClient(create_app(cap)) as client:
        assert client.get("/health").json()["status"] == "ok"
        assert '<input id="file"' in client.get("/").text
        r = client.post("/caption?beam=3&n_best=2", files={"image": ("red.png", _png(), "image/png")})
        assert r.status_code == 200
        body = r.json()
        assert body["caption"] == "a red square" and body["source"] == "red.png"
        assert len(body["alternatives"]) == 1 and len(body["tags"]) == 5 and body["confidence"] <= 0
        assert "ensemble" not in client.get("/health").json()


def test_health_names_every_model_of_an_ensemble(tiny_checkpoint: Path) -> None:
    pair = Captioner.load(tiny_checkpoint, ensemble=[tiny_checkpoint])
    with TestClient(create_app(pair)) as client:
        assert client.get("/health").json()["ensemble"] == [str(tiny_checkpoint)] * 2
        r = client.post("/caption", files={"image": ("red.png", _png(), "image/png")})
        assert r.json()["caption"] == "a red square"  # identical members caption as one


def test_bad_input_gets_4xx_with_json(cap: Captioner) -> None:
    with TestClient(create_app(cap, Limits(max_bytes=50_000, max_pixels=100_000))) as client:
        cases = [
            (dict(files={"image": ("x.png", b"not an image", "image/png")}), 415, "not an image"),
            (dict(files={"image": ("big.bin", b"\0" * 60_000, "image/png")}), 413, "larger than"),
            (dict(files={"image": ("wide.png", _png(size=(1000, 200)), "image/png")}), 413, "exceeds the limit"),
            (dict(files={"other": ("x.png", _png(), "image/png")}), 422, "field 'image'"),
            (dict(content=b"raw", headers={"content-type": "image/png"}), 415, "multipart"),
            (dict(files={"image": ("t.png", _png()[:100], "image/png")}), 415, "truncated"),
        ]
        for kwargs, status, text in cases:
            r = client.post("/caption", **kwargs)
            assert r.status_code == status and text in r.json()["error"], (status, r.text)
        assert client.post("/caption?beam=99", files={"image": ("a.png", _png(), "image/png")}).status_code == 422
        r = client.post("/caption?lang=xx", files={"image": ("a.png", _png(), "image/png")})
        assert r.status_code == 422 and r.json()["error"] == "language 'xx' is unknown to this model; it knows en"
        assert client.get("/health").json()["languages"] == ["en"]
        r = client.post("/caption?lang=en", files={"image": ("red.png", _png(), "image/png")})
        assert r.json()["caption"] == "a red square"
        assert client.get("/health").status_code == 200  # still up


def test_parallel_requests_are_batched_and_match_single(cap: Captioner, monkeypatch) -> None:
    images = [_png(rgb) for rgb in COLORS.values()] * 4
    sizes: list[int] = []
    model_call = cap.caption_tensors

    def counted(x, *args, **kw):  # type: ignore[no-untyped-def]
        sizes.append(len(x))
        return model_call(x, *args, **kw)

    monkeypatch.setattr(cap, "caption_tensors", counted)
    with TestClient(create_app(cap, Limits(batch_wait_s=0.2))) as client:
        single = [
            client.post("/caption", files={"image": ("a.png", b, "image/png")}).json()["caption"] for b in images[:4]
        ]
        assert sizes == [1, 1, 1, 1]  # one at a time: batches of one
        with ThreadPoolExecutor(8) as pool:
            rs = list(pool.map(lambda b: client.post("/caption", files={"image": ("a.png", b, "image/png")}), images))
    assert sum(sizes[4:]) == len(images) and max(sizes[4:]) > 1, sizes  # parallel requests shared model calls
    assert all(r.status_code == 200 for r in rs)
    assert [r.json()["caption"] for r in rs] == single * 4
    assert single == [f"a {c} square" for c in COLORS]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _server(checkpoint: Path, *extra: str) -> Iterator[int]:
    """`captioner serve` in a subprocess on a free port, ready when /health answers; yields the port."""
    port = _free_port()
    cmd = [sys.executable, "-m", "captioner.cli", "serve", "--checkpoint", str(checkpoint), "--port", str(port), *extra]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield port
        assert server.poll() is None, "the server died"
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.skipif(
    shutil.which("chromium") is None and not os.environ.get("CI"),
    reason="Debian chromium not installed (CI installs it)",
)
def test_page_in_headless_chromium(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (tmp_path / "blue.png").write_bytes(_png(COLORS["blue"]))
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ):
        opts.add_argument(flag)
    with _server(tiny_checkpoint) as port:
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            driver.get(f"http://127.0.0.1:{port}/")
            driver.find_element(By.ID, "file").send_keys(str(tmp_path / "blue.png"))
            WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "caption").get_attribute("data-caption"))
            assert driver.find_element(By.ID, "caption").get_attribute("data-caption") == "a blue square"
            assert len(driver.find_elements(By.CSS_SELECTOR, "#tags li")) == 5
            assert driver.find_element(By.ID, "preview").get_attribute("src").startswith("blob:")
        finally:
            driver.quit()


def test_slow_client_does_not_block_others(tiny_checkpoint: Path) -> None:
    with _server(tiny_checkpoint, "--body-timeout", "3") as port:
        slow = []
        for _ in range(4):  # clients that announce a body and trickle a few bytes of it
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(
                b"POST /caption HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 100000\r\n\r\n--b\r\n"
            )
            slow.append(s)
        t = time.perf_counter()
        r = httpx.post(f"http://127.0.0.1:{port}/caption", files={"image": ("a.png", _png(), "image/png")}, timeout=30)
        assert r.status_code == 200 and r.json()["caption"] == "a red square"
        assert time.perf_counter() - t < 10
        for s in slow:  # after the body timeout each slow client is answered 408
            s.settimeout(15)
            assert s.recv(200).startswith(b"HTTP/1.1 408")
            s.close()
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200


def test_serve_no_people_skips_the_people_detectors() -> None:
    """The bundled model says "a person" for the astronaut from the detectors; `serve --no-people` runs none."""
    astronaut = (Path(__file__).parents[1] / "examples" / "images" / "astronaut.jpg").read_bytes()
    bundled = Path(__file__).parents[1] / "src" / "captioner" / "bundled" / "open-clipart"
    said = []
    for extra in ((), ("--no-people",)):
        with _server(bundled, *extra) as port:
            r = httpx.post(f"http://127.0.0.1:{port}/caption", files={"image": ("a.jpg", astronaut)}, timeout=60)
            assert r.status_code == 200, r.text
            said.append((r.json()["caption"], r.json()["people"]))
    assert said[0] == ("a person", 1) and said[1][0] != "a person" and said[1][1] is None, said
