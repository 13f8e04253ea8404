"""The `captioner` command's arguments: one function per subcommand, every option with help and default."""

from __future__ import annotations

import argparse
from importlib.metadata import version
from typing import Any

from captioner.config import RERANK_TAU, RERANK_WEIGHT, Limits
from captioner.corpus.rawitem import LANGS, SOURCES

RUNTIMES = ("auto", "torch", "onnx")
HELP = argparse.ArgumentDefaultsHelpFormatter  # every option's help ends with its default
CHECKPOINT_HELP = "checkpoint folder, or an export folder with --runtime onnx (default: the bundled model)"
RUNTIME_HELP = (
    "auto: the checkpoint's own export (CHECKPOINT/onnx, as the bundled model has) in onnxruntime, else PyTorch;"
    " torch: a checkpoint folder; onnx: a folder from `captioner export` (no PyTorch)"
)
NO_PEOPLE_HELP = (
    "skip the people detectors (most of the time a photo takes, bench/caption_speed.py): photos never say"
    " 'a person' from them, and a word for a person is not ruled out"
)
INT8_HELP = "with --runtime onnx: the compact graphs of `export --int8` (int8 decoder, float16 encoder weights)"
NAME_HELP = "copy models: name a photo's top ImageNet class at this probability (default: the checkpoint's; 0: off)"
ENSEMBLE_HELP = "more checkpoints (same vocabulary and features) to decode with, averaging their word distributions"

WEIGHTS_HELP = "weights file for an encoder not installed from a package (googlenet-bvlc: blvc_googlenet.pkl)"


LANG_HELP = "caption language, a BCP-47 tag the model knows such as en or ru (default: English)"


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
        "--lang",
        default="en",
        help="csv/jsonl/folder: the BCP-47 language of captions whose row names none (COCO, Flickr, Karpathy, "
        "seed: always en)",
    )
    s.add_argument(
        "--features",
        help="an .npy of precomputed features, one row per image in the dataset's order (no images needed)",
    )


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


def _add_train(sub: Any) -> None:
    s = sub.add_parser("train", formatter_class=HELP, help="train a decoder on cached features")
    s.add_argument("config", nargs="?", help="TOML preset, e.g. configs/seed.toml")
    s.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.data=runs/open train.lr=3e-4")
    s.add_argument("--resume", action="store_true", help="continue train.out/latest exactly where it stopped")


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
    s.add_argument(
        "--lang",
        help="caption and score in this language (BCP-47 tag; default English): the references "
        "are the split's captions in it, and 1-NN retrieval answers with training captions in it",
    )
    s.add_argument("--name-threshold", type=float, help=NAME_HELP)
    s.add_argument("--ensemble", nargs="+", default=[], metavar="CHECKPOINT", help=ENSEMBLE_HELP)


def _add_caption(sub: Any) -> None:
    s = sub.add_parser(
        "caption", formatter_class=HELP, help="caption image files, folders, globs, or '-' for paths on stdin"
    )
    s.add_argument(
        "paths", nargs="+", help="image files, folders (searched recursively), globs; '-' reads paths from stdin"
    )
    s.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    s.add_argument(
        "--json", action="store_true", help="JSON lines: caption, confidence, tags, alternatives, photo, people"
    )
    s.add_argument("--beam", type=int, default=3, help="beam size (1: greedy)")
    s.add_argument("--n-best", type=int, default=1, help="alternatives to return with --json")
    s.add_argument("--sample", action="store_true", help="sample instead of beam search")
    s.add_argument("--temperature", type=float, default=1.0, help="with --sample: >1 more varied, <1 surer")
    s.add_argument("--batch-size", type=int, default=16, help="images per model call")
    s.add_argument("--lang", help=LANG_HELP)
    s.add_argument("--name-threshold", type=float, help=NAME_HELP)
    s.add_argument("--ensemble", nargs="+", default=[], metavar="CHECKPOINT", help=ENSEMBLE_HELP)
    s.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    s.add_argument(
        "--bf16",
        action="store_true",
        help="encoder in bf16 autocast: ~2x faster on AMX CPUs, 98.5%% of captions identical in bench/caption_speed.py",
    )
    s.add_argument("--encoder-weights", help=WEIGHTS_HELP)
    s.add_argument("--runtime", choices=RUNTIMES, default="auto", help=RUNTIME_HELP)
    s.add_argument("--int8", action="store_true", help=INT8_HELP)
    s.add_argument("--no-people", action="store_true", help=NO_PEOPLE_HELP)
    s.add_argument(
        "--out",
        help="append JSON rows (path, caption, confidence, language, model, hash) to this file; rerun to resume",
    )
    s.add_argument("--shard", help="I/N, with --out: caption the I-th of N blocks of the input into OUT's shard file")
    s.add_argument("--merge", type=int, metavar="N", help="with --out: join the N finished shard files into OUT")


