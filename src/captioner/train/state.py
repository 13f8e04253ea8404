"""Training state beside the weights: progress, optimizer and RNG states for exact resume, the per-epoch
bookkeeping (best checkpoint, early stopping) and the training curves."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from captioner.errors import CaptionerError
from captioner.files import read_json, write_bytes
from captioner.train.checkpoint import resolve
from captioner.train.distributed import Dist, all_gather

log = logging.getLogger("captioner.train")


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
    steps_run: int = field(default=0, compare=False)  # steps taken by this process (not saved)

    def to_json(self) -> dict[str, Any]:
        """What 'latest' saves: everything but steps_run."""
        return {k: v for k, v in self.__dict__.items() if k != "steps_run"}

    def where(self) -> str:
        """'after epoch 3' or 'in epoch 4 at step 120' (the training log's numbering)."""
        if self.step_in_epoch == 0:
            return f"after epoch {self.epoch}" if self.epoch else "at the start"
        return f"in epoch {self.epoch + 1} at step {self.step_in_epoch}"


def state_tensors(opt: torch.optim.Optimizer, ddp: Dist) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Optimizer state and every rank's RNG state (a collective call under torchrun)."""
    sd = opt.state_dict()
    tensors = {f"opt.{i}.{k}": v for i, st in sd["state"].items() for k, v in st.items()}
    mine = {"torch": torch.get_rng_state()}
    if ddp.device.type == "cuda":
        mine["cuda"] = torch.cuda.get_rng_state(ddp.device)
    for r, states in enumerate(all_gather(mine, ddp)):
        tensors.update({f"rng.{k}.{r}": v for k, v in states.items()})
    return tensors, sd["param_groups"]


def restore(path: Path, model: nn.Module, opt: torch.optim.Optimizer, ddp: Dist) -> Progress:
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


_SCORES = (("CIDEr-D", "validation CIDEr-D"), ("val_loss", "validation loss"), ("train_loss", "training loss"))


def end_epoch(
    prog: Progress, metrics: dict[str, Any], patience: int, epochs: int, save: Callable[[str, bool], None]
) -> None:
    """Record the epoch; keep 'best' by validation CIDEr-D (or the losses, see `score`); stop early after
    `patience` epochs without a better one."""
    prog.history.append(metrics)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k not in ("epoch", "step"))
    log.info("epoch %d (step %d): %s", metrics["epoch"], metrics["step"], shown)
    prog.epoch, prog.step_in_epoch = prog.epoch + 1, 0
    # validation CIDEr-D; without decoded images the validation loss; without a validation split the training loss
    score = metrics.get("CIDEr-D", -metrics.get("val_loss", metrics["train_loss"]))
    if prog.best_cider is None or score > prog.best_cider:
        prog.best_cider, prog.bad_epochs = score, 0
        save("best", False)
    else:
        prog.bad_epochs += 1
    if patience and prog.bad_epochs >= patience:
        what = next(w for k, w in _SCORES if k in metrics)
        log.info("early stop: no better %s for %d epochs", what, prog.bad_epochs)
        prog.epoch = epochs
    save("latest", True)


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Training and validation loss, and validation CIDEr-D, by epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    scored = "CIDEr-D" in history[0]  # no validation split: only the training loss
    fig, ax = plt.subplots(1, 2 if scored else 1, figsize=(9 if scored else 4.5, 3.5), squeeze=False)
    ax[0, 0].plot(ep, [h["train_loss"] for h in history], label="train (epoch mean)")
    if "val_loss" in history[0]:
        ax[0, 0].plot(ep, [h["val_loss"] for h in history], label="validation")
    ax[0, 0].set(xlabel="epoch", ylabel="cross-entropy")
    if scored:
        ax[0, 1].plot(ep, [h["CIDEr-D"] for h in history], label="CIDEr-D", color="C2")
        ax[0, 1].plot(ep, [h["BLEU-4"] for h in history], label="BLEU-4", color="C3")
        ax[0, 1].set(xlabel="epoch", ylabel="validation score (greedy)")
    for a in ax[0]:
        a.legend()
    fig.tight_layout()

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_bytes(path, buf.getvalue())
