"""The Python API: Captioner.load(...).caption(images) -> typed results."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image

from .checkpoint import Checkpoint, load_ensemble
from .decoding import Caption, beam_search, name_confident_class, sample
from .encoders import Encoder, encoder_for
from .errors import CaptionerError
from .images import open_image, photo_like, to_rgb
from .models import feature_kind

DEFAULT_MODEL = "open-clipart"
T, R = TypeVar("T"), TypeVar("R")
ImageLike = str | Path | bytes | Image.Image | np.ndarray


def default_model_path() -> Path:
    """$CAPTIONER_MODEL, else the model bundled in the repository's models/ folder."""
    env = os.environ.get("CAPTIONER_MODEL")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models" / DEFAULT_MODEL


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

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "caption": self.caption,
            "confidence": round(self.confidence, 4),
            "alternatives": [{"caption": c, "confidence": round(s, 4)} for c, s in self.alternatives],
            "tags": [{"label": t.label, "probability": round(t.probability, 4)} for t in self.tags],
            **(
                {"words": self.words, "attention": self.attention, "grid_size": self.grid_size}
                if self.attention
                else {}
            ),
        }


class Captioner:
    """A checkpoint plus the encoder it was trained on; captions images end to end."""

    def __init__(self, checkpoint: Checkpoint, encoder: Encoder, device: torch.device) -> None:
        self.ck, self.encoder, self.device = checkpoint, encoder.to(device), device
        self.kind = feature_kind(checkpoint.config.model)

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        device: str = "cpu",
        bf16: bool = False,
        name_threshold: float | None = None,
        ensemble: Sequence[str | Path] = (),
        encoder_weights: str | Path | None = None,
    ) -> Captioner:
        """Load a checkpoint folder (default: the bundled model) and the encoder named in its spec.

        bf16 runs the encoder under bfloat16 autocast (faster with AMX; captions can change slightly).
        name_threshold overrides the checkpoint's model.name_threshold (copy models; 0 turns naming off).
        ensemble: more checkpoints with the same vocabulary and encoder; all decode together, averaging
        their next-word distributions (models.ensemble).
        encoder_weights: the weights file of an encoder that does not install from a package (googlenet-bvlc:
        the seminar's blvc_googlenet.pkl)."""
        path = Path(path) if path else default_model_path()
        if not path.exists():
            raise CaptionerError(f"{path}: model not found (pass a checkpoint folder, or set CAPTIONER_MODEL)")
        dev = torch.device(
            "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
        )
        ck = load_ensemble([path, *ensemble], dev).with_name_threshold(name_threshold)
        encoder = encoder_for(ck.spec, encoder_weights, f"checkpoint {path}")
        encoder.bf16 = bf16
        return cls(ck, encoder, dev)

    def _tensor(self, image: ImageLike) -> torch.Tensor:
        if isinstance(image, Image.Image):
            img = to_rgb(image)
        elif isinstance(image, np.ndarray):
            arr = image if image.dtype == np.uint8 else np.clip(image, 0, 255).astype(np.uint8)
            img = to_rgb(Image.fromarray(arr))
        else:
            img = open_image(image if isinstance(image, bytes) else Path(image))
        return self.encoder.preprocess(img)

    @torch.inference_mode()
    def caption_tensors(
        self,
        x: torch.Tensor,
        beam: int = 3,
        n_best: int = 1,
        temperature: float = 0.0,
        top_k_tags: int = 5,
        seed: int = 0,
    ) -> list[Result]:
        """Caption a preprocessed batch (B, 3, S, S)."""
        feats = self.encoder.forward_features(x.to(self.device))
        inputs = torch.cat([getattr(feats, k).float() for k in self.kind.split("+")], dim=-1)  # e.g. pooled+logits
        max_len = self.ck.config.train.max_len
        if temperature > 0:
            nbest = [[c] for c in sample(self.ck.model, inputs, max_len, temperature, seed=seed)]
        else:
            nbest = beam_search(self.ck.model, inputs, max(1, beam), max_len, n_best=max(1, n_best))
            thr = self.ck.config.model.name_threshold
            nbest = name_confident_class(
                self.ck.model, inputs, nbest, thr, max(1, beam), max_len, lambda i: bool(photo_like(x[i : i + 1])[0])
            )
        probs = feats.logits.float().softmax(-1).cpu()
        names = self.encoder.labels
        out = []
        for i, caps in enumerate(nbest):
            best: Caption = caps[0]
            p, idx = probs[i].topk(top_k_tags)
            out.append(
                Result(
                    caption=self.ck.vocab.decode(best.tokens, articles=True),
                    confidence=best.confidence,
                    alternatives=[(self.ck.vocab.decode(c.tokens, articles=True), c.confidence) for c in caps[1:]],
                    tags=[Tag(names[int(j)], float(q)) for q, j in zip(p, idx, strict=True)],
                    words=[self.ck.vocab.itos[t] for t in best.tokens],
                    attention=best.alphas,
                    grid_size=self.ck.spec.grid_size if best.alphas else 0,
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
    ) -> Result | list[Result]:
        """Caption one image (path, bytes, PIL image or HxWx3 uint8 array) or a list of them."""
        single = not isinstance(images, (list, tuple))
        results: list[Result] = []
        for chunk, xs in prefetched([images] if single else list(images), self._tensor, batch_size):
            for im, r in zip(chunk, self.caption_tensors(torch.stack(xs), beam, n_best, temperature), strict=True):
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
