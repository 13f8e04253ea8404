"""Caption metrics through pycocoevalcap (the reference implementation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .text import tokenize


def _tok(text: str) -> str:
    return " ".join(tokenize(text))


def bleu_cider(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, str]) -> dict[str, float]:
    """BLEU-1..4 and CIDEr-D of hyps against refs, on this package's PTB-compatible tokens (no Java)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    keys = [k for k in hyps if k in refs]
    if not keys:
        return {"BLEU-1": 0.0, "BLEU-2": 0.0, "BLEU-3": 0.0, "BLEU-4": 0.0, "CIDEr-D": 0.0}
    gts = {k: [_tok(r) for r in refs[k]] for k in keys}
    res = {k: [_tok(hyps[k]) or "#"] for k in keys}  # pycocoevalcap rejects empty hypotheses
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {**{f"BLEU-{n + 1}": float(b) for n, b in enumerate(bleu)}, "CIDEr-D": float(cider)}
