"""The Python API: Captioner.load(...).caption(images) -> typed results."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from PIL import Image

from captioner.config import MAX_PIXELS
from captioner.decode.rules import Rules, decode
from captioner.decode.search import Caption, Stepper
from captioner.errors import CaptionerError
from captioner.features.images import open_image, to_rgb
from captioner.features.spec import EncoderSpec, preprocess
from captioner.policy import Policy
from captioner.sights.look import look
from captioner.text.vocab import Vocab

DEFAULT_MODEL = "open-clipart"
T, R = TypeVar("T"), TypeVar("R")
ImageLike = str | Path | bytes | Image.Image | np.ndarray


def default_model_path() -> Path:
    """$CAPTIONER_MODEL, else the model bundled in the package (captioner/bundled/open-clipart)."""
    env = os.environ.get("CAPTIONER_MODEL")
    return Path(env) if env else Path(str(files("captioner") / "bundled" / DEFAULT_MODEL))


@dataclass
class Tag:
    """One of the encoder's ImageNet labels, with its probability."""

    label: str
    probability: float


@dataclass
class Result:
    """A caption for one image, with alternatives, tags and (attention models) per-word attention."""

    caption: str
    confidence: float  # mean log-probability per word (#END# included); closer to 0 is surer
    alternatives: list[tuple[str, float]] = field(default_factory=list)  # n-best (caption, confidence)
    tags: list[Tag] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    attention: list[list[float]] = field(default_factory=list)  # per word, weights over the grid cells
    grid_size: int = 0
    source: str = ""
    photo: bool = False  # sights.look: read as a photo (the naming and people rules apply only to photos)
    people: int | None = None  # people found in the photo (0 for a drawing); None: not looked for (people=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "caption": self.caption,
            "confidence": round(self.confidence, 4),
            "alternatives": [{"caption": c, "confidence": round(s, 4)} for c, s in self.alternatives],
            "tags": [{"label": t.label, "probability": round(t.probability, 4)} for t in self.tags],
            "photo": self.photo,
            "people": self.people,
            **(
                {"words": self.words, "attention": self.attention, "grid_size": self.grid_size}
                if self.attention
                else {}
            ),
        }


class Runtime(Protocol):
    """What a Captioner runs on: PyTorch (runtime.torch_runtime.TorchRuntime) or exported ONNX graphs
    (runtime.onnx_runtime.OnnxRuntime).

    info: what the service's /health reports (runtime, model, kind, encoder)."""

    spec: EncoderSpec
    vocab: Vocab
    policy: Policy
    labels: tuple[str, ...]
    max_len: int
    name_threshold: float
    info: dict[str, Any]

    def encode(self, x: np.ndarray) -> tuple[Stepper, np.ndarray, np.ndarray]:
        """A preprocessed batch (B, 3, S, S) -> the decoder over its features, the classifier's logits (B, C) and
        the pooled vectors (B, D) (the photo probe's input)."""
        ...


