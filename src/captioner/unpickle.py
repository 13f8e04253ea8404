"""The one way anything is unpickled: a restricted unpickler that admits plain containers and strings, and
numpy arrays of numbers when asked, and refuses every other global before it runs."""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from captioner.errors import CaptionerError


class _Refuse(pickle.Unpickler):
    """Base: every global is refused unless a subclass admits it by (module, name)."""

    allowed: dict[tuple[str, str], Any] = {}
    where = ""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        raise CaptionerError(
            f"{self.where}: refused to load: the pickle asks for {module}.{name}, which is not allowed"
        )


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise CaptionerError(f"refused to load: an array of type {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _dtype(spec: Any, align: Any = 0, copy: Any = 1) -> np.dtype:
    dt = np.dtype(spec)
    if dt.hasobject:
        raise CaptionerError("refused to load: an array of Python objects")
    return dt


class _ArrayUnpickler(_Refuse):
    allowed = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # Python 2 and numpy < 2 pickles
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _dtype,
    }


def safe_unpickle(data: bytes, where: str, arrays: bool) -> Any:
    """Unpickle Python 2 or 3 data with latin-1 strings; only plain containers and strings, plus numpy arrays
    of numbers when `arrays`. Anything else is refused before it runs."""
    cls = _ArrayUnpickler if arrays else _Refuse
    up = cls(io.BytesIO(data), encoding="latin1")
    up.where = where
    try:
        return up.load()
    except CaptionerError:
        raise
    except Exception as e:  # a truncated or corrupt pickle
        raise CaptionerError(f"{where}: not a readable pickle ({type(e).__name__}: {e})") from None
