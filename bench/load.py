"""Load on `captioner serve`: concurrent clients for a bounded time, valid and invalid uploads mixed.

    python bench/load.py [--clients 16] [--seconds 30] [--checkpoint DIR]

Starts the service on 127.0.0.1, drives it, stops by itself. Reports requests served, the error rate on
valid requests (goal 0), p50/p99 latency of valid requests, and the server's RSS at the start and end of
the run, after its first quarter (allocator and kernel caches warm), and its peak (goal: no growth)."""

from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def payloads() -> list[tuple[bool, dict]]:
    """(valid?, request kwargs): photos of several sizes, and bad inputs."""
    rng = np.random.default_rng(0)
    out = []
    for w, h in ((640, 480), (320, 240), (1024, 768)):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (h // 8, w // 8, 3), np.uint8)).resize((w, h)).save(buf, "JPEG")
        out.append((True, {"files": {"image": ("p.jpg", buf.getvalue(), "image/jpeg")}}))
    out.append((False, {"files": {"image": ("x.jpg", b"not an image", "image/jpeg")}}))
    out.append((False, {"files": {"image": ("t.jpg", out[0][1]["files"]["image"][1][:2000], "image/jpeg")}}))
    out.append((False, {"content": b"raw", "headers": {"content-type": "text/plain"}}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--checkpoint")
    a = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "captioner.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(
        cmd + (["--checkpoint", a.checkpoint] if a.checkpoint else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        reqs = payloads()
        with httpx.Client() as c:  # warm-up
            c.post(f"{url}/caption", **reqs[0][1])
        rss = [rss_mb(server.pid)]
        lat, bad_valid, served, invalid_5xx = [], 0, 0, 0
        lock, stop = threading.Lock(), time.time() + a.seconds

        def client(k: int) -> None:
            nonlocal bad_valid, served, invalid_5xx
            with httpx.Client(timeout=60) as c:
                i = k
                while time.time() < stop:
                    valid, kw = reqs[i % len(reqs)]
                    i += 1
                    t = time.perf_counter()
                    r = c.post(f"{url}/caption", **kw)
                    dt = time.perf_counter() - t
                    with lock:
                        served += 1
                        if valid:
                            lat.append(dt)
                            bad_valid += r.status_code != 200
                        else:
                            invalid_5xx += r.status_code >= 500

        threads = [threading.Thread(target=client, args=(k,)) for k in range(a.clients)]
        for t in threads:
            t.start()
        t0, quarter = time.time(), None
        while any(t.is_alive() for t in threads):
            rss.append(rss_mb(server.pid))
            if quarter is None and time.time() - t0 > a.seconds / 4:
                quarter = rss[-1]
            time.sleep(0.5)
        rss.append(rss_mb(server.pid))
        alive = server.poll() is None
        lat_ms = np.array(lat) * 1e3
        print(
            f"{a.clients} clients, {a.seconds:.0f} s: {served} requests served ({served / a.seconds:.1f}/s), "
            f"{len(lat)} valid"
        )
        print(
            f"valid requests failed: {bad_valid} ({bad_valid / max(1, len(lat)):.2%}; goal 0); "
            f"invalid requests answered 5xx: {invalid_5xx}; server alive: {alive}"
        )
        print(
            f"latency of valid requests: p50 {np.percentile(lat_ms, 50):.0f} ms, p99 {np.percentile(lat_ms, 99):.0f} ms"
        )
        print(
            f"server RSS: start {rss[0]:.0f} MB, after the first quarter (warm) {quarter or rss[-1]:.0f} MB, "
            f"end {rss[-1]:.0f} MB, peak {max(rss):.0f} MB"
        )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
