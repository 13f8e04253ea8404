"""The `captioner` command: argparse subcommands mapped onto library functions; no logic here."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from .config import RERANK_TAU, RERANK_WEIGHT, Limits
from .errors import CaptionerError

HELP = argparse.ArgumentDefaultsHelpFormatter  # every option's help ends with its default
NAME_HELP = "copy models: name a photo's top ImageNet class at this probability (default: the checkpoint's; 0: off)"
ENSEMBLE_HELP = "more checkpoints (same vocabulary and features) to decode with, averaging their word distributions"

WEIGHTS_HELP = "weights file for an encoder not installed from a package (googlenet-bvlc: blvc_googlenet.pkl)"

log = logging.getLogger("captioner")


def _prepare(a: argparse.Namespace) -> None:
    from .data.manifest import parse_ratios
    from .prepare import prepare

    opts: dict[str, object] = {
        "ratios": parse_ratios(a.split_ratio),
        "keep_restval": a.keep_restval,
        "allow_outside_root": a.allow_outside_root,
    }
    if a.split:
        opts["split"] = a.split
    if a.karpathy:
        opts["karpathy"] = a.karpathy
    summary = prepare(a.format, a.src, a.out, a.images, a.min_count, check=not a.no_check, features=a.features, **opts)
    _print_summary(summary, Path(a.out))


def _print_summary(summary: dict, out: Path) -> None:
    v = summary["vocab"]
    print(f"wrote {out / 'manifest.jsonl'}: {summary['images']} images, {summary['captions']} captions")
    print(f"  splits: {json.dumps(summary['splits'])}  sources: {json.dumps(summary['sources'])}")
    for src, splits in summary["source_splits"].items():
        print(f"    {src}: {json.dumps(splits)}")
    print(
        f"  caption tokens: mean {summary['caption_tokens_mean']}, percentiles {summary['caption_tokens_percentiles']}"
    )
    print(
        f"wrote {out / 'vocab.json'}: {v['size']} entries ({v['distinct_words']} distinct training words), "
        f"covers {v['coverage']:.1%} of {v['tokens']} training tokens, UNK rate {v['unk_rate']:.1%}"
    )


def _extract(a: argparse.Namespace) -> None:
    from .distributed import barrier, setup, teardown
    from .features import extract, merge_shards

    out = Path(a.out) if a.out else Path(a.data) / "features"
    if a.merge:
        r = merge_shards(a.data, out, a.merge)
        print(f"merged {a.merge} shards into {out}: {r.total - len(r.failed)} of {r.total} images have features")
        return
    shard, ddp = None, None
    if a.shard:
        i, _, n = a.shard.partition("/")
        if not (i.isdigit() and n.isdigit()):
            raise CaptionerError(f"--shard {a.shard!r}: expected I/N, e.g. 0/4")
        shard = (int(i), int(n))
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun: one shard per rank, rank 0 merges
        ddp = setup("cpu")
        shard = (ddp.rank, ddp.world)
    r = extract(a.data, out, a.encoder, a.grid, a.batch_size, a.workers, shard, a.encoder_weights)
    if ddp:
        barrier(ddp)
        if ddp.main:
            merge_shards(a.data, out, ddp.world)
        teardown(ddp)
    rate = r.extracted / r.seconds if r.seconds else 0.0
    print(f"wrote {out}: {r.total - len(r.failed)} of {r.total} images encoded ({r.extracted} now, {rate:.1f} img/s)")
    if r.resumed_from:
        print(f"  resumed after {r.resumed_from} images")
    if r.failed:
        print(f"  skipped {len(r.failed)} unreadable images (named in the warnings above)")


def _open_clipart(a: argparse.Namespace) -> None:
    from .data.opencorpus import build_open_corpus

    paths = {
        k: Path(v) for k, v in (("tuxpaint", a.tuxpaint), ("openclipart", a.openclipart), ("openmoji", a.openmoji)) if v
    }
    summary = build_open_corpus(
        a.out, limit=a.limit, workers=a.workers, sources=a.sources, paths=paths, min_count=a.min_count
    )
    _print_summary(summary, Path(a.out))
    print(
        f"  {summary['render_failures']} images failed to render (named in the warnings above); "
        f"{summary['near_duplicate_groups']} near-duplicate groups "
        f"({summary['near_duplicate_images']} images) each kept within one split"
    )


def _train(a: argparse.Namespace) -> None:
    from .config import load_config
    from .train import train

    config, overrides = a.config, list(a.overrides)
    if config and "=" in config and not Path(config).exists():  # no preset, only overrides
        config, overrides = None, [config, *overrides]
    cfg = load_config(config, overrides)
    prog = train(cfg, resume=a.resume)
    if os.environ.get("RANK", "0") != "0":
        return
    out = cfg.train.out
    if not prog.steps_run:
        print(f"nothing to do: {out}/latest had finished {prog.epoch} of {cfg.train.epochs} epochs")
        return
    print(
        f"trained {prog.steps_run} steps (global step {prog.global_step}); checkpoints in {out}/latest and {out}/best"
    )
    if any("CIDEr-D" in h for h in prog.history):
        best = max(prog.history, key=lambda h: h.get("CIDEr-D", -1))
        b4, ep = best["BLEU-4"], best["epoch"]
        print(f"  best validation CIDEr-D {best['CIDEr-D']:.3f} (BLEU-4 {b4:.3f}), epoch {ep}")
    else:
        best = min(prog.history, key=lambda h: h["train_loss"])
        print(f"  no validation split: best/ is epoch {best['epoch']}, training loss {best['train_loss']:.3f}")


def _evaluate(a: argparse.Namespace) -> None:
    from .evaluate import evaluate, score_predictions

    if a.predictions:
        if not a.data:
            raise CaptionerError("--predictions needs --data, the prepared dataset to score against")
        r = score_predictions(a.predictions, a.data, a.split, meteor=not a.no_meteor)
        _print_metrics("predictions", r["metrics"])
        return
    if not a.checkpoint:
        raise CaptionerError("give a CHECKPOINT folder, or --predictions FILE with --data")
    r = evaluate(
        a.checkpoint,
        a.split,
        a.beam,
        a.data,
        a.features,
        a.out,
        a.limit,
        not a.no_baselines,
        meteor=not a.no_meteor,
        rerank_weight=a.rerank_weight,
        rerank_tau=a.rerank_tau,
        name_threshold=a.name_threshold,
        ensemble=a.ensemble,
    )
    width = max(len(n) for n in ["model", *r["baselines"]])  # one column for the names, however long
    _print_metrics("model", r["metrics"], width)
    for name, m in r["baselines"].items():
        _print_metrics(name, m, width)
    h = r["health"]
    print(
        f"health: {h['distinct_pct']:.1f}% distinct, {h['vocab_used']} words used, mean length {h['mean_length']:.2f}, "
        f"{h['function_word_ending_pct']:.1f}% end on a function word, most common {h['most_common']!r} "
        f"({h['most_common_pct']:.1f}%)"
    )
    if "warning" in h:
        print(f"WARNING: {h['warning']}")
    print(f"wrote predictions.json, metrics.json, baselines.json, report.html to {r['out']}")


def _print_metrics(name: str, m: dict, width: int = 42) -> None:
    keys = ["BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"]
    vals = "  ".join(f"{k} {m[k]:.3f}" for k in keys if k in m)
    print(f"{name:{width}s}  {vals}  ({m['images']} images)")
    for k, why in m.get("unavailable", {}).items():
        if name in ("model", "predictions"):
            print(f"  {k} unavailable: {why}")


def _caption(a: argparse.Namespace) -> int:
    from .api import Captioner
    from .caption import caption_paths, gather

    paths = list(gather(a.paths))
    if not paths:
        raise CaptionerError("no images found in the given paths")
    cap = Captioner.load(
        a.checkpoint,
        a.device,
        bf16=a.bf16,
        name_threshold=a.name_threshold,
        ensemble=a.ensemble,
        encoder_weights=a.encoder_weights,
    )
    progress = len(paths) > a.batch_size and sys.stderr.isatty()
    temperature = a.temperature if a.sample else 0.0
    failed = caption_paths(
        cap, paths, sys.stdout, sys.stderr, a.json, a.beam, a.n_best, temperature, a.batch_size, progress
    )
    if failed:
        print(f"captioner: {failed} of {len(paths)} files could not be captioned", file=sys.stderr)
        return 1
    return 0


def _serve(a: argparse.Namespace) -> None:
    import uvicorn

    from .api import Captioner
    from .serve.app import Limits, create_app

    cap = Captioner.load(a.checkpoint, a.device, ensemble=a.ensemble, encoder_weights=a.encoder_weights)
    limits = Limits(
        max_bytes=int(a.max_upload_mb * 1024 * 1024), max_pixels=a.max_pixels, body_timeout_s=a.body_timeout
    )
    print(f"serving {cap.ck.path} on http://{a.host}:{a.port}/", file=sys.stderr)
    uvicorn.run(create_app(cap, limits), host=a.host, port=a.port, log_level="warning")


def _scenes(a: argparse.Namespace) -> None:
    from .data.manifest import read_manifest
    from .data.scenes import build_scenes
    from .prepare import build_vocab

    cut = None if a.cutouts == "none" else Path(a.cutouts)
    counts = build_scenes(a.out, a.count, a.seed, cut)
    if cut and not counts["cutouts"]:
        print(
            f"note: no Tux Paint cut-outs under {cut} (apt-get install tuxpaint-stamps-default); shapes only",
            file=sys.stderr,
        )
    vocab, stats = build_vocab(read_manifest(a.out), a.min_count)
    vocab.save(Path(a.out) / "vocab.json")
    vocab.save(Path(a.out) / "novel" / "vocab.json")
    print(
        f"wrote {a.out}: train {counts['train']}, val {counts['val']}, test {counts['test']} scenes; "
        f"{a.out}/novel: {counts['novel']} test scenes with held-out colour-shape combinations"
    )


def _add_prepare(sub: Any) -> None:
    s = sub.add_parser("prepare", formatter_class=HELP, help="import a dataset into manifest.jsonl + vocab.json")
    s.add_argument(
        "--format",
        required=True,
        choices=["karpathy", "coco", "flickr8k", "csv", "jsonl", "folder", "seed"],
        help="the dataset's format (README: Import a dataset)",
    )
    s.add_argument("src", help="dataset file or folder (seed: the seminar's data/ folder)")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--images", help="image root (default: the folder of SRC)")
    s.add_argument("--min-count", type=int, default=5, help="keep words seen at least this often")
    s.add_argument("--split", choices=["train", "val", "test"], help="COCO JSON: the split this file is")
    s.add_argument("--split-ratio", default="0.8,0.1,0.1", help="train,val,test fractions where none is given")
    s.add_argument("--keep-restval", action="store_true", help="Karpathy: do not fold restval into train")
    s.add_argument("--no-check", action="store_true", help="do not check that image files exist")
    s.add_argument("--allow-outside-root", action="store_true", help="accept image paths with '..' or absolute paths")
    s.add_argument("--karpathy", help="seed: dataset_coco.json, to take its split (rows are checked against it)")
    s.add_argument(
        "--features",
        help="an .npy of precomputed features, one row per image in the dataset's order (no images needed)",
    )
    s.set_defaults(func=_prepare)


def _add_extract(sub: Any) -> None:
    s = sub.add_parser(
        "extract", formatter_class=HELP, help="cache encoder features for every image of a prepared dataset"
    )
    s.add_argument("data", help="folder written by `captioner prepare`")
    s.add_argument("--out", help="features folder (default: DATA/features)")
    s.add_argument(
        "--encoder",
        default="efficientnet-lite0",
        help="efficientnet-lite0 (default), -lite1, -lite2; suffix -hc adds an early block (colour); "
        "googlenet-bvlc or googlenet-bvlc-floor (the seminar's, with --encoder-weights)",
    )
    s.add_argument("--encoder-weights", help=WEIGHTS_HELP)
    s.add_argument("--grid", action="store_true", help="also store the spatial grid (for attention)")
    s.add_argument("--batch-size", type=int, default=32, help="images per encoder forward")
    s.add_argument("--workers", type=int, default=2, help="image-decoding processes")
    s.add_argument("--shard", help="I/N: encode only the I-th of N blocks (for several machines); then --merge N")
    s.add_argument("--merge", type=int, metavar="N", help="join N finished shards into the features folder")
    s.set_defaults(func=_extract)


def _add_train(sub: Any) -> None:
    s = sub.add_parser("train", formatter_class=HELP, help="train a decoder on cached features")
    s.add_argument("config", nargs="?", help="TOML preset, e.g. configs/seed.toml")
    s.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.data=runs/open train.lr=3e-4")
    s.add_argument("--resume", action="store_true", help="continue train.out/latest exactly where it stopped")
    s.set_defaults(func=_train)


def _add_evaluate(sub: Any) -> None:
    s = sub.add_parser(
        "evaluate", formatter_class=HELP, help="score a checkpoint (or a predictions file) on a split, with baselines"
    )
    s.add_argument("checkpoint", nargs="?", help="checkpoint folder, e.g. runs/showtell/best")
    s.add_argument("--split", default="test", choices=["train", "val", "test"], help="which split to caption and score")
    s.add_argument("--beam", type=int, default=1, help="beam size (1: greedy)")
    s.add_argument("--data", help="prepared dataset (default: the one the checkpoint was trained on)")
    s.add_argument("--features", help="features folder (default: DATA/features)")
    s.add_argument("--out", help="output folder (default: CHECKPOINT/../eval-SPLIT)")
    s.add_argument("--limit", type=int, help="only the first N images of the split")
    s.add_argument("--predictions", help="score this COCO-format results file instead of a checkpoint")
    s.add_argument("--no-baselines", action="store_true", help="score only the model (no retrieval or class baselines)")
    s.add_argument(
        "--rerank-weight",
        type=float,
        default=RERANK_WEIGHT,
        help="reranker: weight of neighbours' CIDEr-D beside model log-prob",
    )
    s.add_argument(
        "--rerank-tau",
        type=float,
        default=RERANK_TAU,
        help="reranker: temperature of the neighbours' cosine similarities",
    )
    s.add_argument("--no-meteor", action="store_true", help="skip METEOR (saves the JVM start)")
    s.add_argument("--name-threshold", type=float, help=NAME_HELP)
    s.add_argument("--ensemble", nargs="+", default=[], metavar="CHECKPOINT", help=ENSEMBLE_HELP)
    s.set_defaults(func=_evaluate)


def _add_caption(sub: Any) -> None:
    s = sub.add_parser(
        "caption", formatter_class=HELP, help="caption image files, folders, globs, or '-' for paths on stdin"
    )
    s.add_argument(
        "paths", nargs="+", help="image files, folders (searched recursively), globs; '-' reads paths from stdin"
    )
    s.add_argument("--checkpoint", help="checkpoint folder (default: the bundled model)")
    s.add_argument("--json", action="store_true", help="JSON lines: caption, confidence, tags, alternatives")
    s.add_argument("--beam", type=int, default=3, help="beam size (1: greedy)")
    s.add_argument("--n-best", type=int, default=1, help="alternatives to return with --json")
    s.add_argument("--sample", action="store_true", help="sample instead of beam search")
    s.add_argument("--temperature", type=float, default=1.0, help="with --sample: >1 more varied, <1 surer")
    s.add_argument("--batch-size", type=int, default=16, help="images per model call")
    s.add_argument("--name-threshold", type=float, help=NAME_HELP)
    s.add_argument("--ensemble", nargs="+", default=[], metavar="CHECKPOINT", help=ENSEMBLE_HELP)
    s.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    s.add_argument(
        "--bf16",
        action="store_true",
        help="encoder in bf16 autocast: ~2x faster on AMX CPUs, 98.5%% of captions identical in bench/caption_speed.py",
    )
    s.add_argument("--encoder-weights", help=WEIGHTS_HELP)
    s.set_defaults(func=_caption)


def _add_serve(sub: Any) -> None:
    s = sub.add_parser(
        "serve", formatter_class=HELP, help="HTTP service with a web page: POST /caption, GET /health, GET /"
    )
    s.add_argument("--checkpoint", help="checkpoint folder (default: the bundled model)")
    s.add_argument("--ensemble", nargs="+", default=[], metavar="CHECKPOINT", help=ENSEMBLE_HELP)

    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="TCP port")
    s.add_argument("--max-upload-mb", type=float, default=Limits().max_bytes / 2**20, help="larger uploads get 413")
    s.add_argument("--max-pixels", type=int, default=Limits().max_pixels, help="larger images get 413")
    s.add_argument(
        "--body-timeout", type=float, default=Limits().body_timeout_s, help="seconds to receive an upload before 408"
    )
    s.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    s.add_argument("--encoder-weights", help=WEIGHTS_HELP)
    s.set_defaults(func=_serve)


def _add_data(sub: Any) -> None:
    s = sub.add_parser("data", formatter_class=HELP, help="build datasets")
    dsub = s.add_subparsers(dest="dataset", required=True)
    d = dsub.add_parser(
        "open-clipart", formatter_class=HELP, help="real image-text corpus from Debian and npm packages"
    )
    d.add_argument("--out", required=True, help="output folder (manifest, vocabulary, images, features)")
    d.add_argument("--limit", type=int, help="at most this many items per source (for a quick look)")
    d.add_argument("--workers", type=int, default=2, help="SVG-rendering processes")
    d.add_argument("--min-count", type=int, default=5, help="vocabulary: keep words seen this often")
    d.add_argument(
        "--sources",
        nargs="+",
        default=["tuxpaint", "openclipart", "openmoji"],
        choices=["tuxpaint", "openclipart", "openmoji"],
        help="which sources to include",
    )
    d.add_argument("--tuxpaint", help="stamps folder (default /usr/share/tuxpaint/stamps)")
    d.add_argument("--openclipart", help="SVG folder (default /usr/share/openclipart/svg)")
    d.add_argument(
        "--openmoji",
        help="openmoji .tgz from `npm pack openmoji`, or its folder (default node_modules/openmoji)",
    )
    d.set_defaults(func=_open_clipart)
    d = dsub.add_parser(
        "scenes", formatter_class=HELP, help="synthetic compositional scenes with held-out combinations"
    )
    d.add_argument("--out", required=True, help="output folder (manifest, vocabulary, images, features)")
    d.add_argument("--count", type=int, default=3000, help="scenes to draw (train, val and test together)")
    d.add_argument("--seed", type=int, default=0, help="random seed of the scenes")
    d.add_argument("--min-count", type=int, default=1, help="vocabulary: keep words seen this often")
    d.add_argument(
        "--cutouts",
        default="/usr/share/tuxpaint/stamps",
        help="Tux Paint stamps folder for the duck/frog/apple cut-outs (default: Debian's); 'none': shapes only",
    )
    d.set_defaults(func=_scenes)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands; every option's help shows its default."""
    p = argparse.ArgumentParser(prog="captioner", description="Image captioning: prepare, extract, train, caption.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"captioner {version('captioner')}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_prepare, _add_extract, _add_train, _add_evaluate, _add_caption, _add_serve, _add_data):
        add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a subcommand; user errors print one line and exit 2."""
    args = build_parser().parse_args(argv)
    quiet = os.environ.get("RANK", "0") != "0"  # under torchrun only rank 0 talks
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code = args.func(args)
    except CaptionerError as e:
        print(f"captioner: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("captioner: interrupted", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