class Captioner:
    """A trained model and the encoder it was trained on; captions images end to end."""

    def __init__(self, runtime: Runtime, people: bool = True) -> None:
        """people: run the people detectors on photos (decode/rules.py); False leaves them out (caption --no-people)."""
        self.runtime, self.people = runtime, people
        self._rules: dict[str | None, Rules] = {}

    @property
    def languages(self) -> tuple[str, ...]:
        """The caption languages the model knows (BCP-47 tags); () for a model trained without language tags."""
        return tuple(self.runtime.vocab.langs)

    def rules(self, lang: str | None = None) -> Rules:
        """The truth rules for captions in `lang` (None: English, or the model's only language); an unknown
        language is a CaptionerError listing the known ones."""
        if lang not in self._rules:
            rt = self.runtime
            self._rules[lang] = Rules.from_policy(rt.policy, rt.vocab.language(lang), rt.name_threshold)
        return self._rules[lang]

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        device: str = "cpu",
        bf16: bool = False,
        name_threshold: float | None = None,
        ensemble: Sequence[str | Path] = (),
        encoder_weights: str | Path | None = None,
        runtime: str = "auto",
        int8: bool = False,
        people: bool = True,
    ) -> Captioner:
        """Load a checkpoint folder (default: the bundled model) and the encoder named in its spec; or, with
        runtime="onnx", a folder written by `captioner export` (PyTorch is then never imported); runtime="auto"
        runs the checkpoint's own export (CHECKPOINT/onnx: onnx_runtime.own_export; the bundled model has one,
        whose captions equal PyTorch's: tests/test_onnxrt.py) when it has one, on the CPU and with no torch option
        (ensemble, encoder_weights, bf16), else PyTorch.

        bf16 runs the encoder under bfloat16 autocast (faster with AMX; captions can change slightly).
        name_threshold overrides the model's name_threshold (copy models; 0 turns naming off).
        ensemble: more checkpoints with the same vocabulary and encoder; all decode together, averaging
        their next-word distributions (models.ensemble).
        encoder_weights: the weights file of an encoder that does not install from a package (googlenet-bvlc:
        the seminar's blvc_googlenet.pkl).
        int8 (onnx): run the int8 graphs that `export --int8` wrote.
        people: look for people in photos (faces and whole people, people.py) and say "person"/"people" there
        (decode/rules.py)."""
        path = Path(path) if path else default_model_path()
        if not path.exists():
            raise CaptionerError(f"{path}: model not found (pass a checkpoint folder, or set CAPTIONER_MODEL)")
        torch_options = bool(ensemble or encoder_weights or bf16)
        if runtime == "auto":
            from captioner.runtime.onnx_runtime import own_export

            own = None if torch_options or device != "cpu" else own_export(path)
            runtime, path = ("onnx", own) if own else ("torch", path)
        if runtime == "onnx":
            if torch_options or device not in ("cpu", "auto"):
                raise CaptionerError("runtime onnx: ensemble, encoder weights, bf16 and devices are torch options")
            from captioner.runtime.onnx_runtime import OnnxRuntime

            return cls(OnnxRuntime(path, int8, name_threshold), people)
        if runtime != "torch":
            raise CaptionerError(f"unknown runtime {runtime!r}; choose auto, torch or onnx")
        if int8:
            raise CaptionerError("int8 is for runtime onnx (a folder written by `captioner export --int8`)")
        from captioner.runtime.torch_runtime import TorchRuntime

        return cls(TorchRuntime(path, device, bf16, name_threshold, ensemble, encoder_weights), people)

    def preprocess(self, img: Image.Image) -> np.ndarray:
        """An RGB image -> the encoder's input (3, S, S), as its spec says."""
        return preprocess(img, self.runtime.spec)

    def prepare(self, image: ImageLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
        """Any image (path, bytes, PIL image, HxWx3 uint8 array) -> the encoder's input (3, S, S). Files are
        opened with open_image's JPEG draft decoding at the encoder's scale."""
        if isinstance(image, Image.Image):
            img = to_rgb(image)
        elif isinstance(image, np.ndarray):
            arr = image if image.dtype == np.uint8 else np.clip(image, 0, 255).astype(np.uint8)
            img = to_rgb(Image.fromarray(arr))
        else:
            source = image if isinstance(image, bytes) else Path(image)
            img = open_image(source, max_pixels, draft=self.runtime.spec.input_size)
        return self.preprocess(img)

    def caption_tensors(
        self,
        x: np.ndarray,
        beam: int = 3,
        n_best: int = 1,
        temperature: float = 0.0,
        top_k_tags: int = 5,
        seed: int = 0,
        lang: str | None = None,
    ) -> list[Result]:
        """Caption a preprocessed batch (B, 3, S, S) in language `lang` (None: English)."""
        rt = self.runtime
        rules = self.rules(lang)  # an unknown language fails before any work
        st, logits, pooled = rt.encode(x)
        sights = look(x, pooled, rt.spec, rt.policy.data, self.people)
        nbest = decode(st, sights, rules, rt.max_len, max(1, beam), max(1, n_best), temperature, seed)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        out = []
        for i, caps in enumerate(nbest):
            best: Caption = caps[0]
            idx = np.argsort(-probs[i], kind="stable")[:top_k_tags]
            out.append(
                Result(
                    caption=rt.vocab.decode(best.tokens, articles=True),
                    confidence=best.confidence,
                    alternatives=[(rt.vocab.decode(c.tokens, articles=True), c.confidence) for c in caps[1:]],
                    tags=[Tag(rt.labels[int(j)], float(probs[i, j])) for j in idx],
                    words=[rt.vocab.itos[t] for t in best.tokens],
                    attention=best.alphas,
                    grid_size=rt.spec.grid_size if best.alphas else 0,
                    photo=sights[i].photo,
                    people=sights[i].people,
                )
            )
        return out

    def caption(
        self,
        images: ImageLike | Sequence[ImageLike],
        beam: int = 3,
        n_best: int = 1,
        temperature: float = 0.0,
        batch_size: int = 16,
        lang: str | None = None,
    ) -> Result | list[Result]:
        """Caption one image (path, bytes, PIL image or HxWx3 uint8 array) or a list of them, in language `lang`
        (a BCP-47 tag the model knows, Captioner.languages; None: English)."""
        single = not isinstance(images, (list, tuple))
        self.rules(lang)  # an unknown language fails before any image is read
        results: list[Result] = []
        for chunk, xs in prefetched([images] if single else list(images), self.prepare, batch_size):
            got = self.caption_tensors(np.stack(xs), beam, n_best, temperature, lang=lang)
            for im, r in zip(chunk, got, strict=True):
                r.source = str(im) if isinstance(im, (str, Path)) else ""
                results.append(r)
        return results[0] if single else results


def prefetched(items: list[T], load: Callable[[T], R], batch_size: int) -> Iterator[tuple[list[T], list[R]]]:
    """Chunks of batch_size items with their loaded values; the next chunk loads in two threads while the
    caller works on this one (image decoding overlaps the model). A load that raises raises here."""
    chunks = [items[s : s + batch_size] for s in range(0, len(items), batch_size)]
    with ThreadPoolExecutor(2) as pool:
        pending = [pool.submit(load, x) for x in chunks[0]] if chunks else []
        for k, chunk in enumerate(chunks):
            loaded = [f.result() for f in pending]
            pending = [pool.submit(load, x) for x in chunks[k + 1]] if k + 1 < len(chunks) else []
            yield chunk, loaded
