"""The training loop: masked cross-entropy, Adam, clipping, validation by CIDEr-D, exact resume."""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from captioner.config import Config
from captioner.decode.search import greedy
from captioner.decode.stepper import TorchStepper
from captioner.errors import CaptionerError
from captioner.models import Decoder, build_model
from captioner.text.metrics import CiderD, bleu_cider
from captioner.text.vocab import PAD_IX, Vocab, as_matrix
from captioner.ticker import Ticker
from captioner.train.checkpoint import feat_dim, load_checkpoint, resolve, save_checkpoint
from captioner.train.data import TrainData, load_data
from captioner.train.distributed import Dist, all_gather, all_sum, barrier, setup, teardown
from captioner.train.scst import scst_loss
from captioner.train.state import Progress, end_epoch, plot_curves, restore, state_tensors

log = logging.getLogger(__name__)


def steps_per_epoch(d: TrainData, cfg: Config) -> int:
    """Random mode: configured or one pass worth of captions; epoch mode: batches covering every caption."""
    b = cfg.train.batch_size
    if cfg.train.batch_mode == "random" and cfg.train.steps_per_epoch:
        return cfg.train.steps_per_epoch
    return max(1, math.ceil(len(d.pairs) / b))


def epoch_batches(d: TrainData, cfg: Config, epoch: int) -> list[np.ndarray]:
    """The (image, caption) index pairs of every batch of an epoch; a pure function of (seed, epoch)."""
    rng = np.random.default_rng([cfg.train.seed, epoch])
    b, n = cfg.train.batch_size, steps_per_epoch(d, cfg)
    if cfg.train.batch_mode == "random":  # the seed's: random images, one random caption of each
        imgs = rng.integers(0, len(d.train_caps), size=(n, b))
        caps = np.array([[rng.integers(len(d.train_caps[i])) for i in row] for row in imgs])
        return [np.stack([imgs[k], caps[k]], 1) for k in range(n)]
    order = d.pairs[rng.permutation(len(d.pairs))]
    lengths = np.array([len(d.train_caps[i][j]) for i, j in order])
    chunk = 50 * b  # sort within chunks by length so a batch holds similar lengths
    for s in range(0, len(order), chunk):
        idx = np.argsort(lengths[s : s + chunk], kind="stable")
        order[s : s + chunk] = order[s : s + chunk][idx]
    batches = [order[s : s + b] for s in range(0, len(order), b)]
    return [batches[k] for k in rng.permutation(len(batches))]


def make_batch(d: TrainData, rows: np.ndarray, caps: list[list[int]], device: torch.device) -> tuple:
    """Features (B, ...) and token matrix (B, T) for the given feature rows and encoded captions."""
    feats = torch.from_numpy(d.store.get(d.kind, rows.tolist()))
    tokens = torch.from_numpy(as_matrix(caps))
    if device.type == "cuda":  # page-locked host memory lets the copy overlap with compute
        feats, tokens = feats.pin_memory(), tokens.pin_memory()
    return feats.to(device, non_blocking=True), tokens.to(device, non_blocking=True)


