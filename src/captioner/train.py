"""The training loop: masked cross-entropy, Adam, clipping, validation by CIDEr-D, exact resume."""

from __future__ import annotations

import io
import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .baselines import CiderD
from .checkpoint import feat_dim, load_checkpoint, resolve, save_checkpoint
from .config import Config
from .data.manifest import read_manifest
from .decoding import greedy
from .distributed import Dist, all_gather, all_sum, barrier, setup, teardown
from .errors import CaptionerError
from .features import FeatureStore
from .files import read_json, write_bytes
from .imagenet import class_words
from .metrics import bleu_cider
from .models import build_model, feature_kind
from .scst import scst_loss
from .text import PAD_IX, Vocab, as_matrix

log = logging.getLogger(__name__)


@dataclass
class TrainData:
    """Captions as index lists, grouped by feature row, for the train and val splits."""

    store: FeatureStore
    vocab: Vocab
    kind: str  # which feature array: pooled, logits or grid
    train_rows: np.ndarray  # (N,) feature rows of training images
    train_caps: list[list[list[int]]]  # per training image, its encoded captions
    val_rows: np.ndarray
    val_caps: list[list[list[int]]]
    val_refs: list[list[str]]  # raw reference captions, for BLEU/CIDEr
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # (P, 2) image, caption
    class_word: list[int] | None = None  # copy model: word id naming each ImageNet class
    train_refs: list[list[str]] = field(default_factory=list)  # raw training captions, for SCST rewards


def load_data(cfg: Config) -> TrainData:
    """Read manifest, vocabulary and features named by the config, and check they fit together."""
    t = cfg.train
    if not t.data:
        raise CaptionerError("config field train.data: set it to a folder written by `captioner prepare`")
    data = Path(t.data)
    items = read_manifest(data)
    vocab = Vocab.load(data / "vocab.json")
    store = FeatureStore(t.features or data / "features")
    kind = feature_kind(cfg.model)
    class_word = None
    if cfg.model.kind == "copy":  # label words join the vocabulary, so captions can contain them too
        vocab, class_word = extend_with_labels(vocab)
    if any(k not in store.arrays for k in kind.split("+")):
        held = ", ".join(store.arrays)
        raise CaptionerError(
            f"{store.path}: no '{kind}' features (it holds {held}); set model.feature to one of those, "
            "or run `captioner extract --grid` for attention"
        )
    split = {s: [it for it in items if it.split == s and it.image in store.row] for s in ("train", "val")}
    if not split["train"]:
        raise CaptionerError(f"{data}: no training images with features")
    enc = lambda it: [vocab.encode(c, t.max_len) for c in it.captions]  # noqa: E731
    d = TrainData(
        store,
        vocab,
        kind,
        np.array([store.row[it.image] for it in split["train"]]),
        [enc(it) for it in split["train"]],
        np.array([store.row[it.image] for it in split["val"]], dtype=np.int64),
        [enc(it) for it in split["val"]],
        [it.captions for it in split["val"]],
    )
    d.class_word = class_word
    d.train_refs = [it.captions for it in split["train"]]
    d.pairs = np.array([(i, j) for i, caps in enumerate(d.train_caps) for j in range(len(caps))], np.int64)
    return d


def extend_with_labels(vocab: Vocab) -> tuple[Vocab, list[int]]:
    """The vocabulary plus the basic-level names of the 1000 ImageNet classes, and each class's word id."""
    names = class_words(set(vocab.itos[4:]))
    extra = sorted({n.word for n in names} - set(vocab.itos))
    vocab = Vocab(vocab.itos + tuple(extra), vocab.min_count)
    return vocab, [vocab.stoi[n.word] for n in names]


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


def copy_weights(model: nn.Module, feats: torch.Tensor, tokens: torch.Tensor, weight: float) -> torch.Tensor | None:
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
    """Teacher-forced loss over all val captions, and BLEU/CIDEr-D of real greedy decoding.

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
    hyps = {}
    k = [i for i in mine if i < cfg.train.val_images]
    for s in range(0, len(k), 256):
        feats = torch.from_numpy(d.store.get(d.kind, d.val_rows[k[s : s + 256]].tolist())).to(device)
        for i, cap in zip(k[s : s + 256], greedy(model, feats, cfg.train.max_len), strict=True):
            hyps[str(i)] = d.vocab.decode(cap.tokens, articles=True)
    hyps = {key: v for part in all_gather(hyps, ddp) for key, v in part.items()}
    refs = {key: d.val_refs[int(key)] for key in hyps}
    model.train()
    return {"val_loss": total / max(1, count), **bleu_cider(refs, hyps)}


@dataclass
class Progress:
    """Where training stands; saved beside every 'latest' checkpoint."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_cider: float | None = None  # the best epoch's score: validation CIDEr-D, or -train_loss without validation
    bad_epochs: int = 0
    loss_sum: float = 0.0  # this epoch's training losses so far (this rank's), for the epoch mean
    loss_n: int = 0


