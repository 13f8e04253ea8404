"""The open-corpus builder on tiny sources in the exact layout of the Debian and npm packages."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captioner.corpus.emoji import openmoji
from captioner.corpus.opencorpus import (
    build_open_corpus,
    cap_shared,
    clean_description,
    clean_title,
    stamp_captions,
    svg_metadata,
    title_rule,
    unidentified_name,
)
from captioner.corpus.rawitem import Raw
from captioner.corpus.splits import assign_splits, near_duplicate_pairs
from captioner.data.manifest import Item, read_manifest
from captioner.errors import CaptionerError

pytest.importorskip("cairosvg")


def svg(shape: str, title: str = "", desc: str = "", creator: str = "Some Artist") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<svg xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:cc="http://web.resource.org/cc/"
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://www.w3.org/2000/svg"
 width="200" height="120" version="1.0">
 <metadata><rdf:RDF><cc:Work rdf:about="">
  <dc:title>{title}</dc:title><dc:description>{desc}</dc:description>
  <dc:creator><cc:Agent><dc:title>{creator}</dc:title></cc:Agent></dc:creator>
  <dc:format>image/svg+xml</dc:format>
  <dc:type rdf:resource="http://purl.org/dc/dcmitype/StillImage"/>
 </cc:Work></rdf:RDF></metadata>
 {shape}
</svg>"""


CIRCLE = '<circle cx="60" cy="60" r="40" fill="#d00"/>'
RECT = '<rect x="20" y="30" width="150" height="60" fill="#03c"/>'
TRI = '<path d="M10 110 L100 10 L190 110 Z" fill="#0a0"/>'


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    tux = tmp_path / "stamps" / "animals" / "cats"
    tux.mkdir(parents=True)
    rgba = Image.new("RGBA", (90, 60), (0, 0, 0, 0))
    rgba.paste((200, 120, 40, 255), (20, 10, 70, 50))
    rgba.save(tux / "cat.png")
    (tux / "cat.txt").write_text("A ginger cat.\nfr.utf8=Un chat roux.\nde.utf8=Eine Katze.\n")
    (tux / "nocaption.png").write_bytes((tux / "cat.png").read_bytes())
    (tux / "dog.svg").write_text(svg(TRI))
    (tux / "dog.txt").write_text("A green dog.\n")

    oc = tmp_path / "openclipart" / "animals"
    oc.mkdir(parents=True)
    (oc / "ball_nicu_01.svg").write_text(svg(CIRCLE, "Clipart by Nicu Buculei - red_ball_10"))
    (oc / "icon_01.svg").write_text(
        svg(
            RECT,
            "Part of the Flat Icon Collection (Wed Aug 25 23:29:46 2004)",
            "A blue brick lying flat on the ground.",
        )
    )
    (oc / "mail_01.svg").write_text(svg(RECT.replace("#03c", "#c0c"), "", "jean.victor.balin@gmail.com"))
    (oc / "copy_01.svg").symlink_to(oc / "ball_nicu_01.svg")
    (oc / "bytecopy_01.svg").write_text((oc / "ball_nicu_01.svg").read_text())
    (oc / "broken_01.svg").write_text(svg("", "A broken drawing").replace("<svg", "<svg><oops"))

    meta = [
        {"emoji": "x", "hexcode": "1F600", "annotation": "grinning face", "skintone": ""},
        {"emoji": "x", "hexcode": "1F476", "annotation": "baby", "skintone": ""},
        {"emoji": "x", "hexcode": "1F476-1F3FD", "annotation": "baby: medium skin tone", "skintone": 3},
        {"emoji": "x", "hexcode": "1F601", "annotation": "beaming face", "skintone": ""},
        {"emoji": "x", "hexcode": "E000", "annotation": "openmoji extra", "skintone": ""},
    ]
    moji = npm_pack(tmp_path / "openmoji-17.0.0.tgz", {
        "data/openmoji.json": json.dumps(meta).encode(),
        "color/svg/1F600.svg": svg(CIRCLE.replace("#d00", "#fc0")).encode(),
        "color/svg/1F476.svg": svg(TRI.replace("#0a0", "#f9c")).encode(),
        "color/svg/1F476-1F3FD.svg": svg(TRI).encode(),
        "color/svg/1F601.svg": svg(CIRCLE.replace("#d00", "#fc0")).encode(),
        "color/svg/E000.svg": svg(RECT.replace("#03c", "#0cc")).encode(),
    })  # fmt: skip
    twemoji = npm_pack(tmp_path / "twemoji-svg-15.0.0.tgz", {
        "license": b"MIT", "1f600.svg": svg(CIRCLE.replace("#d00", "#fd3")).encode(),
        "1f476.svg": svg(RECT.replace("#03c", "#fca")).encode(), "1f476-1f3fd.svg": svg(TRI).encode(),
    })  # fmt: skip
    noto_meta = [
        {"unified": "1F600", "image": "1f600.png", "has_img_google": True},
        {"unified": "1F476", "image": "1f476.png", "has_img_google": True},
        {"unified": "2764-FE0F", "image": "2764-fe0f.png", "has_img_google": False},
    ]
    noto = npm_pack(tmp_path / "emoji-datasource-google-16.0.0.tgz", {
        "emoji.json": json.dumps(noto_meta).encode(), "img/google/64/1f600.png": png((250, 200, 0)),
        "img/google/64/1f476.png": png((250, 180, 160)), "img/google/64/2764-fe0f.png": png((220, 0, 0)),
    })  # fmt: skip

    def names(pairs: dict[str, tuple[str, str]]) -> bytes:
        table = {ch: {"default": [n], "tts": [n]} for ch, (n, _) in pairs.items()}
        return json.dumps({"annotations": {"identity": {"language": "x"}, "annotations": table}}).encode()

    cldr = npm_pack(tmp_path / "cldr-annotations-full-48.2.0.tgz", {
        "annotations/en/annotations.json": names({"😀": ("grinning face", ""), "👶": ("baby", "")}),
        "annotations/ru/annotations.json": names({"😀": ("широко улыбается", ""), "👶": ("ребенок", "")}),
        "annotations/it/annotations.json": names({"😀": ("faccina con un gran sorriso", "")}),
    })  # fmt: skip
    return {"tuxpaint": tmp_path / "stamps", "openclipart": tmp_path / "openclipart", "openmoji": moji,
            "twemoji": twemoji, "noto": noto, "cldr": cldr}  # fmt: skip


