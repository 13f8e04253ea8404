"""End-to-end caption speed, from JPEG on disk to caption, in the default runtime (Captioner.load(): the bundled
model's own export in onnxruntime), PyTorch and onnxruntime int8, each against the bare forwards of the networks it
runs, measured in the same run.

    python bench/caption_speed.py [--checkpoint DIR] [--images 200] [--export DIR] [--no-people]

Single image: `captioner caption` on one JPEG at batch 1 (open, decode, resize, encoder, beam-3 search, the
photo test, colours, people and naming), best of 10, over the sum of the bare forwards of every network that
image's caption runs (bare_forwards at batch 1: the encoder, the decoder's steps, BlazeFace, NanoDet).
Folder: `captioner caption` over N JPEGs (640x480) at batch 16, image decoding overlapped with the model, in
images per second over the networks' bare throughput (bare_forwards at batch 16, per image).
Stages: where a single image's time goes (best of 10 each). The share of captions each runtime agrees on with
PyTorch is printed too. Goals on 2 cores (the issue "Real photos"), for the default runtime: one photo, people on,
at most 1.25x the sum of its networks' bare forwards and at most 40 ms; a folder at least 30 img/s and at least
0.8x the networks' bare throughput.
--no-people: as `captioner caption --no-people` (Captioner people=False): no people detectors on photos.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import make_photos

from captioner.api import Captioner, default_model_path
from captioner.cli.caption import caption_paths
from captioner.decode.constrained import require
from captioner.decode.search import beam_search
from captioner.features.images import open_image
from captioner.runtime.export import export
from captioner.sights import people
from captioner.sights.look import look


def best_of(fn: Callable[[], object], reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bare_encoder(cap: Captioner) -> Callable[[np.ndarray], object]:
    rt = cap.runtime
    if rt.info["runtime"] == "torch":
        return lambda x: rt.encoder.forward_features(torch.from_numpy(x))  # type: ignore[attr-defined]
    return lambda x: rt.sessions["encoder"].run(None, {"image": x})  # type: ignore[attr-defined]


def bare_forwards(cap: Captioner, path: Path, batch: int = 1) -> dict[str, float]:
    """Milliseconds per image of the bare forward of every network this image's caption runs, at this batch size
    (the image repeated; best of 5 each): the encoder, the decoder's start and the steps its searches take (beam
    search, then the constrained search where a rule requires words; counted on this image, replayed as plain
    steps at the beam's width), and, when people are looked for, BlazeFace and NanoDet on inputs of their sizes."""
    rt, x1 = cap.runtime, cap.preprocess(open_image(path))[None]
    st, _, pooled = rt.encode(x1)
    calls = [0]
    step = st.step

    def counted(tokens: np.ndarray, state: object) -> tuple[np.ndarray, object]:
        calls[0] += 1
        return step(tokens, state)

    st.step = counted  # type: ignore[method-assign]
    nbest = beam_search(st, 3, rt.max_len)
    musts = cap.rules().musts(look(x1, pooled, rt.spec, rt.policy.data, cap.people), st.offered())
    require(st, nbest, musts, 3, rt.max_len)
    x = np.repeat(x1, batch, 0)
    stb = rt.encode(x)[0]

    def decoder() -> None:
        state, tok = stb.start(np.repeat(np.arange(batch), 3)), np.full(3 * batch, stb.first)
        for _ in range(calls[0]):
            _, state = stb.step(tok, state)

    enc = bare_encoder(cap)
    ms = {"encoder": best_of(lambda: enc(x), 5), f"decoder ({calls[0]} steps)": best_of(decoder, 5)}
    if cap.people:
        face = people.detector_session(people.MODEL)
        person = people.detector_session(people.PERSON_MODEL)
        xf = np.zeros((batch, 3, people.SIZE, people.SIZE), np.float32)
        xp = np.zeros((batch, 3, people.PERSON_SIZE, people.PERSON_SIZE), np.float32)
        ms["BlazeFace"] = best_of(lambda: face.run(None, {"image": xf}), 5)
        ms["NanoDet"] = best_of(lambda: person.run(None, {"image": xp}), 5)
    return {k: v * 1e3 / batch for k, v in ms.items()}


