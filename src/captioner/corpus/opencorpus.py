"""`captioner data open-clipart`: a real image-text corpus from Debian and npm packages.

Sources (nobody on this team wrote the text):
- Debian tuxpaint-stamps-default: stamp images with a same-named .txt, line 1 in English (GPL-2.0).
- Debian openclipart-svg: SVGs whose RDF metadata carries dc:title / dc:description (public domain).
- emoji in three styles (OpenMoji, Twemoji, Noto) named by CLDR in every language asked for (data/emoji.py).

Every caption carries its language: Tux Paint's first line is English and its other lines are translations
("ru.utf8=..."), CLDR names are per language, OpenClipart titles are identified (data/langid.py).
"""

from __future__ import annotations

import hashlib
import html
import io
import itertools
import logging
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from captioner.corpus import emoji
from captioner.corpus.langid import WORD, LanguageTagger
from captioner.corpus.rawitem import LANGS, SOURCES, Raw, require
from captioner.corpus.splits import assign_splits, split_pairs
from captioner.data.lexicon import known_words
from captioner.data.manifest import UNDETERMINED, Item, read_manifest, write_manifest
from captioner.errors import CaptionerError
from captioner.files import write_bytes
from captioner.ticker import Ticker

log = logging.getLogger(__name__)

TUXPAINT = Path("/usr/share/tuxpaint/stamps")
OPENCLIPART = Path("/usr/share/openclipart/svg")
SIZE = 256  # rendered images are SIZE x SIZE, content centred on white
MAX_SVG_BYTES = 3_000_000
LABEL_SHARE = 50  # a title on more files than this is a collection label, not a caption
CAP_PER_CAPTION = 20  # at most this many items may share one caption


# ---------------------------------------------------------------- tuxpaint


_TRANSLATION = re.compile(r"([a-z]{2,3})(?:_([A-Z]{2}))?(?:@\w+)?\.utf-?8=(.*)")  # "pt_BR.utf8=Um carneiro."


