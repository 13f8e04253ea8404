"""End-to-end caption speed, from JPEG on disk to caption, for the PyTorch and onnxruntime paths, each against
its own runtime's bare encoder forward measured in the same run.

    python bench/caption_speed.py [--checkpoint DIR] [--images 200] [--export DIR] [--no-people]

Single image: `captioner caption` on one JPEG at batch 1 (open, decode, resize, encoder, beam-3 search, the
photo test, colours, people and naming), best of 10, over the encoder's forward at batch 1.
Folder: `captioner caption` over N JPEGs (640x480) at batch 16, image decoding overlapped with the model, in
images per second over the encoder's throughput at batch 16.
Stages: where a single image's time goes (best of 10 each). Runtimes: PyTorch, onnxruntime fp32 and int8;
onnxruntime against PyTorch is printed too, and the share of captions each agrees on with PyTorch.
Bare forwards: every network one image's caption runs (bare_forwards), each alone, and the single image over their
sum. Goals on 2 cores (the issue "Real photos"): one photo, people on, at most 1.25x the sum of its networks' bare
forwards and at most 40 ms; a folder at least 30 img/s and at least 0.8x the encoder's throughput.
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
from captioner.decode.search import beam_search, require
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


def bare_forwards(cap: Captioner, path: Path) -> dict[str, float]:
    """Milliseconds of the bare forward of every network one image's caption runs (best of 10 each): the encoder,
    the decoder's start and the steps its searches take (beam search, then the constrained search where a rule
    requires words; counted on this image, replayed as plain steps at the beam's width), and, when people are
    looked for, BlazeFace and NanoDet on inputs of their sizes."""
    rt, x = cap.runtime, cap.preprocess(open_image(path))[None]
    st, _, pooled = rt.encode(x)
    calls = [0]
    step = st.step

    def counted(tokens: np.ndarray, state: object) -> tuple[np.ndarray, object]:
        calls[0] += 1
        return step(tokens, state)

    st.step = counted  # type: ignore[method-assign]
    nbest = beam_search(st, 3, rt.max_len)
    musts = cap.rules().musts(look(x, pooled, rt.spec, rt.policy.data, cap.people), st.offered())
    require(st, nbest, musts, 3, rt.max_len)
    st.step = step  # type: ignore[method-assign]

    def decoder() -> None:
        state, tok = st.start(np.zeros(3, np.int64)), np.full(3, st.first)
        for _ in range(calls[0]):
            _, state = st.step(tok, state)

    enc = bare_encoder(cap)
    ms = {"encoder": best_of(lambda: enc(x), 10), f"decoder ({calls[0]} steps)": best_of(decoder, 10)}
    if cap.people:
        face = people.detector_session(people.MODEL, people.FACE_THREADS)
        person = people.detector_session(people.PERSON_MODEL, people.PERSON_THREADS)
        xf = np.zeros((1, 3, people.SIZE, people.SIZE), np.float32)
        xp = np.zeros((1, 3, people.PERSON_SIZE, people.PERSON_SIZE), np.float32)
        ms["BlazeFace"] = best_of(lambda: face.run(None, {"image": xf}), 10)
        ms["NanoDet"] = best_of(lambda: person.run(None, {"image": xp}), 10)
    return {k: v * 1e3 for k, v in ms.items()}


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
    enc = bare_encoder(cap)
    x1 = cap.preprocess(open_image(paths[0]))[None]
    xb = np.stack([cap.preprocess(open_image(p)) for p in paths[:batch]])
    enc1 = best_of(lambda: enc(x1), 10)
    encb = best_of(lambda: enc(xb), 3) / batch
    single = best_of(lambda: caption_paths(cap, [str(paths[0])], io.StringIO(), io.StringIO(), batch_size=1), 10)
    out = io.StringIO()
    t = time.perf_counter()
    caption_paths(cap, [str(p) for p in paths], out, io.StringIO(), batch_size=batch)
    folder = (time.perf_counter() - t) / len(paths)
    caps = [line.split("\t", 1)[1] for line in out.getvalue().splitlines()]
    return {"enc1_ms": enc1 * 1e3, "single_ms": single * 1e3, "encb_ips": 1 / encb, "folder_ips": 1 / folder}, caps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="default: the bundled model")
    ap.add_argument(
        "--export", help="its `captioner export --int8` folder (default: exported here, to a temporary one)"
    )
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
            "torch": Captioner.load(a.checkpoint, people=not a.no_people),
            "onnx": Captioner.load(exported, runtime="onnx", people=not a.no_people),
            "int8": Captioner.load(exported, runtime="onnx", int8=True, people=not a.no_people),
        }
        for name, cap in runtimes.items():
            r, caps[name] = run(cap, paths, a.batch_size)
            rows[name] = r
            print(
                f"{name:5s}: single image {r['single_ms']:.1f} ms end to end vs its encoder {r['enc1_ms']:.1f} ms "
                f"(ratio {r['single_ms'] / r['enc1_ms']:.2f}); folder {r['folder_ips']:.1f} img/s vs its encoder "
                f"{r['encb_ips']:.1f} img/s (ratio {r['folder_ips'] / r['encb_ips']:.2f})"
            )
            print("       stages (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in stages(cap, paths[0]).items()))
            bare = bare_forwards(cap, paths[0])
            total = sum(bare.values())
            print(
                "       bare forwards (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in bare.items())
                + f"; sum {total:.1f}; single image / sum {r['single_ms'] / total:.2f}"
            )  # fmt: skip
        t, o = rows["torch"], rows["onnx"]
        print(
            f"onnx vs torch: single image {t['single_ms'] / o['single_ms']:.2f}x as fast, folder "
            f"{o['folder_ips'] / t['folder_ips']:.2f}x, bare encoder {t['enc1_ms'] / o['enc1_ms']:.2f}x (batch 1), "
            f"{o['encb_ips'] / t['encb_ips']:.2f}x (batch {a.batch_size})"
        )
        for name in ("onnx", "int8"):
            same = np.mean([x == y for x, y in zip(caps["torch"], caps[name], strict=True)])
            print(f"captions identical to torch's: {name} {same:.1%} of {a.images}")
        print(
            "goals: single image <= 1.25x the sum of its networks' bare forwards and <= 40 ms; folder >= 30 img/s "
            "and >= 0.8x the encoder's throughput"
        )


if __name__ == "__main__":
    main()