def caption_loss(
    logits: torch.Tensor, tokens: torch.Tensor, label_smoothing: float = 0.0, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Next-word cross-entropy averaged over real (non-padding) targets. logits (B, T-1, V), tokens (B, T).
    weight (B, T-1), if given, scales each target's term; the mean is still over the real targets.

    Computed in the logits' dtype: under bf16 autocast the softmax over the vocabulary runs in bf16,
    which halves its memory traffic (validation casts to fp32 for an exact figure)."""
    targets = tokens[:, 1:]  # (B, T-1)
    if weight is None:
        return F.cross_entropy(
            logits.flatten(0, 1), targets.flatten(), ignore_index=PAD_IX, label_smoothing=label_smoothing
        )
    nll = F.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=PAD_IX, label_smoothing=label_smoothing, reduction="none"
    )
    real = (targets != PAD_IX).flatten()
    return (nll * weight.flatten().to(nll.dtype)).sum() / real.sum().clamp(min=1)


def copy_weights(model: Decoder, feats: torch.Tensor, tokens: torch.Tensor, weight: float) -> torch.Tensor | None:
    """Copy model: `weight` for target words that one of the image's top-k classes offers, else 1 (B, T-1)."""
    if weight == 1.0 or not model.offers_classes:
        return None
    _, words = model.offered(feats)  # (B, k)
    offered = (tokens[:, 1:, None] == words[:, None, :]).any(-1)  # (B, T-1)
    return 1.0 + (weight - 1.0) * offered.float()


def lr_factor(cfg: Config, step: int, total: int) -> float:
    """Linear warm-up, then constant or cosine decay to 10%."""
    t = cfg.train
    if t.warmup_steps and step < t.warmup_steps:
        return (step + 1) / t.warmup_steps
    if t.schedule == "constant":
        return 1.0
    p = min(1.0, (step - t.warmup_steps) / max(1, total - t.warmup_steps))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p))


def autocast(cfg: Config, device: torch.device):  # type: ignore[no-untyped-def]
    """bf16 or fp16 autocast when asked for, else a no-op context."""
    if cfg.train.fp16 and device.type != "cuda":
        raise CaptionerError("train.fp16 needs a CUDA device; on CPU use train.bf16")
    if cfg.train.bf16 or cfg.train.fp16:
        return torch.autocast(device.type, dtype=torch.bfloat16 if cfg.train.bf16 else torch.float16)
    return nullcontext()


@torch.no_grad()
def validate(model: nn.Module, d: TrainData, cfg: Config, device: torch.device, ddp: Dist | None = None) -> dict:
    """Teacher-forced loss over all val captions, and BLEU/CIDEr-D of real greedy decoding in each language the
    model writes (_mean_scores).

    Under torchrun each rank takes every world-th image; sums are all-reduced and captions gathered."""
    if len(d.val_rows) == 0:
        return {}
    ddp = ddp or Dist()
    model.eval()
    mine = list(range(ddp.rank, len(d.val_rows), ddp.world))
    total, count = 0.0, 0
    pairs = [(i, c) for i in mine for c in d.val_caps[i]]
    for s in range(0, len(pairs), 256):
        chunk = pairs[s : s + 256]
        feats, tokens = make_batch(d, d.val_rows[[i for i, _ in chunk]], [c for _, c in chunk], device)
        with autocast(cfg, device):
            logits = model(feats, tokens[:, :-1])
        n = int((tokens[:, 1:] != PAD_IX).sum())
        total, count = total + float(caption_loss(logits.float(), tokens)) * n, count + n
    total, count = all_sum([total, count], ddp)
    scores = {}
    if cfg.train.val_images > 0:  # 0: no decoding, so no scores to report
        scores = {lang: _decode_scores(model, d, cfg, device, ddp, lang, mine) for lang in d.val_refs}
    model.train()
    return {"val_loss": total / max(1, count), **_mean_scores(scores)}


def _decode_scores(
    model: nn.Module, d: TrainData, cfg: Config, device: torch.device, ddp: Dist, lang: str, mine: list[int]
) -> dict[str, float]:
    """BLEU/CIDEr-D of greedy captions in `lang` of the first val_images validation images with references in it."""
    hyps, no_end, allowed, refs = {}, d.vocab.no_end_mask(), d.vocab.allowed(lang), d.val_refs[lang]
    k = [i for i in mine if i < cfg.train.val_images and refs[i]]
    for s in range(0, len(k), 256):
        feats = torch.from_numpy(d.store.get(d.kind, d.val_rows[k[s : s + 256]].tolist())).to(device)
        st = TorchStepper(model, feats, no_end)
        st.first = d.vocab.first(lang)
        st.forbid = None if allowed is None else np.broadcast_to(~allowed, (len(feats), len(allowed)))
        for i, cap in zip(k[s : s + 256], greedy(st, cfg.train.max_len), strict=True):
            hyps[str(i)] = d.vocab.decode(cap.tokens, articles=True)
    hyps = {key: v for part in all_gather(hyps, ddp) for key, v in part.items()}
    return bleu_cider({key: refs[int(key)] for key in hyps}, hyps)