def stamp_captions(text: str, langs: tuple[str, ...]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A stamp .txt's English first line, and its translations into `langs` as (BCP-47 tag, caption)."""
    lines = text.splitlines()
    english = lines[0].strip() if lines else ""
    more = {}
    for line in lines[1:]:
        m = _TRANSLATION.fullmatch(line.strip())
        if m and m.group(3).strip():
            tag = m.group(1) + (f"-{m.group(2)}" if m.group(2) else "")
            if tag in langs and tag != "en":
                more.setdefault(tag, m.group(3).strip())
    return english, tuple(sorted(more.items()))


def tuxpaint(root: Path = TUXPAINT, langs: tuple[str, ...] = ("en",)) -> Iterator[Raw]:
    """Stamps with a same-named .txt: line 1 is the English caption, then 'ru.utf8=...' translations."""
    require(root, "tuxpaint", "sudo apt-get install tuxpaint-stamps-default")
    for txt in sorted(root.rglob("*.txt")):
        img = next((txt.with_suffix(e) for e in (".png", ".svg") if txt.with_suffix(e).is_file()), None)
        english, more = stamp_captions(txt.read_text(encoding="utf-8", errors="replace"), langs)
        if img is None or not english:
            continue
        rel = img.relative_to(root).with_suffix(".png").as_posix()
        kind = "svg" if img.suffix == ".svg" else "raster"
        yield Raw(f"images/tuxpaint/{rel}", "tuxpaint", "GPL-2.0", english, str(img), kind=kind, more=more)


# ---------------------------------------------------------------- openclipart

_WORK = re.compile(r"<cc:Work\b.*?</cc:Work>", re.S)
_AGENTS = re.compile(r"<dc:(creator|publisher|rights|contributor)\b.*?</dc:\1>", re.S)
_TITLE = re.compile(r"<dc:title>(.*?)</dc:title>", re.S)
_DESC = re.compile(r"<dc:description>(.*?)</dc:description>", re.S)
_BY_PREFIX = re.compile(r"^clip\s*art by [^-]+ - ", re.I)
_LABEL = re.compile(
    r"part of|collection|\btheme\b|icon-?theme|icon ?set|\bicons\b|\bcliparts?\b|symbol.signs"
    r"|submission|sibmission",
    re.I,
)
_BOILERPLATE = re.compile(r"@|https?:|www\.|\.com\b|converted|part of|collection|\btheme\b", re.I)


def svg_metadata(text: str) -> tuple[str, str]:
    """The work's own dc:title and dc:description (not its creator's or publisher's)."""
    m = _WORK.search(text)
    if not m:
        return "", ""
    work = _AGENTS.sub("", m.group(0))
    t, d = _TITLE.search(work), _DESC.search(work)
    return (_unescape(t.group(1)) if t else "", _unescape(d.group(1)) if d else "")


def _unescape(text: str) -> str:
    """XML text without its entities, also where they were escaped twice ("d&amp;#39;epoca" -> "d'epoca")."""
    once = html.unescape(text)
    return " ".join(html.unescape(once).split())


# Titles that name a file rather than what it shows (docs/data.md shows 20 removed and 20 kept per rule;
# python bench/title_rules.py (retired; at commit c60f44a) prints them):
_SERIAL = re.compile(r"\b0\d+\b|\b(?=[^\W_]*\d)(?=[^\W_]*[^\W\d_])[^\W_]+\b")  # "dog 01 drawn", "box 30x20x"
_FILE_NAME = re.compile(r"\.(?:svg|png|jpe?g|gif|eps|ai|py)\b|openclipart|@|://|www\.|[a-z][A-Z]")  # "x.svg", "eMule"


def title_rule(title: str) -> str:
    """The rule that removes a cleaned OpenClipart title, or '' when none does: 'serial number' (a zero-padded
    number or a token of letters and digits inside the title) or 'file name' (an extension, 'openclipart', an
    address, a joined camelCase word)."""
    if _SERIAL.search(title):
        return "serial number"
    return "file name" if _FILE_NAME.search(title) else ""


def unidentified_name(caption: str, lang: str) -> bool:
    """The 'unknown words' rule, once languages are known: a title in no identified language whose words are at
    least half outside the English word list (proper names included) is a product or model name ('gps geko',
    'Sony Clie') or a foreign title lingua could not place ('Casa verde'); 'finland', 'Canada - Yukon' stay."""
    words = WORD.findall(caption.lower())
    return lang == UNDETERMINED and sum(w not in known_words() for w in words) * 2 >= len(words) > 0


def tidy_title(title: str, share: int) -> str:
    """An OpenClipart title without its 'Clipart by' prefix, trailing numbers and underscores; '' for a
    collection label (or a title on more than LABEL_SHARE files) and for fewer than 3 letters."""
    t = _BY_PREFIX.sub("", title)
    if share > LABEL_SHARE or _LABEL.search(t):
        return ""
    t = re.sub(r"([\s_-]*\d+)+$", "", t)  # "jigsaw_red_10" -> "jigsaw_red", "arrow08_4" -> "arrow"
    t = " ".join(re.sub(r"[_]+", " ", t).split()).rstrip("#*-~ ")
    return t if sum(c.isalpha() for c in t) >= 3 else ""


def clean_title(title: str, share: int) -> str:
    """A usable caption from an OpenClipart title, or '' when it is a label, a file name, a serial or empty."""
    t = tidy_title(title, share)
    return "" if title_rule(t) else t


def clean_description(desc: str) -> str:
    """A description of at least 4 words that is not boilerplate (addresses, URLs, conversion notes)."""
    first = re.split(r"(?<=[.!?])\s", desc.strip(), maxsplit=1)[0]
    if _BOILERPLATE.search(first) or len(first.split()) < 4 or len(first.split()) > 30:
        return ""
    return first


def openclipart(root: Path = OPENCLIPART, langs: tuple[str, ...] = ()) -> Iterator[Raw]:
    """SVGs captioned by their cleaned title, or a real description when the title is unusable; the caption's
    language is identified later, and kept whatever it is (`langs` chooses translations, which titles lack)."""
    require(root, "openclipart", "sudo apt-get install openclipart-svg")
    files, seen = [], set()
    for p in sorted(root.rglob("*.svg")):
        if p.is_symlink() or not p.is_file():
            continue  # the package links duplicates; count each file once
        data = p.read_bytes()
        digest = hashlib.sha1(data).hexdigest()
        if digest in seen or len(data) > MAX_SVG_BYTES:
            continue
        seen.add(digest)
        files.append((p, *svg_metadata(data.decode("utf-8", errors="replace"))))
    share = Counter(t for _, t, _ in files)
    for p, title, desc in files:
        caption = clean_title(title, share[title]) or clean_description(desc)
        if caption:
            rel = p.relative_to(root).with_suffix(".png").as_posix()
            yield Raw(f"images/openclipart/{rel}", "openclipart", "public-domain", caption, str(p), lang=None)


# ---------------------------------------------------------------- rendering


def render(raw: Raw) -> tuple[str, bytes | None, str]:
    """Rasterize, crop to content, pad onto a white square; returns (key, png bytes or None, error)."""
    try:
        data = raw.data or Path(raw.path).read_bytes()
        if raw.kind == "svg":
            import cairosvg

            data = cairosvg.svg2png(bytestring=data, output_width=2 * SIZE, unsafe=False)
        img = Image.open(io.BytesIO(data))
        img.load()
        out = _square_on_white(img.convert("RGBA"))
        buf = io.BytesIO()
        out.save(buf, "PNG", optimize=True)
        return raw.key, buf.getvalue(), ""
    except Exception as e:  # noqa: BLE001 - any renderer failure is a skip, logged by the caller
        return raw.key, None, f"{type(e).__name__}: {e}"[:200]


def _square_on_white(img: Image.Image) -> Image.Image:
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    flat = Image.alpha_composite(white, img).convert("RGB")
    ink = np.asarray(flat).min(axis=2) < 250
    if not ink.any():
        raise ValueError("blank image")
    ys, xs = np.nonzero(ink)
    crop = flat.crop((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    side = int(max(crop.size) * 1.1) + 2
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(crop, ((side - crop.width) // 2, (side - crop.height) // 2))
    return canvas.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


# ---------------------------------------------------------------- building


def cap_shared(raws: list[Raw], cap: int = CAP_PER_CAPTION) -> list[Raw]:
    """Keep at most `cap` items per (case-folded) caption, first by key."""
    seen: Counter[str] = Counter()
    out = []
    for r in sorted(raws, key=lambda r: r.key):
        norm = " ".join(r.caption.lower().split())
        seen[norm] += 1
        if seen[norm] <= cap:
            out.append(r)
    return out


def _render_all(raws: list[Raw], out: Path, workers: int) -> tuple[list[Raw], dict[str, str], list[str]]:
    """Render every item to out/<key>; returns kept items, failures, and a pixel hash per kept item."""
    kept, failed, pixel_hash = [], {}, []
    by_key = {r.key: r for r in raws}
    todo = [r for r in raws if not (out / r.key).is_file()]  # a rerun reuses what it rendered before
    done = ((r.key, (out / r.key).read_bytes(), "") for r in raws if (out / r.key).is_file())
    with ProcessPoolExecutor(max(1, workers)) as pool, Ticker(len(raws), "render", "img") as bar:
        results = itertools.chain(done, pool.map(render, todo, chunksize=16))
        for key, png, err in results:
            bar.update()
            if png is None:
                log.warning("%s: skipped, %s", by_key[key].path or key, err)
                failed[key] = err
                continue
            dest = out / key
            if not dest.is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                write_bytes(dest, png)
            pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
            pixel_hash.append(hashlib.sha1(pixels.tobytes()).hexdigest())
            kept.append(by_key[key])
    return kept, failed, pixel_hash


def gather(
    sources: tuple[str, ...], paths: dict[str, Path], langs: tuple[str, ...], limit: int | None = None
) -> list[Raw]:
    """Every source's items (the first `limit` of each), captioned in `langs` where the source has them.

    The emoji styles are named by CLDR (paths['cldr']); an OpenMoji emoji CLDR does not name (a sequence, an
    OpenMoji extra) keeps OpenMoji's English annotation."""
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise CaptionerError(f"unknown source(s) {', '.join(sorted(unknown))}; choose from {', '.join(SOURCES)}")
    styles = [s for s in sources if s in emoji.STYLE_LICENSE]
    names = emoji.cldr_names(paths.get("cldr", emoji.CLDR), langs) if styles else {}
    gatherers = {"tuxpaint": (tuxpaint, TUXPAINT), "openclipart": (openclipart, OPENCLIPART)}
    raws: list[Raw] = []
    for name in sources:
        if name in emoji.STYLE_LICENSE:
            got = list(emoji.STYLES[name](paths.get(name, emoji.DEFAULT_PATH[name]), names))
        else:
            got = list(gatherers[name][0](paths.get(name, gatherers[name][1]), langs))
        log.info("%s: %d captioned items", name, len(got))
        raws += got[:limit] if limit else got
    return raws


def _items(raws: list[Raw]) -> list[Item]:
    """Manifest items: the cleaned caption in its (identified) language first, then its translations."""
    items = []
    for r in raws:
        lang = r.lang or UNDETERMINED
        extra = {"group": r.group} if r.group else {}
        items.append(
            Item(
                r.key,
                [r.caption, *(c for _, c in r.more)],
                "train",
                r.source,
                r.license,
                extra,
                langs=[lang, *(t for t, _ in r.more)],
            )
        )
    return items


def build_open_corpus(
    out: str | Path,
    limit: int | None = None,
    workers: int = 2,
    sources: list[str] | tuple[str, ...] = SOURCES,
    paths: dict[str, Path] | None = None,
    encoder: str = "efficientnet-lite0",
    min_count: int = 5,
    langs: tuple[str, ...] = LANGS,
) -> dict[str, object]:
    """Gather, clean, render, de-duplicate and split the open corpus into out/ (manifest + features)."""
    from captioner.corpus.prepare import build_vocab, summarize
    from captioner.features.extract import FeatureStore, extract

    try:
        import cairosvg  # noqa: F401
    except ImportError as e:
        raise CaptionerError(
            "rendering SVGs needs cairosvg: `pip install -e '.[corpus]'` (and Debian's libcairo2)"
        ) from e
    raws = cap_shared(gather(tuple(sources), paths or {}, tuple(langs), limit))
    tag = LanguageTagger() if any(r.lang is None for r in raws) else None
    titles = {r.key: tag(r.caption) if tag and r.lang is None else r.lang for r in raws}
    named = {r.key for r in raws if r.lang is None and unidentified_name(r.caption, titles[r.key] or UNDETERMINED)}
    log.info("%d OpenClipart titles removed for unknown words (no language identified)", len(named))
    raws = [replace(r, lang=titles[r.key]) for r in raws if r.key not in named]
    out = Path(out)
    kept, failed, pixel_hash = _render_all(raws, out, workers)
    if failed:
        log.warning("%d of %d images failed to render and were skipped", len(failed), len(raws))
    items = _items(kept)
    meta = {"format": "open-clipart", "sources": list(sources), "langs": list(langs)}
    write_manifest(out, items, out, **meta)
    extract(out, out / "features", encoder, batch_size=32, workers=workers)
    store = FeatureStore(out / "features")
    pairs = split_pairs(items, pixel_hash, store.get("pooled", [store.row[it.image] for it in items]))
    items, groups = assign_splits(items, pairs)
    write_manifest(out, items, out, **meta)
    vocab, stats = build_vocab(read_manifest(out), min_count=min_count)
    vocab.save(out / "vocab.json")
    sizes = Counter(groups)
    dup_groups = sum(1 for n in sizes.values() if n > 1)
    dup_items = sum(n for n in sizes.values() if n > 1)
    log.info(
        "%d groups of near-duplicates or one emoji's styles (%d images), each within one split", dup_groups, dup_items
    )
    return {
        **summarize(items),
        "vocab": stats,
        "render_failures": len(failed),
        "near_duplicate_groups": dup_groups,
        "near_duplicate_images": dup_items,
    }