def stages(cap: Captioner, path: Path) -> dict[str, float]:
    """Milliseconds of each step of one image's caption."""
    rt, x = cap.runtime, cap.preprocess(open_image(path))[None]
    st, _, pooled = rt.encode(x)
    nbest = beam_search(st, 3, rt.max_len)
    musts = cap.rules().musts(look(x, pooled, rt.spec, rt.policy.data, cap.people), st.offered())
    ms = {
        "open+decode": best_of(lambda: open_image(path), 10),
        "resize+normalise": best_of(lambda: cap.preprocess(open_image(path)), 10)
        - best_of(lambda: open_image(path), 10),
        "encoder": best_of(lambda: rt.encode(x), 10),
        "beam search": best_of(lambda: beam_search(st, 3, rt.max_len), 10),
        "look (photo test, colours, people)": best_of(lambda: look(x, pooled, rt.spec, rt.policy.data, cap.people), 10),
        "naming": best_of(lambda: require(st, nbest, musts, 3, rt.max_len), 10),
    }
    return {k: v * 1e3 for k, v in ms.items()}


def run(cap: Captioner, paths: list[Path], batch: int) -> tuple[dict[str, float], list[str]]:
    single = best_of(lambda: caption_paths(cap, [str(paths[0])], io.StringIO(), io.StringIO(), batch_size=1), 10)
    out = io.StringIO()
    t = time.perf_counter()
    caption_paths(cap, [str(p) for p in paths], out, io.StringIO(), batch_size=batch)
    folder = (time.perf_counter() - t) / len(paths)
    caps = [line.split("\t", 1)[1] for line in out.getvalue().splitlines()]
    return {"single_ms": single * 1e3, "folder_ips": 1 / folder}, caps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="default: the bundled model")
    ap.add_argument("--export", help="its `captioner export --int8` folder (default: exported to a temporary one)")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--no-people", action="store_true", help="skip the people detectors, as caption --no-people")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_photos(Path(tmp), a.images, captions=False)
        exported = Path(a.export) if a.export else Path(tmp) / "onnx"
        if not a.export:
            export(a.checkpoint or default_model_path(), exported, int8=True)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.images} JPEGs 640x480, beam 3")
        caps, rows = {}, {}
        runtimes = {
            "default": Captioner.load(a.checkpoint, people=not a.no_people),
            "torch": Captioner.load(a.checkpoint, runtime="torch", people=not a.no_people),
            "int8": Captioner.load(exported, runtime="onnx", int8=True, people=not a.no_people),
        }
        for name, cap in runtimes.items():
            r, caps[name] = run(cap, paths, a.batch_size)
            one, many = bare_forwards(cap, paths[0]), bare_forwards(cap, paths[0], a.batch_size)
            r["sum_ms"], r["bare_ips"] = sum(one.values()), 1e3 / sum(many.values())
            rows[name] = r
            print(
                f"{name} ({cap.runtime.info['runtime']}): single image {r['single_ms']:.1f} ms end to end vs the sum "
                f"of its networks' bare forwards {r['sum_ms']:.1f} ms (ratio {r['single_ms'] / r['sum_ms']:.2f}); "
                f"folder {r['folder_ips']:.1f} img/s vs their bare throughput {r['bare_ips']:.1f} img/s at batch "
                f"{a.batch_size} (ratio {r['folder_ips'] / r['bare_ips']:.2f})"
            )
            print("       stages (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in stages(cap, paths[0]).items()))
            print("       bare forwards, batch 1 (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in one.items()))
            print(f"       bare forwards, batch {a.batch_size} (ms an image): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in many.items()))  # fmt: skip
        for name in ("default", "int8"):
            same = np.mean([x == y for x, y in zip(caps["torch"], caps[name], strict=True)])
            print(f"captions identical to torch's: {name} {same:.1%} of {a.images}")
        d, t = rows["default"], rows["torch"]
        print(f"default vs torch: single image {t['single_ms'] / d['single_ms']:.2f}x as fast, folder "
              f"{d['folder_ips'] / t['folder_ips']:.2f}x")  # fmt: skip
        goals = {
            "single <= 1.25x bare sum": d["single_ms"] <= 1.25 * d["sum_ms"],
            "single <= 40 ms": d["single_ms"] <= 40,
            "folder >= 30 img/s": d["folder_ips"] >= 30,
            "folder >= 0.8x bare throughput": d["folder_ips"] >= 0.8 * d["bare_ips"],
        }
        print("goals (default runtime): " + ", ".join(f"{k}: {'met' if v else 'not met'}" for k, v in goals.items()))


if __name__ == "__main__":
    main()
