"""Self-critical training: sampled log-probabilities agree with teacher forcing, the update favours captions
that score better, and fine-tuning runs from a checkpoint through the normal training command."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from captioner.cli.main import main
from captioner.config import ModelConfig
from captioner.decode.search import NEG
from captioner.models import build_model
from captioner.text.metrics import CiderD
from captioner.text.vocab import END_IX, PAD_IX, START_IX, UNK_IX, Vocab
from captioner.train.checkpoint import load_checkpoint
from captioner.train.scst import rewards, sample_with_logprob, scst_loss

WORDS = ("a", "red", "blue", "circle", "square", "big")


def _vocab() -> Vocab:
    return Vocab(("#PAD#", "#UNK#", "#START#", "#END#", *WORDS), 1)


@pytest.mark.parametrize("kind", ["showtell", "attend"])
def test_sampled_logprob_equals_teacher_forcing_without_the_forced_end(kind: str) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, embed=8, hidden=16, attn_dim=8, dropout=0), 10, 6).eval()
    feats = torch.randn(40, 4, 6) if kind == "attend" else torch.randn(40, 6)
    max_len = 2
    tokens, logp = sample_with_logprob(model, feats, max_len=max_len)
    inp = torch.cat([torch.full((40, 1), START_IX), tokens], 1)
    logits = model(feats, inp[:, :-1]).float()
    logits[..., [PAD_IX, START_IX, UNK_IX]] = NEG
    lp = torch.log_softmax(logits, -1).gather(-1, tokens[..., None])[..., 0]
    sampled = (tokens != PAD_IX) & (torch.arange(tokens.shape[1]) < max_len)  # the #END# at max_len was forced
    assert tokens.shape[1] == max_len + 1 and (tokens[:, max_len] == END_IX).any()  # some rows were forced
    assert torch.allclose((lp * sampled).sum(1), logp, atol=1e-4)
    assert all(END_IX in row.tolist() for row in tokens)


def test_scst_updates_favour_higher_cider() -> None:
    vocab = _vocab()
    refs = [["a red circle"], ["a blue square"]]
    cider = CiderD([["a red circle"], ["a blue square"], ["a big red square"], ["a blue circle"]])
    torch.manual_seed(1)
    model = build_model(ModelConfig(embed=8, hidden=32, dropout=0), len(vocab), 4)
    feats = torch.eye(2, 4)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)

    def mean_reward() -> float:
        with torch.no_grad():
            toks, _ = sample_with_logprob(model, feats.repeat_interleave(200, 0), max_len=5)
            return float(rewards(toks, [r for r in refs for _ in range(200)], vocab, cider).mean())

    before = mean_reward()
    for _ in range(60):
        loss, _ = scst_loss(model, feats, refs, vocab, cider, samples=8, max_len=5)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = mean_reward()
    assert after > before + 2.0, (before, after)  # CIDEr-D of an exact match here is 10


def test_scst_fine_tunes_a_checkpoint_through_train(shapes_data: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "scst"
    common = [f"train.data={shapes_data}", "train.batch_size=18", "train.epochs=1", "train.steps_per_epoch=3"]
    args = [*common, f"train.out={out}", f"train.init={tiny_checkpoint}", "train.scst_samples=3", "model.dropout=0"]
    assert main(["train", *args]) == 0
    ck = load_checkpoint(out / "best")
    assert ck.meta["history"][-1]["CIDEr-D"] > 0
    # a checkpoint whose shape does not fit is refused with the field named
    bad = [*common, f"train.out={tmp_path / 'bad'}", f"train.init={tiny_checkpoint}", "model.hidden=8"]
    assert main(["train", *bad]) == 2
    assert main(["train", *common, f"train.out={tmp_path / 'c'}", "train.scst_samples=1"]) == 2