def _mean_scores(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """One language's scores as they are; with several, each under its language ('CIDEr-D ru') and their mean
    under the plain names, which choose the best epoch (every language the model writes counts alike)."""
    if len(scores) <= 1:
        return next(iter(scores.values()), {})
    out = {f"{k} {lang}": v for lang, sc in scores.items() for k, v in sc.items()}
    return out | {k: float(np.mean([sc[k] for sc in scores.values()])) for k in next(iter(scores.values()))}


def train(cfg: Config, resume: bool = False) -> Progress:
    """Train a decoder as the config says; with resume, continue from out/latest exactly.

    Under torchrun every rank takes a disjoint slice of each global batch; only rank 0 writes."""
    ddp = setup(cfg.train.device)
    try:
        prog = _train(cfg, resume, ddp)
        barrier(ddp)  # rank 0 may still be plotting: tearing down gloo under a peer's feet aborted a rank (SIGABRT)
        return prog
    finally:
        teardown(ddp)


@dataclass
class Run:
    """What one training run holds while it goes: data, model (and its DDP/compiled wrapper), optimizer."""

    cfg: Config
    d: TrainData
    model: nn.Module
    net: nn.Module
    opt: torch.optim.Optimizer
    ddp: Dist
    scaler: torch.amp.GradScaler
    cider: CiderD | None  # SCST: the reward's document frequencies (training captions)


def _train(cfg: Config, resume: bool, ddp: Dist) -> Progress:
    t, out = cfg.train, Path(cfg.train.out)
    r = _setup(cfg, ddp)
    prog = _start(r, out, resume)
    if prog.epoch >= t.epochs:
        log.info("%s/latest already finished all %d epochs; nothing to resume", out, t.epochs)
        return prog
    total = steps_per_epoch(r.d, cfg) * t.epochs

    def save(name: str, with_state: bool) -> None:
        tensors, groups = state_tensors(r.opt, ddp) if with_state else (None, None)
        if ddp.main:
            meta = {"epoch": prog.epoch, "global_step": prog.global_step, "history": prog.history[-1:]}
            extra = {**prog.to_json(), "param_groups": groups} if with_state else None
            save_checkpoint(out / name, r.model, cfg, r.d.vocab, r.d.store.spec, meta, tensors, extra)
        barrier(ddp)

    r.net.train()
    while prog.epoch < t.epochs:
        batches = epoch_batches(r.d, cfg, prog.epoch)
        desc = f"epoch {prog.epoch + 1}/{t.epochs}"
        with Ticker(len(batches), desc, "step", prog.step_in_epoch, quiet=not ddp.main) as bar:
            for k in range(prog.step_in_epoch, len(batches)):
                loss = _step(r, batches[k][ddp.rank :: ddp.world], t.lr * lr_factor(cfg, prog.global_step, total))
                prog.loss_sum, prog.loss_n = prog.loss_sum + loss, prog.loss_n + 1
                prog.step_in_epoch, prog.global_step = k + 1, prog.global_step + 1
                prog.steps_run += 1
                bar.set_postfix(loss=f"{loss:.3f}")
                bar.update()
                if prog.global_step % t.checkpoint_every == 0:
                    save("latest", True)
        loss_sum, loss_n = all_sum([prog.loss_sum, prog.loss_n], ddp)
        prog.loss_sum, prog.loss_n = 0.0, 0
        metrics = {"epoch": prog.epoch + 1, "step": prog.global_step, "train_loss": loss_sum / max(1, loss_n)}
        end_epoch(prog, {**metrics, **validate(r.model, r.d, cfg, ddp.device, ddp)}, t.patience, t.epochs, save)
        if ddp.main:
            plot_curves(prog.history, out / "curves.png")
    return prog


def _setup(cfg: Config, ddp: Dist) -> Run:
    """Data, the model (seeded alike on every rank), its optimizer and wrappers."""
    t = cfg.train
    d = load_data(cfg)
    torch.manual_seed(t.seed)  # the same initial weights on every rank
    model = build_model(cfg.model, len(d.vocab), feat_dim(d.store.spec, d.kind)).to(ddp.device)
    if d.class_word is not None:
        model.class_word.copy_(torch.tensor(d.class_word))
    if t.init:
        _init_from(Path(t.init), model, d.vocab)
    if t.scst_samples and ddp.world > 1:
        raise CaptionerError("train.scst_samples: self-critical training runs in one process, not under torchrun")
    opt = torch.optim.Adam(model.parameters(), lr=t.lr, fused=True)  # one kernel for all parameters
    torch.manual_seed(t.seed + ddp.rank)  # dropout masks differ between ranks
    net = DistributedDataParallel(model) if ddp.world > 1 else model
    net = torch.compile(net) if t.compile else net
    scaler = torch.amp.GradScaler(ddp.device.type, enabled=t.fp16)  # fp16 needs loss scaling; bf16 does not
    cider = CiderD(d.train_refs) if t.scst_samples else None
    return Run(cfg, d, model, net, opt, ddp, scaler, cider)


def _start(r: Run, out: Path, resume: bool) -> Progress:
    """A fresh Progress, or with resume the one in out/latest (weights, optimizer and RNG restored)."""
    exists = resolve(out / "latest").exists()
    if exists and not resume:
        raise CaptionerError(f"{out}/latest exists: pass --resume to continue it, or set train.out elsewhere")
    if resume and not exists:
        raise CaptionerError(f"--resume: {out}/latest does not exist, so there is nothing to resume; drop --resume")
    if not resume:
        return Progress()
    prog = restore(out / "latest", r.model, r.opt, r.ddp)
    log.info("resumed %s (global step %d)", prog.where(), prog.global_step)
    return prog


def _step(r: Run, b: np.ndarray, lr: float) -> float:
    """One optimisation step on this rank's (image, caption) pairs b (N, 2); returns the loss."""
    d, cfg, device = r.d, r.cfg, r.ddp.device
    for g in r.opt.param_groups:
        g["lr"] = lr
    if r.cider is not None:  # SCST: each image of the batch once, with its own sampled captions
        imgs = np.unique(b[:, 0])
        feats = torch.from_numpy(d.store.get(d.kind, d.train_rows[imgs].tolist())).to(device)
        with autocast(cfg, device):
            refs = [d.train_refs[i] for i in imgs]
            loss, _ = scst_loss(r.model, feats, refs, d.vocab, r.cider, cfg.train.scst_samples, cfg.train.max_len)
    else:
        feats, tokens = make_batch(d, d.train_rows[b[:, 0]], [d.train_caps[i][j] for i, j in b], device)
        with autocast(cfg, device):
            logits = r.net(feats, tokens[:, :-1])  # (B, T-1, V)
        w = copy_weights(r.model, feats, tokens, cfg.model.copy_weight)
        loss = caption_loss(logits, tokens, cfg.train.label_smoothing, w)
    r.opt.zero_grad(set_to_none=True)
    r.scaler.scale(loss).backward()
    r.scaler.unscale_(r.opt)
    nn.utils.clip_grad_norm_(r.model.parameters(), cfg.train.clip)
    r.scaler.step(r.opt)
    r.scaler.update()
    return float(loss.item())


def _init_from(path: Path, model: nn.Module, vocab: Vocab) -> None:
    """Copy a trained checkpoint's weights into a fresh model of the same shape and vocabulary."""
    ck = load_checkpoint(path)
    if ck.vocab.itos != vocab.itos:
        raise CaptionerError(f"train.init: {path} was trained with a different vocabulary than train.data's")
    try:
        model.load_state_dict(ck.model.state_dict())
    except RuntimeError as e:
        raise CaptionerError(f"train.init: {path} does not fit the [model] section: {str(e).splitlines()[0]}") from e
    log.info("initialised from %s", path)
