"""The `captioner` command: argparse subcommands mapped onto library functions; no logic here."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from captioner.cli.parser import build_parser
from captioner.errors import CaptionerError

if TYPE_CHECKING:
    from captioner.api import Captioner

log = logging.getLogger("captioner")


def _prepare(a: argparse.Namespace) -> None:
    from captioner.corpus.prepare import prepare
    from captioner.data.manifest import parse_ratios

    opts: dict[str, object] = {
        "ratios": parse_ratios(a.split_ratio),
        "keep_restval": a.keep_restval,
        "allow_outside_root": a.allow_outside_root,
    }
    if a.split:
        opts["split"] = a.split
    if a.karpathy:
        opts["karpathy"] = a.karpathy
    opts["lang"] = a.lang
    summary = prepare(a.format, a.src, a.out, a.images, a.min_count, check=not a.no_check, features=a.features, **opts)
    _print_summary(summary, Path(a.out))


def _print_summary(summary: dict, out: Path) -> None:
    v = summary["vocab"]
    print(f"wrote {out / 'manifest.jsonl'}: {summary['images']} images, {summary['captions']} captions")
    print(f"  splits: {json.dumps(summary['splits'])}  sources: {json.dumps(summary['sources'])}")
    print(f"  caption languages: {json.dumps(summary['languages'])}")
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
    from captioner.features.extract import extract, merge_shards
    from captioner.train.distributed import barrier, setup, teardown

    out = Path(a.out) if a.out else Path(a.data) / "features"
    if a.merge:
        r = merge_shards(a.data, out, a.merge)
        print(f"merged {a.merge} shards into {out}: {r.total - len(r.failed)} of {r.total} images have features")
        return
    shard, ddp = None, None
    if a.shard:
        shard = _shard(a.shard)
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


def _held_out_style(a: argparse.Namespace) -> None:
    from captioner.corpus.heldout import write_held_out_style

    summary = write_held_out_style(a.data, a.out, a.style, a.only, a.min_count)
    _print_summary(summary, Path(a.out))


def _open_clipart(a: argparse.Namespace) -> None:
    from captioner.corpus.opencorpus import build_open_corpus
    from captioner.data.manifest import check_lang

    names = ("tuxpaint", "openclipart", "openmoji", "twemoji", "noto", "cldr")
    paths = {k: Path(getattr(a, k)) for k in names if getattr(a, k)}
    langs = tuple(check_lang(t.strip(), "--langs") for t in a.langs.split(",") if t.strip())
    summary = build_open_corpus(
        a.out, limit=a.limit, workers=a.workers, sources=a.sources, paths=paths, min_count=a.min_count, langs=langs
    )
    _print_summary(summary, Path(a.out))
    print(
        f"  {summary['render_failures']} images failed to render (named in the warnings above); "
        f"{summary['near_duplicate_groups']} near-duplicate groups "
        f"({summary['near_duplicate_images']} images) each kept within one split"
    )


def _train(a: argparse.Namespace) -> None:
    from captioner.config import load_config
    from captioner.train.loop import train

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
        langs = [k.removeprefix("CIDEr-D ") for k in best if k.startswith("CIDEr-D ")]
        each = f", the mean over {', '.join(langs)}" if langs else ""
        print(f"  best validation CIDEr-D {best['CIDEr-D']:.3f} (BLEU-4 {b4:.3f}{each}), epoch {ep}")
    elif any("val_loss" in h for h in prog.history):
        best = min(prog.history, key=lambda h: h["val_loss"])
        print(
            f"  no captions decoded (train.val_images=0): best/ is epoch {best['epoch']}, "
            f"validation loss {best['val_loss']:.3f}"
        )
    else:
        best = min(prog.history, key=lambda h: h["train_loss"])
        print(f"  no validation split: best/ is epoch {best['epoch']}, training loss {best['train_loss']:.3f}")


def _evaluate(a: argparse.Namespace) -> None:
    from captioner.evaluate.run import evaluate, score_predictions

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
        lang=a.lang,
    )
    width = max(len(n) for n in ["model", *r["baselines"]])  # one column for the names, however long
    _print_metrics("model", r["metrics"], width)
    for name, m in r["baselines"].items():
        _print_metrics(name, m, width)
    h = r["health"]
    print(
        f"health: {h['distinct_pct']:.1f}% distinct, {h['vocab_used']} words used, mean length {h['mean_length']:.2f}, "
        f"{h['half_phrase_pct']:.1f}% end mid-phrase, most common {h['most_common']!r} "
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


def _load(a: argparse.Namespace, **more: Any) -> Captioner:
    """Captioner.load with the options `caption` and `serve` share, and `more` of its keywords."""
    from captioner.api import Captioner

    return Captioner.load(
        a.checkpoint, a.device, ensemble=a.ensemble, encoder_weights=a.encoder_weights, runtime=a.runtime,
        int8=a.int8, people=not a.no_people, **more,
    )  # fmt: skip


def _caption(a: argparse.Namespace) -> int:
    from captioner.cli.caption import caption_paths, gather

    paths = list(gather(a.paths))
    if not paths:
        raise CaptionerError("no images found in the given paths")
    if (a.shard or a.merge) and not a.out:
        raise CaptionerError("--shard and --merge write files: give --out FILE")
    if a.out and a.merge:
        from captioner.batch import merge

        print(f"merged {a.merge} shards into {a.out}: {merge(paths, Path(a.out), a.merge)} rows", file=sys.stderr)
        return 0
    cap = _load(a, bf16=a.bf16, name_threshold=a.name_threshold)
    if a.out:
        return _caption_to_file(a, cap, paths)
    progress = len(paths) > a.batch_size  # a bar on a terminal, a log line every 30 s otherwise
    temperature = a.temperature if a.sample else 0.0
    failed = caption_paths(
        cap, paths, sys.stdout, sys.stderr, a.json, a.beam, a.n_best, temperature, a.batch_size, progress, a.lang
    )
    if failed:
        print(f"captioner: {failed} of {len(paths)} files could not be captioned", file=sys.stderr)
        return 1
    return 0


def _caption_to_file(a: argparse.Namespace, cap: Captioner, paths: list[str]) -> int:
    from captioner.batch import Decoding, caption_to_file

    shard = _shard(a.shard) if a.shard else None
    how = Decoding(a.beam, a.temperature if a.sample else 0.0, a.lang)
    progress = len(paths) > a.batch_size
    done, skipped, failed = caption_to_file(cap, paths, Path(a.out), how, a.batch_size, shard, sys.stderr, progress)
    print(f"{a.out}: {done} captioned now ({failed} could not be), {skipped} were there already", file=sys.stderr)
    return 1 if failed else 0


def _shard(text: str) -> tuple[int, int]:
    """'0/4' -> (0, 4)."""
    i, _, n = text.partition("/")
    if not (i.isdigit() and n.isdigit()) or int(n) < 1:
        raise CaptionerError(f"--shard {text!r}: expected I/N, e.g. 0/4")
    return int(i), int(n)


def _serve(a: argparse.Namespace) -> None:
    try:
        import uvicorn

        from captioner.serve.app import Limits, create_app
    except ImportError as e:
        raise CaptionerError(f"serve needs {e.name}: pip install fastapi uvicorn python-multipart") from None

    cap = _load(a)
    limits = Limits(
        max_bytes=int(a.max_upload_mb * 1024 * 1024), max_pixels=a.max_pixels, body_timeout_s=a.body_timeout
    )
    print(f"serving {cap.runtime.info['model']} on http://{a.host}:{a.port}/", file=sys.stderr)
    page = Path(a.page) if a.page else None
    if page is not None and not (page / "index.html").is_file():
        raise CaptionerError(f"--page {page}: no index.html; write one with `captioner export CHECKPOINT --web DIR`")
    uvicorn.run(create_app(cap, limits, page), host=a.host, port=a.port, log_level="warning")


def _export(a: argparse.Namespace) -> None:
    from captioner.runtime.export import export

    if a.web and not a.ort_web:
        raise CaptionerError("--web needs --ort-web: the .tgz that `npm pack onnxruntime-web` writes")
    m = export(a.checkpoint, a.out, a.int8, a.encoder_weights)
    print(f"wrote {a.out}: {m['kind']} decoder reading {m['feature']} features")
    for name, f in m["files"].items():
        if name.endswith(".onnx"):
            print(f"  {name:20s} {f['bytes'] / 2**20:7.1f} MiB")
    if a.web:
        from captioner.runtime.page import download_bytes, write_page

        sizes = write_page(Path(a.out), Path(a.web), Path(a.ort_web))
        plain = sum(n for name, n in sizes.items() if not name.endswith(".gz")) / 2**20
        print(
            f"wrote {a.web}: {plain:.1f} MiB, {download_bytes(sizes) / 2**20:.1f} MiB to download gzipped "
            "(`captioner serve --page`); serve it with any static file server, e.g."
        )
        print(f"  python -m http.server -d {a.web} 8080   and open http://127.0.0.1:8080/")


def _upgrade(a: argparse.Namespace) -> None:
    from captioner.runtime.onnx_runtime import refresh_own_export
    from captioner.train.checkpoint import resolve, upgrade

    for path in a.checkpoint:
        print(upgrade(path, a.data))
        refreshed = refresh_own_export(resolve(path))
        if refreshed:
            print(refreshed)


def _scenes(a: argparse.Namespace) -> None:
    from captioner.corpus.prepare import build_vocab
    from captioner.corpus.scenes import build_scenes
    from captioner.data.manifest import read_manifest

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


HANDLERS: dict[str, Callable[[argparse.Namespace], int | None]] = {
    "prepare": _prepare,
    "extract": _extract,
    "train": _train,
    "evaluate": _evaluate,
    "caption": _caption,
    "serve": _serve,
    "export": _export,
    "upgrade": _upgrade,
    "data open-clipart": _open_clipart,
    "data held-out-style": _held_out_style,
    "data scenes": _scenes,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a subcommand; user errors print one line and exit 2."""
    args = build_parser().parse_args(argv)
    handler = HANDLERS[f"{args.command} {args.dataset}" if args.command == "data" else args.command]
    quiet = os.environ.get("RANK", "0") != "0"  # under torchrun only rank 0 talks
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code = handler(args)
    except CaptionerError as e:
        print(f"captioner: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("captioner: interrupted", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
