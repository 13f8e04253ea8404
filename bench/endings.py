"""The ending rule of a checkpoint's vocabulary (endings.py), computed from the training captions of the data it
was trained on; with --write it is stored in the checkpoint's vocab.json. Prints the words, then the test
split's beam-3 captions without and with the rule: the share ending mid-phrase and CIDEr-D.

    python bench/endings.py CHECKPOINT --data runs/open-m2 [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from captioner.data.manifest import read_manifest
from captioner.decode.search import beam_search
from captioner.decode.stepper import TorchStepper
from captioner.features.extract import FeatureStore
from captioner.models import feature_kind
from captioner.text.endings import no_end_words
from captioner.text.metrics import bleu_cider, health
from captioner.train.checkpoint import load_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True, help="the prepared data the checkpoint was trained on")
    ap.add_argument("--write", action="store_true", help="store the words in the checkpoint's vocab.json")
    a = ap.parse_args()
    ck = load_checkpoint(a.checkpoint)
    items = read_manifest(a.data)
    train = [c for it in items if it.split == "train" for c in it.captions]
    words = no_end_words(ck.vocab.itos[4:], train)
    vocab = dataclasses.replace(ck.vocab, no_end=words)
    print(f"{len(words)} of {len(vocab) - 4} words may not end a caption: {', '.join(words[:60])}, ...")
    test = [it for it in items if it.split == "test"]
    store = FeatureStore(Path(a.data) / "features")
    feats = torch.from_numpy(store.get(feature_kind(ck.config.model), [store.row[it.image] for it in test]))
    refs = {str(i): it.captions for i, it in enumerate(test)}
    for name, mask in (("without the rule", None), ("with the rule", vocab.no_end_mask())):
        caps = [b[0] for b in beam_search(TorchStepper(ck.model, feats, mask), 3, ck.config.train.max_len)]
        texts = [vocab.decode(c.tokens, articles=True) for c in caps]
        h = health(texts, words)
        cider = bleu_cider(refs, dict(zip(refs, texts, strict=True)))["CIDEr-D"]
        print(f"{name:17s} test ({len(test)}): {h['half_phrase_pct']:.1f}% end mid-phrase, CIDEr-D {cider:.4f}")
    if a.write:
        vocab.save(Path(a.checkpoint) / "vocab.json")
        print(f"wrote {Path(a.checkpoint) / 'vocab.json'}")


if __name__ == "__main__":
    main()
