"""Caption metrics through pycocoevalcap (the reference implementation), and health statistics."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import math
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from captioner.text.endings import FUNCTION_WORDS
from captioner.text.vocab import tokenize

log = logging.getLogger(__name__)
SPICE_WHY = "SPICE downloads Stanford CoreNLP on first use, which cannot happen offline"


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


def java_available() -> bool:
    """pycocoevalcap's PTB tokenizer and METEOR run on Java."""
    return shutil.which("java") is not None


@contextlib.contextmanager
def _child_stderr_to_log(what: str) -> Iterator[None]:
    """What child processes (Java) write to stderr goes to the debug log, not before the user's table."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace").strip()
            if text:
                log.debug("%s said: %s", what, text)


def ptb_tokenize(texts: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """pycocoevalcap's Stanford PTB tokenization (Java), or this package's compatible tokenizer without Java."""
    if java_available():
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        with _child_stderr_to_log("PTBTokenizer"):
            return PTBTokenizer().tokenize({k: [{"caption": t} for t in v] for k, v in texts.items()})
    return {k: [_tok(t) for t in v] for k, v in texts.items()}


def coco_metrics(
    refs: Mapping[str, Sequence[str]], hyps: Mapping[str, str], meteor: bool = True, lang: str = "en"
) -> dict[str, Any]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr-D as pycocoevalcap computes them, on PTB-tokenized text; text in
    another language than English is tokenized by text.tokenize (Unicode words, no English rules to speak of)
    and has no METEOR (pycocoevalcap runs it with English paraphrase tables).

    Metrics that cannot run are listed under 'unavailable' with the reason; the others still run."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    keys = sorted(k for k in hyps if k in refs)
    english = lang in ("en", "und") or lang.startswith("en-")
    tok = ptb_tokenize if english else (lambda d: {k: [_tok(t) for t in v] for k, v in d.items()})
    gts = tok({k: refs[k] for k in keys})
    res = {k: [v[0] or "#"] for k, v in tok({k: [hyps[k]] for k in keys}).items()}
    out: dict[str, Any] = {
        "images": len(keys),
        "tokenizer": ("ptb-java" if java_available() else "captioner-ptb") if english else "captioner-unicode",
        **({} if english else {"lang": lang}),
    }
    unavailable = {"SPICE": SPICE_WHY}
    if not english:
        meteor, unavailable["METEOR"] = False, "English only (pycocoevalcap's METEOR runs with -l en)"
    if not keys:
        return {**out, "unavailable": unavailable}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"BLEU-{n + 1}": float(b) for n, b in enumerate(bleu)})
    if not meteor:
        unavailable.setdefault("METEOR", "skipped on request")
    elif not java_available():
        unavailable["METEOR"] = "needs Java (`apt-get install default-jre-headless`)"
    else:
        from pycocoevalcap.meteor.meteor import Meteor

        with _child_stderr_to_log("METEOR"):
            scorer = Meteor()  # its JVM stops when the scorer is garbage-collected
            out["METEOR"] = float(scorer.compute_score(gts, res)[0])
            del scorer
    out["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr-D"] = float(Cider().compute_score(gts, res)[0])
    if len(keys) < 50:
        log.warning(
            "CIDEr-D on %d images: its document frequencies come from these references; not a quality figure",
            len(keys),
        )
    return {**out, "unavailable": unavailable}


def metric_versions() -> dict[str, str]:
    """Versions of the packages whose code computed the metrics."""
    return {p: importlib.metadata.version(p) for p in ("pycocoevalcap", "captioner")}


def health(captions: Sequence[str], no_end: Collection[str] = ()) -> dict[str, Any]:
    """Statistics that expose degenerate captioners: repetition, tiny vocabulary, half phrases (captions ending
    on a function word or on a word of no_end, the vocabulary's words that may not end a caption)."""
    toks = [tokenize(c) for c in captions]
    n = max(1, len(captions))
    counts = Counter(" ".join(t) for t in toks)
    top, top_n = counts.most_common(1)[0] if counts else ("", 0)
    out = {
        "captions": len(captions),
        "distinct_pct": 100.0 * len(counts) / n,
        "vocab_used": len({w for t in toks for w in t}),
        "mean_length": sum(map(len, toks)) / n,
        "half_phrase_pct": 100.0 * sum(1 for t in toks if t and (t[-1] in FUNCTION_WORDS or t[-1] in no_end)) / n,
        "most_common": top,
        "most_common_pct": 100.0 * top_n / n,
    }
    if out["most_common_pct"] > 50:
        out["warning"] = f"{out['most_common_pct']:.0f}% of images get the same caption: {top!r}"
        log.warning("MOST IMAGES GET THE SAME CAPTION: %s", out["warning"])
    return out


class CiderD:
    """CIDEr-D (the formula of pycocoevalcap's CiderScorer: n = 1..4, sigma 6, clipped counts, x10) with
    document frequencies from a fixed corpus, so that a single query's candidates can be compared."""

    def __init__(self, corpus: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0) -> None:
        self.n, self.sigma = n, sigma
        self.df: Counter[tuple[str, ...]] = Counter()
        for doc in corpus:
            self.df.update({g for c in doc for g in self._ngrams(tokenize(c))})
        self.log_docs = math.log(max(1, len(corpus)))

    def _ngrams(self, toks: list[str]) -> Counter[tuple[str, ...]]:
        return Counter(tuple(toks[i : i + k]) for k in range(1, self.n + 1) for i in range(len(toks) - k + 1))

    def _vec(self, text: str) -> tuple[list[dict], list[float], int]:
        toks = tokenize(text)
        vec: list[dict] = [{} for _ in range(self.n)]
        for g, tf in self._ngrams(toks).items():
            vec[len(g) - 1][g] = tf * (self.log_docs - math.log(max(1.0, self.df[g])))
        return vec, [math.sqrt(sum(v * v for v in d.values())) for d in vec], len(toks)

    def score(self, hyp: str, refs: Sequence[str]) -> float:
        """CIDEr-D of one hypothesis against its references."""
        if not refs:
            return 0.0
        hv, hn, hl = self._vec(hyp)
        total = 0.0
        for ref in refs:
            rv, rn, rl = self._vec(ref)
            penalty = math.exp(-((hl - rl) ** 2) / (2 * self.sigma**2))
            for k in range(self.n):
                val = sum(min(w, rv[k].get(g, 0.0)) * rv[k].get(g, 0.0) for g, w in hv[k].items())
                if hn[k] and rn[k]:
                    val /= hn[k] * rn[k]
                total += val * penalty / self.n
        return 10.0 * total / len(refs)
