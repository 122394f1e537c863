"""A progress bar on stderr with count and ETA, drawn from a check's `progress(done, total)`
callback (see [`CheckOptions`][layerkit.CheckOptions]): no timing model, only what the checker
reports."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

BAR_AFTER_SECONDS = 0.5
"""The bar appears only once a run has lasted this long: quick runs print nothing."""

CLOCK: Callable[[], float] = time.monotonic
"""The bars' time source, unless one is given (tests replace it)."""

BAR_WIDTH = 24


def _seconds(value: float) -> str:
    value = max(0.0, value)
    if value < 60:
        return f"{value:.0f}s"
    minutes, seconds = divmod(int(value + 0.5), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


class ProgressBar:
    """`label [#####-----] done/total  ETA 12s` on `stream`, redrawn in place at each call,
    erased by `close`.

    The ETA is the time so far per unit done, times the units left (`?` before any is done).

    Args:
        stream: Where to draw (a terminal).
        label: What runs, e.g. `checking 47 parameters`.
        after: Seconds from the start before the first drawing.
        clock: The time source (default `CLOCK`).
    """

    def __init__(
        self,
        stream: IO[str],
        label: str,
        *,
        after: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.stream = stream
        self.label = label
        self.after = BAR_AFTER_SECONDS if after is None else after
        self.clock = clock or CLOCK
        self.start = self.clock()
        self.width = 0

    def line(self, done: int, total: int, elapsed: float) -> str:
        """The bar's text for `done` of `total` after `elapsed` seconds."""
        fraction = min(1.0, done / total) if total > 0 else 1.0
        filled = round(BAR_WIDTH * fraction)
        if done >= total:
            eta = "done"
        elif done > 0:
            eta = "ETA " + _seconds(elapsed / done * (total - done))
        else:
            eta = "ETA ?"
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return f"{self.label} [{bar}] {done}/{total}  {eta}"

    def __call__(self, done: int, total: int) -> None:
        elapsed = self.clock() - self.start
        if elapsed < self.after:
            return
        text = self.line(done, total, elapsed)
        pad = " " * max(0, self.width - len(text))
        self.width = max(self.width, len(text))
        self.stream.write(f"\r{text}{pad}")
        self.stream.flush()

    def close(self) -> None:
        """Erase the bar (if it was drawn)."""
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


def progress_bar(label: str, *, quiet: bool) -> ProgressBar | None:
    """A `ProgressBar` on stderr when stderr is a terminal and `quiet` is false; else None
    (no callback)."""
    stream = sys.stderr
    isatty = getattr(stream, "isatty", None)
    if quiet or not (callable(isatty) and isatty()):
        return None
    return ProgressBar(stream, label)
