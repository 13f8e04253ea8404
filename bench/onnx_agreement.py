"""Do the exported graphs caption as PyTorch does? Captions from onnxruntime fp32 and int8 against PyTorch's,
end to end from the image files, on the open corpus's test split and the project's photo sets, with each
runtime's test CIDEr-D, and the export's file sizes.

    python bench/onnx_agreement.py --data runs/open [--checkpoint DIR] [--export DIR] [--limit N]

Photo sets: scikit-image's photos and the Tux Paint photo cut-outs of val/test (bench/naming.py), and 96
crops of scikit-image photos as 640x480 JPEGs (bench/photos.py).
Goals: fp32 identical for >= 99% of each set; int8 >= 95% identical, at most 1/3 of the fp32 size, CIDEr-D
within 2% of PyTorch's.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import make_photos, photo_set

from captioner.api import Captioner, default_model_path
from captioner.data.manifest import dataset_root, read_manifest
from captioner.runtime.export import export
from captioner.text.metrics import bleu_cider


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the open corpus (captioner data open-clipart)")
    ap.add_argument("--checkpoint", default=str(default_model_path()))
    ap.add_argument("--export", help="an export of the checkpoint with --int8 (default: exported here)")
    ap.add_argument("--limit", type=int, help="at most this many test images")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exported = Path(a.export) if a.export else Path(tmp) / "onnx"
        if not a.export:
            export(a.checkpoint, exported, int8=True)
        root = dataset_root(a.data)
        test = [it for it in read_manifest(a.data) if it.split == "test"][: a.limit]
        sets = {
            f"open corpus test ({len(test)})": [root / it.image for it in test],
            "photos: skimage + Tux Paint": [img for img, _, _ in photo_set(Path(a.data))],
            "photos: 96 JPEG crops": make_photos(Path(tmp), 96, captions=False),
        }
        runtimes = {
            "torch": Captioner.load(a.checkpoint),
            "onnx fp32": Captioner.load(exported, runtime="onnx"),
            "onnx int8": Captioner.load(exported, runtime="onnx", int8=True),
        }
        caps = {
            r: {s: [x.caption for x in cap.caption(imgs)] for s, imgs in sets.items()} for r, cap in runtimes.items()
        }
        refs = {str(i): it.captions for i, it in enumerate(test)}
        first = next(iter(sets))
        print(f"{'runtime':10s} " + " ".join(f"{s:>30s}" for s in sets) + f" {'test CIDEr-D':>13s}")
        for r in runtimes:
            same = [np.mean([x == y for x, y in zip(caps[r][s], caps["torch"][s], strict=True)]) for s in sets]
            cider = bleu_cider(refs, {str(i): c for i, c in enumerate(caps[r][first])})["CIDEr-D"]
            print(f"{r:10s} " + " ".join(f"{v:30.1%}" for v in same) + f" {cider:13.4f}")
        m = runtimes["onnx fp32"].runtime.manifest  # type: ignore[attr-defined]
        print(
            "sizes (MiB): " + ", ".join(f"{f} {v['bytes'] / 2**20:.1f}" for f, v in m["files"].items() if "onnx" in f)
        )
        fp32 = sum(m["files"][f"{g}.onnx"]["bytes"] for g in m["int8"])
        small = sum(m["files"][f]["bytes"] for f in m["int8"].values())
        mib = f"{small / 2**20:.1f} of {fp32 / 2**20:.1f} MiB"
        print(f"the --int8 graphs are {small / fp32:.2f} of the fp32 graphs ({mib})")
        print("goals: fp32 >= 99% identical on each set; int8 >= 95%, <= 1/3 of the size, CIDEr-D within 2%")


if __name__ == "__main__":
    main()
