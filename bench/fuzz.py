"""Fuzz the image-decoding and upload path with mutated real image files, for a bounded time.

    python bench/fuzz.py [--seconds 60]

Seeds: small PNG, JPEG, GIF, WebP, TIFF and BMP files; mutations: byte flips, truncation, insertion,
duplicated chunks, header swaps. Every input goes through open_image + preprocess (must raise only
ImageError) and through POST /caption of the real service app (must answer below 500). Prints the count
of inputs tried and every crash with a reproducer saved under fuzz-crashes/."""

from __future__ import annotations

import argparse
import io
import random
import time
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from captioner.api import Captioner
from captioner.features.images import ImageError, open_image
from captioner.serve.app import Limits, create_app


def seeds() -> list[bytes]:
    out = []
    img = Image.new("RGB", (40, 30), (200, 50, 20))
    img.paste((10, 200, 90), (5, 5, 20, 20))
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"):
        buf = io.BytesIO()
        img.save(buf, fmt)
        out.append(buf.getvalue())
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and b:
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and b:
            del b[rng.randrange(len(b)) :]
        elif op == 2:
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif op == 3 and len(b) > 8:
            i, j = sorted(rng.sample(range(len(b)), 2))
            b[j:j] = b[i:j][:4096]
        elif op == 4 and len(b) > 24:  # large dimensions in the header region
            i = rng.randrange(8, 24)
            b[i : i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"])
    return bytes(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng, base = random.Random(a.seed), seeds()
    cap = Captioner.load()
    crashes, n, t0 = [], 0, time.time()
    with TestClient(create_app(cap, Limits(max_bytes=1_000_000, max_pixels=4_000_000))) as client:
        while time.time() - t0 < a.seconds:
            data = mutate(rng.choice(base), rng)
            n += 1
            try:
                cap.preprocess(open_image(data, 4_000_000))
            except ImageError:
                pass
            except Exception as e:  # noqa: BLE001 - a crash is what we are looking for
                crashes.append((data, f"open_image: {type(e).__name__}: {e}"))
            if n % 4 == 0:
                r = client.post("/caption?beam=1", files={"image": ("f.bin", data, "application/octet-stream")})
                if r.status_code >= 500:
                    crashes.append((data, f"POST /caption: {r.status_code}"))
    print(f"{n} mutated inputs in {a.seconds:.0f} s ({n // 4} also through POST /caption): {len(crashes)} crashes")
    if crashes:
        out = Path("fuzz-crashes")
        out.mkdir(exist_ok=True)
        for k, (data, why) in enumerate(crashes[:20]):
            (out / f"crash{k}.bin").write_bytes(data)
            print(f"  crash{k}.bin: {why[:200]}")


if __name__ == "__main__":
    main()
