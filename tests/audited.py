"""Run one captioner entry point under an audit hook that records every file Python opens (tests/test_install.py).

    python tests/audited.py OUT.json cli ARGS...      `captioner ARGS...`
    python tests/audited.py OUT.json api IMAGE...     Captioner.load().caption(IMAGES)
    python tests/audited.py OUT.json serve IMAGE      `captioner serve`, one POST /caption of IMAGE

OUT.json gets {"opened": [absolute paths], "output": what the entry point printed or answered}."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sys
import threading
import time

OPENED: set[str] = set()


def _hook(event: str, args: tuple) -> None:
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        OPENED.add(os.path.abspath(os.fsdecode(args[0])))


def _serve(image: str) -> str:
    import httpx

    from captioner.cli.main import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    threading.Thread(target=main, args=(["serve", "--port", str(port)],), daemon=True).start()
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    with open(image, "rb") as f:
        r = httpx.post(f"http://127.0.0.1:{port}/caption", files={"image": (os.path.basename(image), f.read())})
    return r.json()["caption"]


def run(mode: str, rest: list[str]) -> str:
    """Run the entry point; returns its output."""
    if mode == "serve":
        return _serve(rest[0])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        if mode == "cli":
            from captioner.cli.main import main

            if main(rest) != 0:
                raise SystemExit(f"captioner {' '.join(rest)} failed")
        else:
            from captioner import Captioner

            print("\n".join(r.caption for r in Captioner.load().caption(rest)))
    return buf.getvalue()


if __name__ == "__main__":
    sys.addaudithook(_hook)
    out_path, entry, *argv = sys.argv[1:]
    output = run(entry, argv)
    found = sorted(OPENED)
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump({"opened": found, "output": output}, out)
    sys.stdout.flush()
    os._exit(0)  # the server's thread does not end by itself
