"""Atomic writes: temp file in the same folder, fsync, rename. A reader never sees half a file."""

from __future__ import annotations

import errno
import json
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from captioner.errors import CaptionerError


def _fresh(parent: Path, prefix: str, make: Callable[[Path], int | None]) -> tuple[Path, int | None]:
    """Create a new uniquely named entry in parent with make(path), retrying on a name clash."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(6)}.tmp"
        try:
            return path, make(path)
        except FileExistsError:
            continue
    raise CaptionerError(f"{parent}: could not create a temporary name")


def temp_dir(parent: Path, prefix: str) -> Path:
    """A new folder in parent with the usual mode: the kernel applies the process's umask to 0o777 (unlike
    mkdtemp's 0o700), so nothing needs to read or change the umask."""
    return _fresh(parent, prefix, lambda p: os.mkdir(p, 0o777))[0]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call write(f) on a temp file beside `path`, fsync it and rename it over `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CaptionerError(f"{path}: could not write ({e.strerror}: {e.filename})") from e
    tmp, fd = _fresh(path.parent, f".{path.name}.", lambda p: os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        with os.fdopen(fd, "wb") as f:  # type: ignore[arg-type]
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.errno == errno.ENOSPC:
            raise CaptionerError(f"{path}: disk full while writing; the previous version is intact") from e
        raise CaptionerError(f"{path}: could not write ({e.strerror})") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    """Atomically write bytes."""
    atomic_write(path, lambda f: f.write(data))


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write pretty JSON."""
    write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Atomically write one JSON object per line."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    write_bytes(path, text.encode("utf-8"))


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Read JSON, turning a missing file or a syntax error into a CaptionerError that names the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise CaptionerError(f"{path}: {what} not found") from e
    except UnicodeDecodeError as e:
        raise CaptionerError(f"{path}: not UTF-8 text (byte {e.start})") from e
    except OSError as e:
        raise CaptionerError(f"{path}: cannot read {what} ({e.strerror})") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CaptionerError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e
