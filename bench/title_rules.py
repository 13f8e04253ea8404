"""What the OpenClipart title rules remove, so a reader can judge them: for each rule, 20 random titles it
removes and 20 random titles that look alike (a digit; a capital inside a word; no identified language) and
are kept. Reads Debian's openclipart-svg as `captioner data open-clipart` does.

    python bench/title_rules.py [--seed 0] [--n 20]
"""

from __future__ import annotations

import argparse
import random
import re
from collections import Counter

from captioner.corpus.langid import LanguageTagger
from captioner.corpus.opencorpus import (
    OPENCLIPART,
    clean_title,
    svg_metadata,
    tidy_title,
    title_rule,
    unidentified_name,
)
from captioner.data.manifest import UNDETERMINED


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=20)
    a = ap.parse_args()
    titles = []
    for p in sorted(OPENCLIPART.rglob("*.svg")):
        if p.is_file() and not p.is_symlink():
            titles.append(svg_metadata(p.read_bytes().decode("utf-8", errors="replace"))[0])
    share = Counter(titles)
    base = sorted({tidy_title(t, share[t]) for t in titles} - {""})  # before the rules
    before = sorted({clean_title(t, share[t]) for t in titles} - {""})  # after the two rules on the title alone
    tag = LanguageTagger()
    langs = {t: tag(t) for t in before}
    rules = {
        "serial number": ([t for t in base if title_rule(t) == "serial number"], lambda t: bool(re.search(r"\d", t))),
        "file name": ([t for t in base if title_rule(t) == "file name"], lambda t: bool(re.search(r"\w[A-Z]", t))),
        "unknown words": (
            [t for t in before if unidentified_name(t, langs[t])],
            lambda t: langs[t] == UNDETERMINED,
        ),
    }
    kept = [t for t in before if not unidentified_name(t, langs[t])]
    rng = random.Random(a.seed)
    print(f"{len(base)} distinct cleaned titles; {len(kept)} kept after the three rules")
    for name, (removed, alike) in rules.items():
        look = [t for t in kept if alike(t)]
        print(f"\n{name}: removes {len(removed)}; {len(look)} kept titles look alike")
        print("  removed: " + " | ".join(rng.sample(removed, min(a.n, len(removed)))))
        print("  kept:    " + " | ".join(rng.sample(look, min(a.n, len(look)))))


if __name__ == "__main__":
    main()
