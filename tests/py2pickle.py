"""Write pickles as Python 2.7 (with numpy 1.x) wrote them: protocol 2, byte strings as BINSTRING, arrays
through numpy.core.multiarray._reconstruct. Python 3 cannot produce these opcodes itself."""

from __future__ import annotations

import struct

import numpy as np


class Unicode(str):
    """A Python 2 `unicode` string (BINUNICODE); a plain str is written as a Python 2 byte string."""


def _str(s: str) -> bytes:
    if isinstance(s, Unicode):
        b = s.encode("utf-8")
        return b"X" + struct.pack("<I", len(b)) + b
    b = s.encode("latin1")
    return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<I", len(b))) + b


def _obj(x: object) -> bytes:
    if x is None:
        return b"N"
    if isinstance(x, bool):
        return b"\x88" if x else b"\x89"
    if isinstance(x, int):
        return b"K" + bytes([x]) if 0 <= x < 256 else b"J" + struct.pack("<i", x)
    if isinstance(x, str):
        return _str(x)
    if isinstance(x, tuple):
        return b"(" + b"".join(_obj(v) for v in x) + b"t"
    if isinstance(x, list):
        return b"](" + b"".join(_obj(v) for v in x) + b"e"
    if isinstance(x, dict):
        return b"}(" + b"".join(_obj(k) + _obj(v) for k, v in x.items()) + b"u"
    if isinstance(x, np.ndarray):
        return _array(x)
    raise TypeError(type(x))


def _dtype(dt: np.dtype) -> bytes:
    args = _obj((dt.str[1:], 0, 1))
    return b"cnumpy\ndtype\n" + args + b"R" + _obj((3, "<", None, None, None, -1, -1, 0)) + b"b"


def _array(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a)
    head = b"cnumpy.core.multiarray\n_reconstruct\n" + b"(cnumpy\nndarray\n" + _obj((0,)) + _str("b") + b"tR"
    raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
    data = b"T" + struct.pack("<I", len(raw)) + raw  # a Python 2 str holding the raw bytes
    state = b"(" + _obj(1) + _obj(tuple(a.shape)) + _dtype(a.dtype) + _obj(False) + data + b"t"
    return head + state + b"b"


def dumps(x: object) -> bytes:
    """Protocol-2 pickle bytes of x as Python 2 would write them."""
    return b"\x80\x02" + _obj(x) + b"."
