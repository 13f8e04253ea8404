"""Training throughput of the seed-sized Show-and-Tell model against this machine's matmul peak.

    python bench/train_speed.py [--steps 30] [--corpus runs/open]

Seed sizes: vocabulary 10,000, embedding 128, LSTM 200, batch 50, captions of 12 words.
Prints tokens/s and captions/s in fp32 and bf16 autocast, achieved GFLOP/s as a fraction of the
2048x2048 matmul peak measured in the same run, and (with --corpus, a prepared and extracted
dataset) the validation loss after the same short schedule in fp32 and in bf16.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import nullcontext

import torch
from common import matmul_peak

from captioner.config import Config, ModelConfig, TrainConfig
from captioner.models import build_model
from captioner.train.loop import caption_loss, train

V, E, H, B, WORDS, D = 10_000, 128, 200, 50, 12, 1280


def step_flops() -> float:
    """Forward + backward (3x forward) multiply-adds x2 of one batch."""
    tokens = B * (WORDS + 1)  # #START# w1..w12 predicting w1..w12 #END#
    lstm = 2 * 4 * H * (E + H) * tokens
    head = 2 * H * V * tokens
    image = 2 * D * H * B
    return 3.0 * (lstm + head + image)


def measure(bf16: bool, steps: int) -> float:
    """Seconds per training step (forward, masked loss, backward, clip, Adam)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(embed=E, hidden=H), V, D)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)  # as captioner.train does
    feats = torch.randn(B, D)
    tokens = torch.randint(4, V, (B, WORDS + 2))
    tokens[:, 0], tokens[:, -1] = 2, 3
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()

    def one() -> None:
        with ctx:
            logits = model(feats, tokens[:, :-1])
        loss = caption_loss(logits, tokens)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()

    for _ in range(3):
        one()
    best = float("inf")
    for _ in range(3):  # best of three runs: the machine is shared and noisy
        t = time.perf_counter()
        for _ in range(steps):
            one()
        best = min(best, (time.perf_counter() - t) / steps)
    return best


def corpus_check(corpus: str, steps: int) -> dict[str, float]:
    """Validation loss after the same short seed-config schedule, fp32 vs bf16."""
    out = {}
    for bf16 in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Config(
                ModelConfig(),
                TrainConfig(data=corpus, out=tmp, epochs=1, steps_per_epoch=steps, bf16=bf16, val_images=1, patience=0),
            )
            out["bf16" if bf16 else "fp32"] = train(cfg).history[-1]["val_loss"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--corpus", help="prepared+extracted dataset for the bf16 quality check")
    ap.add_argument("--corpus-steps", type=int, default=600)
    a = ap.parse_args()
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"matmul peak 2048^2: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s")
    flops = step_flops()
    rates = {}
    for bf16 in (False, True):
        s = measure(bf16, a.steps)
        name = "bf16" if bf16 else "fp32"
        rates[name] = B * (WORDS + 1) / s
        gf = flops / s / 1e9
        print(
            f"{name}: {s * 1e3:7.1f} ms/step, {rates[name]:8.0f} tokens/s, {B / s:6.0f} captions/s, "
            f"{gf:6.1f} GFLOP/s = {gf / peak32:.2f} of the fp32 peak"
        )
    print(f"bf16 / fp32 tokens/s: {rates['bf16'] / rates['fp32']:.2f}x  (goal >= 2x; fp32 goal >= 0.50 of peak)")
    if a.corpus:
        losses = corpus_check(a.corpus, a.corpus_steps)
        rel = losses["bf16"] / losses["fp32"] - 1
        print(
            f"validation loss after {a.corpus_steps} steps: "
            f"fp32 {losses['fp32']:.4f}, bf16 {losses['bf16']:.4f} "
            f"({rel:+.2%}; goal within 1%)"
        )


if __name__ == "__main__":
    main()