def _state_tensors(opt: torch.optim.Optimizer, ddp: Dist) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Optimizer state and every rank's RNG state (a collective call under torchrun)."""
    sd = opt.state_dict()
    tensors = {f"opt.{i}.{k}": v for i, st in sd["state"].items() for k, v in st.items()}
    mine = {"torch": torch.get_rng_state()}
    if ddp.device.type == "cuda":
        mine["cuda"] = torch.cuda.get_rng_state(ddp.device)
    for r, states in enumerate(all_gather(mine, ddp)):
        tensors.update({f"rng.{k}.{r}": v for k, v in states.items()})
    return tensors, sd["param_groups"]


def _restore(path: Path, model: nn.Module, opt: torch.optim.Optimizer, ddp: Dist) -> Progress:
    path = resolve(path)
    tensors = load_file(path / "train_state.safetensors")
    meta = read_json(path / "train_state.json", "training state")
    model.load_state_dict(load_file(path / "model.safetensors"))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, i, name = key.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
    if f"rng.torch.{ddp.rank}" not in tensors:
        raise CaptionerError(f"{path}: no RNG state for rank {ddp.rank}; resume with the world size it was saved with")
    torch.set_rng_state(tensors[f"rng.torch.{ddp.rank}"])
    if f"rng.cuda.{ddp.rank}" in tensors and ddp.device.type == "cuda":
        torch.cuda.set_rng_state(tensors[f"rng.cuda.{ddp.rank}"], ddp.device)
    return Progress(**meta)


def train(cfg: Config, resume: bool = False) -> Progress:
    """Train a decoder as the config says; with resume, continue from out/latest exactly.

    Under torchrun every rank takes a disjoint slice of each global batch; only rank 0 writes."""
    ddp = setup(cfg.train.device)
    try:
        return _train(cfg, resume, ddp)
    finally:
        teardown(ddp)


