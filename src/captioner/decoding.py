"""Decoding written once: greedy, sampling and batched beam search over model.step()."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .models import Decoder
from .text import END_IX, PAD_IX, START_IX, UNK_IX

NEG = -1e9


@dataclass
class Caption:
    """One decoded caption: word indices (no #START#/#END#), its confidence and attention maps."""

    tokens: list[int]
    logprob: float  # sum over the words and #END#
    confidence: float  # length-normalised log-probability: logprob / (words + 1)
    alphas: list[list[float]] = field(default_factory=list)  # per word, attention over the grid


def masked_logprobs(logits: torch.Tensor, block_unk: bool) -> torch.Tensor:
    """Log-probabilities with #PAD#, #START# (and #UNK#) ruled out; out of place, so gradients can flow."""
    ban = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    ban[[PAD_IX, START_IX, UNK_IX] if block_unk else [PAD_IX, START_IX]] = True
    return torch.log_softmax(logits.float().masked_fill(ban, NEG), dim=-1)


def only_end(logp: torch.Tensor) -> torch.Tensor:
    """Log-probabilities where only #END# may follow, keeping its own score (the last allowed step)."""
    forced = torch.full_like(logp, NEG)
    forced[..., END_IX] = logp[..., END_IX]
    return forced


def _select(state: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v.index_select(0, idx) for k, v in state.items()}


def _finish(tokens: list[int], logprob: float, alphas: list[list[float]]) -> Caption:
    words = tokens[: tokens.index(END_IX)] if END_IX in tokens else tokens
    n = len(words) + (1 if END_IX in tokens else 0)
    return Caption(words, logprob, logprob / max(1, n), alphas[: len(words)])


def rollout(
    model: Decoder,
    feats: torch.Tensor,
    max_len: int,
    pick: Callable[[torch.Tensor], torch.Tensor],
    block_unk: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """The one left-to-right decoding loop: each step's word is pick(logp (B, V)) -> (B,), from decoding's masked
    log-probabilities; at step max_len only #END# may follow (forced). Keeps the graph unless called in
    inference mode (SCST trains through it).

    Returns tokens (B, T) with #PAD# after #END#, the log-probability of each step's token (B, T), 0 after
    #END#, and per step the attention (B, cells) for attention models."""
    b = feats.shape[0]
    state = model.init_state(feats)
    tok = torch.full((b,), START_IX, dtype=torch.long, device=feats.device)
    done = torch.zeros(b, dtype=torch.bool, device=feats.device)
    toks, lps, alphas = [], [], []
    for step in range(max_len + 1):
        logits, state = model.step(tok, state)
        logp = masked_logprobs(logits, block_unk)  # (B, V)
        if step == max_len:  # out of room
            logp = only_end(logp)
        nxt = pick(logp.detach())  # (B,)
        lp = logp.gather(1, nxt[:, None])[:, 0]  # (B,)
        lps.append(torch.where(done, torch.zeros_like(lp), lp))
        nxt = torch.where(done, torch.full_like(nxt, PAD_IX), nxt)
        toks.append(nxt)
        if model.attends:
            alphas.append(state["alpha"].float())
        done = done | (nxt == END_IX)
        tok = nxt
        if bool(done.all()):
            break
    return torch.stack(toks, 1), torch.stack(lps, 1), alphas


@torch.inference_mode()
def sample(
    model: Decoder,
    feats: torch.Tensor,
    max_len: int = 20,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    block_unk: bool = True,
) -> list[Caption]:
    """Greedy (temperature 0) or sampled decoding of a batch; feats (B, ...) -> B captions.

    Each image draws from its own generator seeded with `seed`, so an image gets the same sampled caption
    alone or in any batch."""
    sampled = temperature > 0
    gens = [torch.Generator(device=feats.device).manual_seed(seed) for _ in range(feats.shape[0])] if sampled else []

    def pick(logp: torch.Tensor) -> torch.Tensor:
        if not sampled:
            return logp.argmax(-1)
        probs = _filter(logp / temperature, top_k, top_p).softmax(-1)  # (B, V)
        return torch.cat([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, gens, strict=True)])

    toks, lps, alphas = rollout(model, feats, max_len, pick, block_unk)
    total, rows = lps.sum(1).cpu().tolist(), toks.cpu().tolist()
    maps = [a.cpu() for a in alphas]
    return [
        _finish([t for t in row if t != PAD_IX], lp, [a[i].tolist() for a in maps])
        for i, (row, lp) in enumerate(zip(rows, total, strict=True))
    ]


def greedy(model: Decoder, feats: torch.Tensor, max_len: int = 20, block_unk: bool = True) -> list[Caption]:
    """The most likely word at every step."""
    return sample(model, feats, max_len, temperature=0.0, block_unk=block_unk)


def _filter(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Keep the top-k words and the smallest set whose probability reaches top_p."""
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, NEG)
    if top_p < 1.0:
        srt, idx = logits.sort(dim=-1, descending=True)
        cum = srt.softmax(-1).cumsum(-1)
        drop = cum - srt.softmax(-1) >= top_p  # words after the nucleus is full
        logits = logits.masked_fill(drop.scatter(1, idx, drop), NEG)
    return logits


@torch.inference_mode()
def beam_search(
    model: Decoder,
    feats: torch.Tensor,
    beam: int = 3,
    max_len: int = 20,
    length_penalty: float = 0.0,
    n_best: int = 1,
    block_unk: bool = True,
) -> list[list[Caption]]:
    """Batched beam search; returns the n_best captions per image, best first.

    Hypotheses are ranked by logprob / ((5 + n) / 6) ** length_penalty (GNMT), n counting #END#.
    Beams that never emit #END# stop at max_len words.
    """
    b, k = feats.shape[0], beam
    state = _select(model.init_state(feats), torch.arange(b, device=feats.device).repeat_interleave(k))
    tok = torch.full((b * k,), START_IX, dtype=torch.long, device=feats.device)
    score = torch.full((b, k), NEG, device=feats.device)
    score[:, 0] = 0.0  # all beams start identical: keep one alive
    hist = torch.zeros(b, k, 0, dtype=torch.long, device=feats.device)
    alph: list[torch.Tensor] = []
    finished: list[list[tuple[float, list[int], float, list]]] = [[] for _ in range(b)]
    for t in range(max_len + 1):
        logits, state = model.step(tok, state)
        logp = masked_logprobs(logits, block_unk).view(b, k, -1)  # (B, K, V)
        if t == max_len:  # out of room
            logp = only_end(logp)
        cand = (score[..., None] + logp).view(b, -1)  # (B, K*V)
        top, idx = cand.topk(2 * k, dim=1)  # (B, 2K): room for beams that end now
        new_score = torch.full((b, k), NEG, device=feats.device)
        new_src = torch.zeros(b, k, dtype=torch.long, device=feats.device)
        new_word = torch.full((b, k), PAD_IX, dtype=torch.long, device=feats.device)
        for i in range(b):
            ended, live = _walk(top[i].tolist(), idx[i].tolist(), logp.shape[-1], k)
            for sc, s in ended:
                words = hist[i, s].tolist()
                lp = ((5 + len(words) + 1) / 6) ** length_penalty
                att = [a[i * k + s] for a in alph] if alph else []
                finished[i].append((sc / lp, words, sc, att))
            for j, (sc, s, w) in enumerate(live):
                new_score[i, j], new_src[i, j], new_word[i, j] = sc, s, w
        if all(len(f) >= n_best for f in finished) and _no_better(finished, new_score, length_penalty, n_best):
            break
        flat = (new_src + torch.arange(b, device=feats.device)[:, None] * k).view(-1)
        state = _select(state, flat)
        if model.attends:
            alph = [a.index_select(0, flat) for a in alph] + [state["alpha"].float()]
        hist = torch.cat([hist.gather(1, new_src[..., None].expand(-1, -1, hist.shape[2])), new_word[..., None]], 2)
        score, tok = new_score, new_word.view(-1)
    out = []
    for fin in finished:
        fin.sort(key=lambda f: -f[0])
        out.append([_finish(w + [END_IX], raw, [a.tolist() for a in att]) for _, w, raw, att in fin[:n_best]])
    return out


@torch.inference_mode()
def constrained_beam_search(
    model: Decoder, feats: torch.Tensor, must: set[int], beam: int = 3, max_len: int = 20, block_unk: bool = True
) -> Caption | None:
    """The most probable caption of one image (feats (1, D)) that contains one of the words `must`.

    Constrained beam search (Anderson et al. 2017) with one constraint: bank 0 holds hypotheses that have
    not said a `must` word yet and may not end, bank 1 those that have; each keeps `beam` hypotheses.
    Returns None when no hypothesis in bank 1 ends within max_len words."""
    k, dev = max(1, beam), feats.device
    state = _select(model.init_state(feats), torch.zeros(2 * k, dtype=torch.long, device=dev))
    tok = torch.full((2 * k,), START_IX, dtype=torch.long, device=dev)
    score = torch.full((2 * k,), NEG, device=dev)
    score[0] = 0.0  # rows 0..k-1: bank 0; rows k..2k-1: bank 1
    hist: list[list[int]] = [[] for _ in range(2 * k)]
    best: tuple[float, list[int]] | None = None
    is_must: torch.Tensor | None = None
    for t in range(max_len + 1):
        logits, state = model.step(tok, state)
        logp = masked_logprobs(logits, block_unk)  # (2K, V)
        if t == max_len:
            logp = only_end(logp)
        if is_must is None:
            is_must = torch.zeros(logp.shape[-1], dtype=torch.bool, device=dev)
            is_must[sorted(must)] = True
        cand = score[:, None] + logp  # (2K, V)
        stay = cand[:k].masked_fill(is_must, NEG)  # bank 0 -> bank 0: no must word...
        stay[:, END_IX] = NEG  # ...and no ending
        move = torch.cat([cand[:k].masked_fill(~is_must, NEG), cand[k:]])  # -> bank 1: (2K, V), row = source
        rows, words, scores = [], [], []
        for bank, c in ((0, stay), (1, move)):
            top, idx = c.view(-1).topk(min(2 * k, c.numel()))
            ended, live = _walk(top.tolist(), idx.tolist(), c.shape[1], k)  # `move` has one row per source
            for sc, src in ended:  # only bank 1 can end
                if best is None or sc > best[0]:
                    best = (sc, hist[src])
            for j, (sc, src, w) in enumerate(live):
                rows.append((bank, j, src))
                words.append(w)
                scores.append(sc)
        alive = max(scores, default=NEG)
        if not rows or (best is not None and alive <= best[0]):  # log-probs only fall: nothing can beat it
            break
        new_score = torch.full((2 * k,), NEG, device=dev)
        src_ix = torch.zeros(2 * k, dtype=torch.long, device=dev)
        new_tok = torch.full((2 * k,), PAD_IX, dtype=torch.long, device=dev)
        new_hist: list[list[int]] = [[] for _ in range(2 * k)]
        for (bank, j, src), w, sc in zip(rows, words, scores, strict=True):
            r = bank * k + j
            new_score[r], src_ix[r], new_tok[r], new_hist[r] = sc, src, w, hist[src] + [w]
        state, score, tok, hist = _select(state, src_ix), new_score, new_tok, new_hist
    return None if best is None else _finish(best[1] + [END_IX], best[0], [])


def name_confident_class(
    model: Decoder,
    feats: torch.Tensor,
    nbest: list[list[Caption]],
    threshold: float,
    beam: int,
    max_len: int,
    is_photo: Callable[[int], bool] | None = None,
) -> list[list[Caption]]:
    """Copy models: where the encoder's top ImageNet class has probability >= threshold and image i is a
    photo (is_photo(i), asked only for those images; None: all are), the first caption becomes the best one
    that says that class's word (constrained_beam_search). threshold 0 (or no copy path) changes nothing."""
    if threshold <= 0 or not model.offers_classes:
        return nbest
    p, w = model.offered(feats)
    out = list(nbest)
    for i in torch.nonzero((p[:, 0] >= threshold) & (w[:, 0] != PAD_IX)).flatten().tolist():
        if is_photo is not None and not is_photo(i):
            continue
        c = constrained_beam_search(model, feats[i : i + 1], {int(w[i, 0])}, beam, max_len)
        if c is not None:
            out[i] = [c] + [x for x in nbest[i] if x.tokens != c.tokens][: max(0, len(nbest[i]) - 1)]
    return out


def _walk(top: list[float], idx: list[int], vocab: int, k: int) -> tuple[list, list]:
    """One beam's candidates, best first, as (score, flat index over source x word): those that end (#END#)
    within the top k ranks finish, as in fairseq; the first k that do not end live on.
    Returns (ended [(score, source)], live [(score, source, word)])."""
    ended, live = [], []
    for rank, (sc, ix) in enumerate(zip(top, idx, strict=True)):
        if sc <= NEG / 2 or len(live) == k:
            break
        src, w = divmod(ix, vocab)
        if w == END_IX:
            if rank < k:
                ended.append((sc, src))
        else:
            live.append((sc, src, w))
    return ended, live


def _no_better(finished: list, alive: torch.Tensor, length_penalty: float, n_best: int) -> bool:
    """True when no live beam can still beat each image's n_best-th finished hypothesis."""
    if length_penalty > 0:
        return False  # a longer hypothesis may still win under a length bonus; run to max_len
    for i, fin in enumerate(finished):
        nth = sorted((f[0] for f in fin), reverse=True)[n_best - 1]
        if alive[i].max().item() > nth:  # log-probs only fall, so live scores are upper bounds
            return False
    return True


@torch.inference_mode()
def sequence_logprob(model: Decoder, feats: torch.Tensor, tokens: torch.Tensor, block_unk: bool = True) -> torch.Tensor:
    """Mean log-probability per predicted token (words and #END#) of given captions under the model, on the
    scale decoding uses (masked_logprobs): for a caption decoding produced, this equals its Caption.confidence,
    and a caption holding a banned word (#UNK# with block_unk) scores about NEG.

    feats (B, ...), tokens (B, T) = #START# w1 .. wn #END# padded with #PAD# -> (B,)."""
    out = model(feats, tokens[:, :-1])  # (B, T-1, V)
    logp = masked_logprobs(out, block_unk)  # (B, T-1, V)
    target = tokens[:, 1:]
    mask = target != PAD_IX
    tok = logp.gather(-1, target[..., None])[..., 0] * mask
    return tok.sum(1) / mask.sum(1).clamp(min=1)
