"""FastAPI app: POST /caption (multipart), GET /health, GET / (one static page), and with a page folder (`captioner
export --web`) that page under /page/, sent cross-origin isolated (ISOLATION) so that onnxruntime-web runs threads,
its large files gzipped (Precompressed). Requests are batched."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from importlib.resources import files
from pathlib import Path
from stat import S_ISREG
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers, UploadFile

from captioner.api import Captioner
from captioner.config import Limits
from captioner.errors import CaptionerError
from captioner.features.images import ImageError

log = logging.getLogger(__name__)
# The headers that make a page cross-origin isolated (SharedArrayBuffer, so WebAssembly threads).
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


class Batcher:
    """Collects concurrent requests into one encoder+decoder batch, run off the event loop."""

    def __init__(self, cap: Captioner, limits: Limits) -> None:
        self.cap, self.limits = cap, limits
        self.queue: asyncio.Queue = asyncio.Queue()
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="captioner-model")  # one thread runs the model

    async def submit(self, x: np.ndarray, beam: int, n_best: int, lang: str | None = None) -> dict[str, Any]:
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((x, beam, n_best, lang, fut))
        return await fut

    async def run(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            deadline = asyncio.get_running_loop().time() + self.limits.batch_wait_s
            while len(jobs) < self.limits.max_batch:
                left = deadline - asyncio.get_running_loop().time()
                try:
                    jobs.append(await asyncio.wait_for(self.queue.get(), max(left, 0)))
                except TimeoutError:
                    break
            groups: dict[tuple[int, int, str | None], list] = {}
            for job in jobs:  # one batch per decoding setting and language
                groups.setdefault((job[1], job[2], job[3]), []).append(job)
            for (beam, n_best, lang), group in groups.items():
                x = np.stack([j[0] for j in group])
                try:
                    run = partial(self.cap.caption_tensors, x, beam, n_best, lang=lang)
                    results = await asyncio.get_running_loop().run_in_executor(self.worker, run)
                    for j, r in zip(group, results, strict=True):
                        j[4].set_result(r.to_json()) if not j[4].done() else None
                except Exception as e:  # noqa: BLE001 - a failed batch must not kill the batcher
                    log.exception("captioning failed")
                    for j in group:
                        j[4].set_exception(e) if not j[4].done() else None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _upload(request: Request, limits: Limits) -> tuple[str, bytes] | JSONResponse:
    """The uploaded image's file name and bytes, or the error response that says what is wrong with the request."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        return _error(415, "send the image as multipart/form-data in a field named 'image'")
    try:
        form = await asyncio.wait_for(request.form(max_files=1, max_fields=4), limits.body_timeout_s)
    except TimeoutError:
        return _error(408, f"upload not received within {limits.body_timeout_s:g} s")
    except Exception:  # noqa: BLE001 - malformed multipart bodies
        return _error(422, "malformed multipart body")
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        return _error(422, "no file in form field 'image'")
    data = await upload.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        return _error(413, f"upload larger than {limits.max_bytes} bytes")
    return upload.filename or "", data


class Precompressed(StaticFiles):
    """Static files that send FILE.gz (export --web writes one beside each large file) with Content-Encoding gzip
    to a client that accepts gzip, and FILE itself to any other."""

    async def get_response(self, path: str, scope: Any) -> Response:
        if "gzip" in Headers(scope=scope).get("accept-encoding", ""):
            full, stat = self.lookup_path(f"{path}.gz")
            if stat is not None and S_ISREG(stat.st_mode):
                media = mimetypes.guess_type(path)[0] or "application/octet-stream"
                headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
                return FileResponse(full, stat_result=stat, media_type=media, headers=headers)
        return await super().get_response(path, scope)


def create_app(cap: Captioner, limits: Limits = Limits(), page: Path | None = None) -> FastAPI:  # noqa: B008
    """The service around one loaded Captioner; page: a folder `captioner export --web` wrote, served at /page/."""
    batcher = Batcher(cap, limits)

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        task = asyncio.create_task(batcher.run())
        yield
        task.cancel()

    app = FastAPI(title="captioner", lifespan=lifespan)
    if page is not None:
        app.mount("/page", Precompressed(directory=page, html=True), name="page")

        @app.middleware("http")
        async def isolate(request: Request, call_next: Any) -> Any:
            response = await call_next(request)
            response.headers.update(ISOLATION)
            return response
    page = (files("captioner.serve") / "static" / "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            **cap.runtime.info,
            "languages": list(cap.languages),
            "queued": batcher.queue.qsize(),
        }

    @app.post("/caption")
    async def caption(request: Request, beam: int = 3, n_best: int = 3, lang: str | None = None) -> JSONResponse:
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > limits.max_bytes + 64 * 1024:
            return _error(413, f"upload larger than {limits.max_bytes} bytes")
        if not 1 <= beam <= limits.max_beam or not 1 <= n_best <= beam:
            return _error(422, f"beam must be 1..{limits.max_beam} and n_best 1..beam")
        try:
            cap.rules(lang)
        except CaptionerError as e:
            return _error(422, str(e))
        upload = await _upload(request, limits)
        if isinstance(upload, JSONResponse):
            return upload
        name, data = upload
        try:
            x = cap.prepare(data, limits.max_pixels)
        except ImageError as e:
            status = 413 if "exceeds the limit" in str(e) or "bomb" in str(e) else 415
            return _error(status, f"{name or 'upload'}: {e}")
        result = await batcher.submit(x, beam, n_best, lang)
        return JSONResponse({**result, "source": name or ""})

    return app
