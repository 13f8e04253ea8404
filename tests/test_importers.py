"""Each importer on tiny files in the exact schema of the real dataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from captioner.cli.main import main
from captioner.corpus.prepare import prepare
from captioner.data.importers import coco, flickr8k, folder, karpathy, table
from captioner.data.manifest import Item, check_relative, read_manifest, split_by_hash, write_manifest
from captioner.errors import CaptionerError
from captioner.text.vocab import Vocab


def _karpathy_json(path: Path) -> Path:
    def im(fp: str, fn: str, split: str, cid: int, caps: list[str]) -> dict:
        sents = [
            {"tokens": c.lower().strip(".").split(), "raw": c, "imgid": cid, "sentid": cid * 10 + k}
            for k, c in enumerate(caps)
        ]
        return {
            "filepath": fp,
            "sentids": [s["sentid"] for s in sents],
            "filename": fn,
            "imgid": cid,
            "split": split,
            "sentences": sents,
            "cocoid": 1000 + cid,
        }

    data = {
        "dataset": "coco",
        "images": [
            im(
                "val2014",
                "COCO_val2014_000000000042.jpg",
                "restval",
                0,
                ["A man riding a bike.", "A cyclist on a road."],
            ),
            im("train2014", "COCO_train2014_000000000009.jpg", "train", 1, ["Two dogs play.", "  "]),
            im("val2014", "COCO_val2014_000000000073.jpg", "val", 2, ["A red bus."]),
            im("val2014", "COCO_val2014_000000000074.jpg", "test", 3, ["A cat on a mat."]),
        ],
    }
    path.write_text(json.dumps(data))
    return path


def test_karpathy_restval_folds_into_train(tmp_path: Path) -> None:
    items = list(karpathy(_karpathy_json(tmp_path / "dataset_coco.json")))
    assert [i.image for i in items] == [
        "val2014/COCO_val2014_000000000042.jpg",
        "train2014/COCO_train2014_000000000009.jpg",
        "val2014/COCO_val2014_000000000073.jpg",
        "val2014/COCO_val2014_000000000074.jpg",
    ]
    assert [i.split for i in items] == ["train", "train", "val", "test"]
    assert items[0].captions == ["A man riding a bike.", "A cyclist on a road."]
    assert items[1].captions == ["Two dogs play."]  # whitespace-only caption dropped
    assert items[0].extra == {"id": 1000}


def test_karpathy_flickr_without_filepath_and_tokens_only(tmp_path: Path) -> None:
    data = {
        "images": [
            {
                "filename": "1000268201_693b08cb0e.jpg",
                "split": "test",
                "sentences": [{"tokens": ["a", "child", "in", "pink"]}],
            }
        ],
        "dataset": "flickr8k",
    }
    (tmp_path / "dataset_flickr8k.json").write_text(json.dumps(data))
    (item,) = karpathy(tmp_path / "dataset_flickr8k.json")
    assert item == Item("1000268201_693b08cb0e.jpg", ["a child in pink"], "test", "dataset_flickr8k", langs=["en"])


def _coco_json(path: Path) -> Path:
    data = {
        "info": {},
        "licenses": [],
        "images": [
            {
                "license": 3,
                "file_name": "COCO_val2014_000000391895.jpg",
                "height": 360,
                "width": 640,
                "id": 391895,
            },
            {
                "license": 4,
                "file_name": "COCO_val2014_000000522418.jpg",
                "height": 480,
                "width": 640,
                "id": 522418,
            },
        ],
        "annotations": [
            {"image_id": 391895, "id": 770337, "caption": "A man with a red helmet on a small moped."},
            {
                "image_id": 522418,
                "id": 766168,
                "caption": "A woman wearing a net on her head cutting a cake. ",
            },
            {"image_id": 391895, "id": 771687, "caption": "Man riding a motor bike on a dirt road."},
        ],
    }
    path.write_text(json.dumps(data))
    return path


def test_coco_groups_annotations_and_takes_given_split(tmp_path: Path) -> None:
    items = list(coco(_coco_json(tmp_path / "captions_val2014.json"), split="val"))
    assert [(i.image, len(i.captions), i.split) for i in items] == [
        ("COCO_val2014_000000391895.jpg", 2, "val"),
        ("COCO_val2014_000000522418.jpg", 1, "val"),
    ]
    assert items[1].captions == ["A woman wearing a net on her head cutting a cake."]
    assert items[0].extra == {"id": 391895}


def test_coco_ratio_split_is_deterministic(tmp_path: Path) -> None:
    items = list(coco(_coco_json(tmp_path / "c.json"), ratios=(0.5, 0.25, 0.25)))
    assert [i.split for i in items] == [split_by_hash(i.image, (0.5, 0.25, 0.25)) for i in items]


def test_coco_unknown_image_id_is_named(tmp_path: Path) -> None:
    path = _coco_json(tmp_path / "c.json")
    data = json.loads(path.read_text())
    data["annotations"][2]["image_id"] = 5
    path.write_text(json.dumps(data))
    with pytest.raises(CaptionerError, match=r"annotations\[2\]: image_id 5"):
        list(coco(path))


def test_flickr8k_token_file_and_split_lists(tmp_path: Path) -> None:
    (tmp_path / "Flickr8k.token.txt").write_text(
        "1000268201_693b08cb0e.jpg#0\tA child in a pink dress is climbing up a set of stairs .\n"
        "1000268201_693b08cb0e.jpg#1\tA girl going into a wooden building .\n"
        "1001773457_577c3a7d70.jpg#0\tA black dog and a spotted dog are fighting\n"
        "1002674143_1b742ab4b8.jpg#0\tA little girl covered in paint .\n"
        "9999999999_unlisted.jpg#0\tNot in any list .\n"
    )
    (tmp_path / "Flickr_8k.trainImages.txt").write_text("1000268201_693b08cb0e.jpg\n")
    (tmp_path / "Flickr_8k.devImages.txt").write_text("1001773457_577c3a7d70.jpg\n")
    (tmp_path / "Flickr_8k.testImages.txt").write_text("1002674143_1b742ab4b8.jpg\n")
    items = list(flickr8k(tmp_path))
    assert [(i.image, i.split, len(i.captions)) for i in items] == [
        ("1000268201_693b08cb0e.jpg", "train", 2),
        ("1001773457_577c3a7d70.jpg", "val", 1),
        ("1002674143_1b742ab4b8.jpg", "test", 1),
    ]


def test_flickr8k_bad_line_names_line(tmp_path: Path) -> None:
    (tmp_path / "Flickr8k.token.txt").write_text("a.jpg#0\tok\nbroken line without tab\n")
    with pytest.raises(CaptionerError, match=r"Flickr8k.token.txt:2"):
        list(flickr8k(tmp_path))


def test_csv_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "caps.csv").write_text(
        'image,caption,split\na.png,"A dog, running.",train\na.png,A dog.,\nb.png,A cat.,test\n'
    )
    items = list(table(tmp_path / "caps.csv"))
    assert [(i.image, i.captions, i.split) for i in items] == [
        ("a.png", ["A dog, running.", "A dog."], "train"),
        ("b.png", ["A cat."], "test"),
    ]
    (tmp_path / "caps.jsonl").write_text(
        '{"image": "a.png", "captions": ["one", "two"]}\n{"image": "b.png", "caption": "three"}\n'
    )
    items = list(table(tmp_path / "caps.jsonl"))
    assert [(i.image, i.captions) for i in items] == [("a.png", ["one", "two"]), ("b.png", ["three"])]


def test_csv_without_header_fields_is_explained(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("path,text\na.png,hi\n")
    with pytest.raises(CaptionerError, match="bad.csv: CSV header must name an 'image'"):
        list(table(tmp_path / "bad.csv"))


def test_folder_importer_reads_first_line(folder_dataset: Path) -> None:
    items = list(folder(folder_dataset))
    assert len(items) == 12
    assert items[0] == Item("img00.png", ["A red square number 0."], split_by_hash("img00.png"), "folder", langs=["en"])


def test_manifest_round_trip_and_errors(tmp_path: Path) -> None:
    items = [Item("a/b.png", ["x y"], "train", "s", "CC0"), Item("c.png", ["z"], "test")]
    write_manifest(tmp_path, items, tmp_path)
    assert read_manifest(tmp_path) == items
    (tmp_path / "manifest.jsonl").write_text('{"image": "a.png", "captions": ["x"], "split": "train"}\n{"image": 3}\n')
    with pytest.raises(CaptionerError, match=r"manifest.jsonl:2: field 'image'"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.jsonl").write_text('{"image": "../etc/passwd", "captions": ["x"], "split": "train"}\n')
    with pytest.raises(CaptionerError, match="must be relative to the dataset root"):
        read_manifest(tmp_path)


def test_prepare_writes_manifest_vocab_and_names_missing_images(folder_dataset: Path, tmp_path: Path) -> None:
    summary = prepare("folder", folder_dataset, tmp_path / "out", min_count=2)
    vocab = Vocab.load(tmp_path / "out" / "vocab.json")
    assert {"a", "square", "number"} <= set(vocab.itos)
    assert summary["images"] == 12 and summary["vocab"]["size"] == len(vocab)
    (folder_dataset / "extra.csv").write_text("image,caption\nimg00.png,x\nnope1.png,y\nnope2.png,z\n")
    with pytest.raises(CaptionerError, match=r"2 of 3 images are missing under .*: nope1.png, nope2.png"):
        prepare("csv", folder_dataset / "extra.csv", tmp_path / "out2")


def test_cli_prepare_prints_stats_and_errors_without_traceback(
    folder_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert (
        main(
            [
                "prepare",
                "--format",
                "folder",
                str(folder_dataset),
                "--out",
                str(tmp_path / "o"),
                "--min-count",
                "2",
                "--split-ratio",
                "1,0,0",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "12 images, 12 captions" in out and "UNK rate" in out and '"train": 12' in out
    (tmp_path / "broken.json").write_text('{"images": [')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "captioner.cli",
            "prepare",
            "--format",
            "karpathy",
            str(tmp_path / "broken.json"),
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "broken.json: invalid JSON at line 1" in proc.stderr and "Traceback" not in proc.stderr


def test_karpathy_path_escaping_the_root_is_refused(tmp_path: Path) -> None:
    data = {"images": [{"filepath": "../..", "filename": "etc/passwd", "split": "train", "sentences": [{"raw": "x"}]}]}
    (tmp_path / "k.json").write_text(json.dumps(data))
    with pytest.raises(CaptionerError, match=r"images\[0\]: image path '../../etc/passwd' must be relative"):
        list(karpathy(tmp_path / "k.json"))


def test_non_utf8_token_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "Flickr8k.token.txt").write_bytes(b"a.jpg#0\tcaf\xe9 au lait\n")
    with pytest.raises(CaptionerError, match=r"Flickr8k.token.txt: not UTF-8 text \(byte 11\)"):
        list(flickr8k(tmp_path))


def test_absurdly_long_caption_is_named(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("image,caption\na.png," + "word " * 1000 + "\n")
    with pytest.raises(CaptionerError, match=r"c.csv:2: caption is 4999 characters"):
        list(table(tmp_path / "c.csv"))


@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abcxyz/._-", min_size=1, max_size=12),
            st.lists(st.text(max_size=30), min_size=1, max_size=3),
            st.sampled_from(["train", "val", "test"]),
        ),
        max_size=8,
        unique_by=lambda t: t[0],
    )
)
@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_manifest_write_read_round_trip(tmp_path: Path, rows) -> None:
    items = []
    for image, caps, split in rows:
        try:
            items.append(Item(check_relative(image, "t"), caps, split))
        except CaptionerError:
            continue
    if not items or len({i.image for i in items}) < len(items):
        return
    write_manifest(tmp_path, items, tmp_path)
    assert read_manifest(tmp_path) == items


def test_paths_outside_the_root_need_an_explicit_opt_in(folder_dataset: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "list.csv").write_text("image,caption\n../src/img00.png,a red square\n")
    argv = [
        "prepare",
        "--format",
        "csv",
        str(tmp_path / "list.csv"),
        "--out",
        str(tmp_path / "o"),
        "--images",
        str(tmp_path / "sub"),
        "--min-count",
        "1",
        "--split-ratio",
        "1,0,0",
    ]
    assert main(argv) == 2
    assert "'../src/img00.png' must be relative to the dataset root" in capsys.readouterr().err
    (tmp_path / "sub").mkdir()
    assert main([*argv, "--allow-outside-root"]) == 0
    assert read_manifest(tmp_path / "o")[0].image == "../src/img00.png"  # the opt-in is recorded


def test_caption_languages_through_import_and_manifest(tmp_path: Path, capsys) -> None:
    """Every caption carries a BCP-47 tag: English datasets say en, tables take a column or --lang, and the
    manifest round-trips them; an old manifest without tags reads as undetermined."""
    (tmp_path / "c.jsonl").write_text(
        '{"image": "a.png", "captions": ["a cat", "кошка"], "lang": "ru"}\n'
        '{"image": "a.png", "caption": "un gatto", "lang": "it"}\n'
        '{"image": "b.png", "caption": "a dog"}\n'
    )
    items = {it.image: it for it in table(tmp_path / "c.jsonl", lang="en")}
    assert items["a.png"].langs == ["ru", "ru", "it"] and items["b.png"].langs == ["en"]
    assert [it.langs for it in table(tmp_path / "c.jsonl", lang="pt-BR")][1] == ["pt-BR"]
    write_manifest(tmp_path / "m", items.values(), tmp_path)
    assert {it.image: it for it in read_manifest(tmp_path / "m")} == items  # round trip
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "manifest.jsonl").write_text('{"image": "x.png", "captions": ["a", "b"], "split": "train"}\n')
    assert read_manifest(tmp_path / "old")[0].langs == ["und", "und"]
    (tmp_path / "old" / "manifest.jsonl").write_text(
        '{"image": "x.png", "captions": ["a", "b"], "split": "train", "langs": ["en"]}\n'
    )
    with pytest.raises(CaptionerError, match=r"manifest.jsonl:1: 'langs' must list one language tag per caption"):
        read_manifest(tmp_path / "old")
    (tmp_path / "bad.csv").write_text("image,caption,lang\nx.png,a cat,english\n")
    with pytest.raises(CaptionerError, match=r"bad.csv:2: 'english' is not a BCP-47 language tag"):
        list(table(tmp_path / "bad.csv"))
    assert (item := next(iter(coco(_coco_json(tmp_path / "cc.json"), split="train")))).langs == ["en"] * len(
        item.captions
    )
    args = ["prepare", "--format", "jsonl", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "p"), "--no-check"]
    assert main([*args, "--lang", "de"]) == 0
    assert 'caption languages: {"ru": 2, "it": 1, "de": 1}' in capsys.readouterr().out