def npm_pack(path: Path, files: dict[str, bytes]) -> Path:
    """A .tgz as `npm pack` writes it: every file under package/."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def png(rgb: tuple[int, int, int]) -> bytes:
    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    im.paste((*rgb, 255), (12, 12, 52, 52))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_build_open_corpus(sources: dict[str, Path], tmp_path: Path, caplog) -> None:
    summary = build_open_corpus(tmp_path / "out", workers=1, paths=sources, langs=("en", "ru", "fr"))
    items = {it.image: it for it in read_manifest(tmp_path / "out")}
    assert {k: list(zip(v.langs, v.captions, strict=True)) for k, v in items.items()} == {
        "images/tuxpaint/animals/cats/cat.png": [("en", "A ginger cat."), ("fr", "Un chat roux.")],  # no de asked
        "images/tuxpaint/animals/cats/dog.png": [("en", "A green dog.")],
        "images/openclipart/animals/ball_nicu_01.png": [("en", "red ball")],
        "images/openclipart/animals/icon_01.png": [("en", "A blue brick lying flat on the ground.")],
        "images/openmoji/1f600.png": [("en", "grinning face"), ("ru", "широко улыбается")],
        "images/openmoji/1f476.png": [("en", "baby"), ("ru", "ребенок")],
        "images/openmoji/1f601.png": [("en", "beaming face")],  # CLDR does not name it: OpenMoji's English
        "images/openmoji/e000.png": [("en", "openmoji extra")],
        "images/twemoji/1f600.png": [("en", "grinning face"), ("ru", "широко улыбается")],
        "images/twemoji/1f476.png": [("en", "baby"), ("ru", "ребенок")],  # no skin tone
        "images/noto/1f600.png": [("en", "grinning face"), ("ru", "широко улыбается")],
        "images/noto/1f476.png": [("en", "baby"), ("ru", "ребенок")],  # no image without has_img_google
    }
    licences = {k.split("/")[1]: v.license for k, v in items.items()}
    assert licences == {"tuxpaint": "GPL-2.0", "openclipart": "public-domain", "openmoji": "CC-BY-SA-4.0",
                        "twemoji": "CC-BY-4.0", "noto": "Apache-2.0"}  # fmt: skip
    assert items["images/tuxpaint/animals/cats/cat.png"].source == "tuxpaint"
    # one emoji's styles share a split, and so do the same pixels under two names
    for key in ("1f600", "1f476"):
        assert len({items[f"images/{s}/{key}.png"].split for s in ("openmoji", "twemoji", "noto")}) == 1
    assert items["images/openmoji/1f600.png"].split == items["images/openmoji/1f601.png"].split
    img = Image.open(tmp_path / "out" / "images/tuxpaint/animals/cats/cat.png")
    assert img.size == (256, 256) and img.getpixel((2, 2)) == (255, 255, 255)
    assert Image.open(tmp_path / "out" / "images/noto/1f600.png").size == (256, 256)
    assert summary["render_failures"] == 1 and "broken_01.svg: skipped" in caplog.text
    assert summary["languages"] == {"en": 12, "ru": 6, "fr": 1}
    assert (tmp_path / "out" / "features" / "index.json").exists()
    vocab = json.loads((tmp_path / "out" / "vocab.json").read_text())
    assert set(vocab["langs"]) <= {"en", "ru", "fr"} and "<en>" in vocab["itos"]


def test_missing_source_names_the_install_command(tmp_path: Path, sources: dict[str, Path]) -> None:
    with pytest.raises(CaptionerError, match=r"apt-get install openclipart-svg"):
        build_open_corpus(tmp_path / "o", sources=["openclipart"], paths={"openclipart": tmp_path / "nope"})
    with pytest.raises(CaptionerError, match=r"npm pack openmoji"):
        list(openmoji(tmp_path / "nope.tgz"))
    for style, hint in (("twemoji", "npm pack @twemoji/svg"), ("noto", "npm pack emoji-datasource-google")):
        with pytest.raises(CaptionerError, match=f"{style}: .*not found; install it with `{hint}"):
            build_open_corpus(tmp_path / "o", sources=[style], paths={style: tmp_path / "x", "cldr": sources["cldr"]})
        with pytest.raises(CaptionerError, match="cldr: .*`npm pack cldr-annotations-full.*names the emoji styles"):
            build_open_corpus(tmp_path / "o", sources=[style], paths={"cldr": tmp_path / "none"})


def test_a_broken_cldr_file_is_named(tmp_path: Path) -> None:
    from captioner.corpus.emoji import cldr_names

    bad = npm_pack(tmp_path / "cldr.tgz", {"annotations/ru/annotations.json": b'{"annotations": []}'})
    with pytest.raises(CaptionerError, match=r"cldr: .*cldr.tgz: annotations/ru/annotations.json is not CLDR's"):
        cldr_names(bad, ("en", "ru"))


def test_tux_paint_translations() -> None:
    text = "A ram.\nru.utf8=Баран.\npt_BR.utf8=Um carneiro.\nsr@latin.utf8=Ovan.\nde.utf8=\nfr.utf8=Un bélier.\n"
    assert stamp_captions(text, ("en", "ru", "pt-BR", "sr", "de")) == (
        "A ram.",
        (("pt-BR", "Um carneiro."), ("ru", "Баран."), ("sr", "Ovan.")),  # an empty line is no caption
    )


def test_title_and_description_cleaning() -> None:
    assert clean_title("Clipart by Nicu Buculei - jigsaw_red_10", 1) == "jigsaw red"
    assert clean_title("Lemon SVG theme", 1) == ""
    assert clean_title("Part of the Flat Icon Collection (Wed Aug 25 23:29:46 2004)", 1) == ""
    assert clean_title("gramastar", 1375) == ""  # shared by too many files: a label
    assert clean_title("Full Moon", 3) == "Full Moon"
    assert clean_title("fc23", 1) == ""
    assert clean_title("Dog 01 Drawn With Straight Lines", 1) == ""  # a serial inside the title
    assert clean_title("MPCAD Box 40x30x", 1) == "" and clean_title("ec2.py", 1) == ""
    assert clean_title("FatherChristmas", 1) == "" and clean_title("eMule Icon", 1) == ""  # joined file names
    assert clean_title("large braces.svg", 1) == "" and clean_title("ralf@ark.in-berlin.de", 1) == ""
    assert clean_title("9 mm gun", 1) == "9 mm gun" and clean_title("Ice Cream Cone (3 Scoop)", 1) != ""
    assert title_rule("dots square grid 02 pattern") == "serial number" and title_rule("BlueMan") == "file name"
    assert title_rule("crosses 2 pattern") == "" and title_rule("LED Circle (Grey)") == ""
    assert clean_description("EPS converted from  http://aiga.org") == ""
    assert clean_description("A simple shield") == ""  # under 4 words
    assert (
        clean_description("This is a nice detailed image of clouds. More.")
        == "This is a nice detailed image of clouds."
    )
    text = svg("", "Work title", "Work description", creator="Artist Name")
    assert svg_metadata(text) == ("Work title", "Work description")
    twice = svg("", "Cassa d&amp;#39;epoca", "Croissant (B &amp;amp; W)")
    assert svg_metadata(twice) == ("Cassa d'epoca", "Croissant (B & W)")  # entities escaped twice


def test_unknown_words_rule_needs_an_unidentified_language() -> None:
    assert unidentified_name("gps geko", "und") and unidentified_name("Sony Clie", "und")
    assert not unidentified_name("finland", "und") and not unidentified_name("Canada - Yukon", "und")  # names
    assert not unidentified_name("tree - RPG map elements", "und")  # one unknown word in four
    assert not unidentified_name("Casa in campagna", "it")  # an identified language is kept in it


def test_cap_shared_caption() -> None:
    raws = [Raw(f"k{i:02d}", "s", "l", "Same Caption" if i < 30 else f"c{i}") for i in range(33)]
    kept = cap_shared(raws, cap=20)
    assert len(kept) == 23 and [r.key for r in kept][:20] == [f"k{i:02d}" for i in range(20)]


def test_near_duplicates_share_a_split() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 16)).astype(np.float32)
    feats = np.concatenate([base, base[:10] + 0.01 * rng.normal(size=(10, 16)).astype(np.float32)])
    pairs = near_duplicate_pairs(feats)
    assert {(i, j) for i, j in pairs} >= {(i, 50 + i) for i in range(10)}
    items, groups = assign_splits([Item(f"im{i:03d}", ["c"], "train") for i in range(60)], pairs, (0.34, 0.33, 0.33))
    assert all(groups[i] == groups[50 + i] for i in range(10)) and len(set(groups)) <= 50
    assert all(items[i].split == items[50 + i].split for i in range(10))
    assert len({it.split for it in items}) == 3


def test_language_tagger_on_titles(tmp_path: Path) -> None:
    """English word list first, then lingua when confident; a lone foreign word is never called English."""
    from captioner.corpus.langid import LanguageTagger
    from captioner.data.lexicon import english_words

    tag = LanguageTagger()
    got = {t: tag(t) for t in ("red apple", "Casa in campagna", "Pescetto arancione", "Schwäbisch Gmünd", "orso", "")}
    assert got == {
        "red apple": "en",
        "Casa in campagna": "it",
        "Pescetto arancione": "it",
        "Schwäbisch Gmünd": "de",
        "orso": "und",  # one Italian word: not sure which language, but surely not English
        "": "und",
    }
    hint = "English word list not found; building needs it \\(sudo apt-get install wamerican\\)"
    with pytest.raises(CaptionerError, match=hint):
        english_words(tmp_path / "words")
