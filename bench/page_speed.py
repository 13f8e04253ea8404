"""Where a caption's time goes in the browser page: headless Chromium, onnxruntime-web, served plain (one thread)
and cross-origin isolated as `captioner serve --page` serves it (a thread per core).

    python bench/page_speed.py [--checkpoint DIR] [--ort-web .cache/onnxruntime-web-1.31.1.tgz]

Exports the checkpoint (default: the bundled model) with its compact graphs (`--int8`, which the page carries),
prints the page's download size (gzipped, as `captioner serve --page` sends it) and plain size, serves it
(plain, without gzip), and for each
example image (examples/images) prints the mean of 3 runs, in ms, of: the whole caption with the people
detectors (captionTensor), without them (people false, the page's "look for people" box unticked), the
photo test and detectors alone (look: grey drawings get NanoDet, other drawings none) and the encoder alone;
the ratio of the first two is what the detectors cost in the page. Needs Debian chromium and chromium-driver,
as tests/test_webpage.py."""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import tempfile
import threading
from pathlib import Path

from captioner.api import default_model_path
from captioner.runtime.export import export
from captioner.runtime.page import download_bytes, write_page
from captioner.serve.app import ISOLATION

ROOT = Path(__file__).parents[1]
TIMES = """const done = arguments[arguments.length - 1], names = arguments[0];
(async () => {
  const m = await captioner.load(), out = {};
  const mean = async (fn) => {
    await fn();
    const t = performance.now();
    for (let i = 0; i < 3; i++) await fn();
    return (performance.now() - t) / 3;
  };
  for (const n of names) {
    const px = await captioner.pixels(await (await fetch(n)).blob());
    const x = captioner.preprocess(px.data, px.width, px.height, m.spec), { pooled } = await captioner.encode(m, x);
    out[n] = [await mean(() => captioner.captionTensor(m, x)),
              await mean(() => captioner.captionTensor(m, x, 3, 3, null, false)),
              await mean(() => captioner.look(m, x, pooled)), await mean(() => captioner.encode(m, x))];
  }
  return out;
})().then(done, (e) => done(String(e.stack || e)));"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _Isolated(_Quiet):
    def end_headers(self) -> None:
        for k, v in ISOLATION.items():
            self.send_header(k, v)
        super().end_headers()


def _times(web: Path, handler: type, names: list[str]) -> dict:
    """TIMES in headless Chromium on the page in web/, served by this handler."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(web)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_script_timeout(600)
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        got = driver.execute_async_script(TIMES, names)
        threads = driver.execute_script("return ort.env.wasm.numThreads")
    finally:
        driver.quit()
        server.shutdown()
    if isinstance(got, str):
        raise SystemExit(got)
    return {"threads": threads, **got}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(default_model_path()))
    ap.add_argument("--ort-web", default=str(ROOT / ".cache" / "onnxruntime-web-1.31.1.tgz"))
    a = ap.parse_args()
    examples = sorted((ROOT / "examples" / "images").glob("*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        exp, web = Path(tmp) / "export", Path(tmp) / "web"
        export(Path(a.checkpoint), exp, int8=True)
        sizes = write_page(exp, web, Path(a.ort_web))
        for p in examples:
            shutil.copy(p, web / p.name)
        names = [p.name for p in examples]
        runs = {name: _times(web, h, names) for name, h in (("plain", _Quiet), ("isolated", _Isolated))}
    plain = {k: v for k, v in sizes.items() if not k.endswith(".gz")}
    big = sorted(plain.items(), key=lambda kv: -kv[1])[:6]
    print(f"page: {download_bytes(sizes) / 1e6:.1f} MB to download gzipped (`captioner serve --page`; goal <= 25), "
          f"{sum(plain.values()) / 1e6:.1f} MB plain in {len(plain)} files; largest plain: "
          + ", ".join(f"{k} {v / 1e6:.1f} ({sizes.get(k + '.gz', v) / 1e6:.1f} gzipped)" for k, v in big))  # fmt: skip
    for server, got in runs.items():
        print(f"{server} server, {got.pop('threads')} thread(s): image: caption with people detectors / without "
              "(ratio); detectors; encoder (ms, mean of 3)")
        for name, (full, blind, ppl, enc) in got.items():
            print(f"  {name}: {full:.0f} / {blind:.0f} ({full / blind:.2f}x); {ppl:.0f}; {enc:.0f}")


if __name__ == "__main__":
    main()
