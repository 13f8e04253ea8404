"""Progress for long runs: a tqdm bar on a terminal, and a log line at intervals when stderr is a file or pipe
(where a bar would print nothing until the end)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from tqdm import tqdm

log = logging.getLogger("captioner.progress")


class Ticker:
    """Counts work done. On a terminal it draws a tqdm bar; elsewhere it logs `desc: done/total (rate)` every
    `every` seconds and once at the end. quiet=True shows nothing (non-zero ranks under torchrun)."""

    def __init__(
        self, total: int, desc: str, unit: str = "it", initial: int = 0, every: float = 30.0, quiet: bool = False
    ) -> None:
        self.total, self.desc, self.unit, self.done, self.every = total, desc, unit, initial, every
        self.quiet = quiet
        on_terminal = sys.stderr.isatty() and not quiet
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit) if on_terminal else None
        self.t0 = self.last = time.perf_counter()
        self.start, self.postfix = initial, ""

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif not self.quiet and time.perf_counter() - self.last >= self.every:
            self._log()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())
        if self.bar is not None:
            self.bar.set_postfix(values)

    def _log(self) -> None:
        self.last = time.perf_counter()
        rate = (self.done - self.start) / max(1e-9, self.last - self.t0)
        extra = f", {self.postfix}" if self.postfix else ""
        log.info("%s: %d/%d %s (%.1f %s/s%s)", self.desc, self.done, self.total, self.unit, rate, self.unit, extra)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif not self.quiet and self.done > self.start:
            self._log()

    def __enter__(self) -> Ticker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