def _train(cfg: Config, resume: bool, ddp: Dist) -> Progress:
    t, out, device = cfg.train, Path(cfg.train.out), ddp.device
    d = load_data(cfg)
    torch.manual_seed(t.seed)  # the same initial weights on every rank
    model = build_model(cfg.model, len(d.vocab), feat_dim(d.store.spec, d.kind)).to(device)
    if d.class_word is not None:
        model.class_word.copy_(torch.tensor(d.class_word))
    if t.init:
        _init_from(Path(t.init), model, d.vocab)
    if t.scst_samples and ddp.world > 1:
        raise CaptionerError("train.scst_samples: self-critical training runs in one process, not under torchrun")
    cider = CiderD(d.train_refs) if t.scst_samples else None  # document frequencies of the training captions
    opt = torch.optim.Adam(model.parameters(), lr=t.lr, fused=True)  # one kernel for all parameters
    torch.manual_seed(t.seed + ddp.rank)  # dropout masks differ between ranks
    prog = Progress()
    if resolve(out / "latest").exists():
        if not resume:
            raise CaptionerError(f"{out}/latest exists: pass --resume to continue it, or set train.out elsewhere")
        prog = _restore(out / "latest", model, opt, ddp)
        log.info("resumed at epoch %d, step %d", prog.epoch, prog.step_in_epoch)
    net = DistributedDataParallel(model) if ddp.world > 1 else model
    if t.compile:
        net = torch.compile(net)
    scaler = torch.amp.GradScaler(device.type, enabled=t.fp16)  # fp16 needs loss scaling; bf16 does not
    total = steps_per_epoch(d, cfg) * t.epochs

    def save(name: str, with_state: bool) -> None:
        tensors, groups = _state_tensors(opt, ddp) if with_state else (None, None)
        if ddp.main:
            meta = {"epoch": prog.epoch, "global_step": prog.global_step, "history": prog.history[-1:]}
            extra = {**prog.__dict__, "param_groups": groups} if with_state else None
            save_checkpoint(out / name, model, cfg, d.vocab, d.store.spec, meta, tensors, extra)
        barrier(ddp)

    net.train()
    while prog.epoch < t.epochs:
        batches = epoch_batches(d, cfg, prog.epoch)
        bar = tqdm(
            total=len(batches),
            initial=prog.step_in_epoch,
            desc=f"epoch {prog.epoch + 1}/{t.epochs}",
            unit="step",
            disable=None if ddp.main else True,
        )
        for k in range(prog.step_in_epoch, len(batches)):
            b = batches[k][ddp.rank :: ddp.world]  # this rank's slice of the global batch
            for g in opt.param_groups:
                g["lr"] = t.lr * lr_factor(cfg, prog.global_step, total)
            if cider is not None:  # SCST: each image of the batch once, with its own sampled captions
                imgs = np.unique(b[:, 0])
                feats = torch.from_numpy(d.store.get(d.kind, d.train_rows[imgs].tolist())).to(device)
                with autocast(cfg, device):
                    refs = [d.train_refs[i] for i in imgs]
                    loss, _ = scst_loss(model, feats, refs, d.vocab, cider, t.scst_samples, t.max_len)
            else:
                feats, tokens = make_batch(d, d.train_rows[b[:, 0]], [d.train_caps[i][j] for i, j in b], device)
                with autocast(cfg, device):
                    logits = net(feats, tokens[:, :-1])  # (B, T-1, V)
                w = copy_weights(model, feats, tokens, cfg.model.copy_weight)
                loss = caption_loss(logits, tokens, t.label_smoothing, w)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), t.clip)
            scaler.step(opt)
            scaler.update()
            prog.loss_sum, prog.loss_n = prog.loss_sum + loss.item(), prog.loss_n + 1
            prog.step_in_epoch, prog.global_step = k + 1, prog.global_step + 1
            bar.set_postfix(loss=f"{loss.item():.3f}")
            bar.update()
            if prog.global_step % t.checkpoint_every == 0:
                save("latest", True)
        bar.close()
        loss_sum, loss_n = all_sum([prog.loss_sum, prog.loss_n], ddp)
        prog.loss_sum, prog.loss_n = 0.0, 0
        metrics = {
            "epoch": prog.epoch + 1,
            "step": prog.global_step,
            "train_loss": loss_sum / max(1, loss_n),
            **validate(model, d, cfg, device, ddp),
        }
        _end_epoch(prog, metrics, t.patience, t.epochs, save)
        if ddp.main:
            plot_curves(prog.history, out / "curves.png")
    return prog


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


def _end_epoch(prog: Progress, metrics: dict[str, Any], patience: int, epochs: int, save: Any) -> None:
    """Record the epoch; keep 'best' by validation CIDEr-D; stop early after `patience` bad epochs."""
    prog.history.append(metrics)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k not in ("epoch", "step"))
    log.info("epoch %d (step %d): %s", metrics["epoch"], metrics["step"], shown)
    prog.epoch, prog.step_in_epoch = prog.epoch + 1, 0
    score = metrics.get("CIDEr-D", -metrics["train_loss"])
    if prog.best_cider is None or score > prog.best_cider:
        prog.best_cider, prog.bad_epochs = score, 0
        save("best", False)
    else:
        prog.bad_epochs += 1
    if patience and prog.bad_epochs >= patience:
        what = "validation CIDEr-D" if "CIDEr-D" in metrics else "training loss (no validation split)"
        log.info("early stop: no better %s for %d epochs", what, prog.bad_epochs)
        prog.epoch = epochs
    save("latest", True)


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Training and validation loss, and validation CIDEr-D, by epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].plot(ep, [h["train_loss"] for h in history], label="train (last batch)")
    if "val_loss" in history[0]:
        ax[0].plot(ep, [h["val_loss"] for h in history], label="validation")
        ax[1].plot(ep, [h["CIDEr-D"] for h in history], label="CIDEr-D", color="C2")
        ax[1].plot(ep, [h["BLEU-4"] for h in history], label="BLEU-4", color="C3")
    ax[0].set(xlabel="epoch", ylabel="cross-entropy")
    ax[1].set(xlabel="epoch", ylabel="validation score (greedy)")
    for a in ax:
        a.legend()
    fig.tight_layout()

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_bytes(path, buf.getvalue())