def _add_serve(sub: Any) -> None:
    s = sub.add_parser(
        "serve", formatter_class=HELP, help="HTTP service with a web page: POST /caption, GET /health, GET /"
    )
    s.add_argument("--checkpoint", help=CHECKPOINT_HELP)
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
    s.add_argument("--runtime", choices=RUNTIMES, default="auto", help=RUNTIME_HELP)
    s.add_argument("--int8", action="store_true", help=INT8_HELP)
    s.add_argument("--no-people", action="store_true", help=NO_PEOPLE_HELP)
    s.add_argument(
        "--page", help="a folder `export --web` wrote: served at /page/, cross-origin isolated (threads in the page)"
    )


def _add_export(sub: Any) -> None:
    s = sub.add_parser("export", formatter_class=HELP, help="write a checkpoint as ONNX graphs (needs '.[onnx]')")
    s.add_argument("checkpoint", help="checkpoint folder")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument(
        "--int8",
        action="store_true",
        help="also write compact graphs: the decoder in int8 (dynamic quantization), the encoder in float16 weights",
    )
    s.add_argument("--encoder-weights", help=WEIGHTS_HELP)
    s.add_argument("--web", help="also write a static page that captions in the browser to this folder")
    s.add_argument(
        "--ort-web",
        help="with --web: onnxruntime-web's npm package (.tgz from `npm pack onnxruntime-web`, or a folder)",
    )


def _add_upgrade(sub: Any) -> None:
    s = sub.add_parser(
        "upgrade", formatter_class=HELP, help="build the caption policy (policy.json) of a checkpoint made before it"
    )
    s.add_argument("checkpoint", nargs="+", help="checkpoint folders")
    s.add_argument(
        "--data",
        help="the dataset folder the checkpoints were trained on: its training captions give the vocabulary the "
        "concept tables a model made before them lacks (the same concept in every language; English articles)",
    )


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
        default=list(SOURCES),
        choices=SOURCES,
        help="which sources to include (the emoji styles openmoji, twemoji and noto need --cldr for their names)",
    )
    d.add_argument(
        "--langs",
        default=",".join(LANGS),
        help="caption languages, comma-separated BCP-47 tags: Tux Paint's translations and CLDR's emoji names in "
        "these are added (OpenClipart titles keep whatever language they are in)",
    )
    d.add_argument("--tuxpaint", help="stamps folder (default /usr/share/tuxpaint/stamps)")
    d.add_argument("--openclipart", help="SVG folder (default /usr/share/openclipart/svg)")
    d.add_argument(
        "--openmoji",
        help="openmoji .tgz from `npm pack openmoji`, or its folder (default node_modules/openmoji)",
    )
    d.add_argument("--twemoji", help="`npm pack @twemoji/svg` .tgz or folder (default node_modules/@twemoji/svg)")
    d.add_argument(
        "--noto",
        help="`npm pack emoji-datasource-google` .tgz or folder (default node_modules/emoji-datasource-google)",
    )
    d.add_argument(
        "--cldr", help="`npm pack cldr-annotations-full` .tgz or folder (default node_modules/cldr-annotations-full)"
    )
    d = dsub.add_parser(
        "held-out-style",
        formatter_class=HELP,
        help="an open corpus with one emoji style left out of training and tested on emoji trained in others",
    )
    d.add_argument("data", help="open corpus folder (`captioner data open-clipart`)")
    d.add_argument("--out", required=True, help="output folder (manifest, vocabulary; features link to DATA's)")
    d.add_argument("--style", default="twemoji", help="the emoji style never trained on")
    d.add_argument("--only", help="train on this emoji style only (the one-style comparison)")
    d.add_argument("--min-count", type=int, default=2, help="vocabulary: keep words seen this often")
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands; every option's help shows its default."""
    p = argparse.ArgumentParser(prog="captioner", description="Image captioning: prepare, extract, train, caption.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"captioner {version('captioner')}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (
        _add_prepare,
        _add_extract,
        _add_train,
        _add_evaluate,
        _add_caption,
        _add_serve,
        _add_export,
        _add_upgrade,
        _add_data,
    ):
        add(sub)
    return p
