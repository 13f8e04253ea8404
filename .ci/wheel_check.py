"""The package as a user gets it: build the wheel, install it into a fresh virtual environment outside the
checkout, and run each `captioner caption` command of the README from another folder, with Debian's WordNet and
word list hidden (an empty tmpfs over each, in a mount namespace of its own); each must print the README's block.

    python .ci/wheel_check.py        (run by .ci/run, as root: unshare -m needs it)"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]
HIDDEN = ("/usr/share/wordnet", "/usr/share/dict")  # system word data the caption path must not need


def main() -> int:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pairs = re.findall(r"```bash\n[^\n]*?captioner caption ([^\n]*)\n```\n\n```\n(.*?)```", readme, re.S)
    assert len(pairs) == 2, f"README: expected two caption commands with their output, found {len(pairs)}"
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", t / "dist", ROOT], check=True)
        (wheel,) = (t / "dist").glob("captioner-*.whl")
        print(f"wheel: {wheel.name}, {wheel.stat().st_size / 2**20:.1f} MiB")
        subprocess.run(["python3", "-m", "venv", t / "venv"], check=True)
        subprocess.run([t / "venv" / "bin" / "pip", "install", "-q", wheel], check=True)
        run = t / "run"
        (run / "examples").mkdir(parents=True)
        subprocess.run(["cp", "-r", ROOT / "examples" / "images", run / "examples"], check=True)
        hide = "; ".join(f"if [ -d {d} ]; then mount -t tmpfs none {d}; fi" for d in HIDDEN)
        failed = 0
        for args, shown in pairs:
            script = f'{hide}; find {" ".join(HIDDEN)} -mindepth 1 2>/dev/null | grep -q . && exit 99; exec "$@"'
            captioner = t / "venv" / "bin" / "captioner"
            cmd = ["unshare", "-m", "sh", "-c", script, "sh", captioner, "caption", *args.split()]
            r = subprocess.run(cmd, cwd=run, capture_output=True, text=True)
            ok = r.returncode == 0 and r.stdout == shown
            failed += not ok
            print(f"{'ok' if ok else 'FAILED'}: captioner caption {args} (from {run}, WordNet and word list hidden)")
            if not ok:
                print(f"  exit {r.returncode}\n  printed:\n{r.stdout}\n  README shows:\n{shown}\n  stderr:\n{r.stderr}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
