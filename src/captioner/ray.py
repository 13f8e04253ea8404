"""Caption a Ray Dataset with Ray Data's batch inference (`pip install 'captioner[ray]'`).

    import ray
    from captioner.ray import caption_dataset

    ds = ray.data.from_items([{"path": p} for p in paths])        # or read_parquet("paths.parquet")
    # ds = ray.data.read_binary_files("photos/", include_paths=True)  # columns "bytes" and "path"
    caption_dataset(ds, batch_size=16, concurrency=2).write_json("captions/")

Each actor (CaptionBatches) loads the Captioner once and captions every batch Ray Data gives it: a "path"
column names the images to open, or a "bytes" column holds the encoded images themselves (then "path", when
present, only names them). Its rows are batch.row's, one column each; "error" is None where the image was
captioned, and caption and confidence are None where it was not (batch.row leaves out the keys it lacks).
docs/scale.md has the recipe for a folder, a Parquet table and a cluster."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from captioner.api import Captioner
from captioner.batch import Decoding, caption_loaded, load_image, row, run_fields
from captioner.errors import CaptionerError

COLUMNS = ("path", "caption", "confidence", "error", "language", "decoding", "model", "model_sha256")


class CaptionBatches:
    """A Ray Data actor: the Captioner loaded once, then one call per batch (a dict of numpy columns)."""

    def __init__(
        self,
        model: str | Path | None = None,
        runtime: str = "auto",
        lang: str | None = None,
        beam: int = 3,
        people: bool = True,
    ) -> None:
        self.cap = Captioner.load(model, runtime=runtime, people=people)
        self.how = Decoding(beam, 0.0, lang)
        self.fields = run_fields(self.cap, self.how)  # an unknown language fails when the actor starts
        self.pool = ThreadPoolExecutor(2)  # images decode two at a time, as the CLI's prefetch does

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "bytes" in batch:
            images: list[Any] = [bytes(b) for b in batch["bytes"]]
            names = [str(p) for p in batch["path"]] if "path" in batch else [""] * len(images)
        elif "path" in batch:
            images = names = [str(p) for p in batch["path"]]
        else:
            raise CaptionerError(f"captioner.ray: a batch needs a 'path' or 'bytes' column, not {sorted(batch)}")
        loaded = list(self.pool.map(lambda im: load_image(self.cap, im), images))
        got = caption_loaded(self.cap, loaded, self.how)
        rows = [row(n, g, self.fields) for n, g in zip(names, got, strict=True)]
        return {k: np.array([r.get(k) for r in rows], dtype=object) for k in COLUMNS}


def caption_dataset(
    ds: Any,
    model: str | Path | None = None,
    *,
    batch_size: int = 16,
    concurrency: int = 1,
    num_cpus: float = 1.0,
    runtime: str = "auto",
    lang: str | None = None,
    beam: int = 3,
    people: bool = True,
) -> Any:
    """The dataset's images captioned by `concurrency` CaptionBatches actors of num_cpus CPUs each (PyTorch and
    onnxruntime in an actor use that many threads: Ray sets OMP_NUM_THREADS, config.onnx_session_options),
    batch_size images a call; lazy, as every Ray Dataset is."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        raise CaptionerError("captioner.ray needs Ray Data: pip install 'captioner[ray]'") from None
    kwargs = {"model": model, "runtime": runtime, "lang": lang, "beam": beam, "people": people}
    return ds.map_batches(
        CaptionBatches, fn_constructor_kwargs=kwargs, batch_size=batch_size, concurrency=concurrency,
        num_cpus=num_cpus, batch_format="numpy",
    )  # fmt: skip
