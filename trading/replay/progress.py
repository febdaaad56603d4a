"""Progress of a long replay: a bar on a terminal, or any callable (a notebook's widget).

The rules this module keeps:

* A progress hook is ``(bars_done, bars_total) -> None``, called synchronously from the replay's
  clock about a hundred times per replay and once at the end; it must not block (it runs on the
  event loop). One that raises is logged once and not called again: progress never ends a replay.
* The default bar writes only when its stream is a terminal (``isatty``), so logs, pipes and the
  test suite see nothing; it redraws one line with ``\\r`` and ends it with a newline.
* In a Jupyter kernel (no terminal there) the default is one output line updated in place
  (IPython's display handles; no widget library needed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["Progress", "default_progress", "guarded", "notebook_progress", "terminal_progress"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_WIDTH = 30
#: Replays shorter than this finish too fast for a bar to be worth drawing.
MIN_BARS = 20_000


def default_progress(stream: TextIO, total: int, *, force: bool = False) -> Progress | None:
    """A bar on ``stream`` if it is a terminal, else in the notebook when run in a kernel."""
    return terminal_progress(stream, total, force=force) or (
        notebook_progress(total) if total >= MIN_BARS or force else None
    )


def notebook_progress(total: int) -> Progress | None:
    """A line in the running notebook cell's output, updated in place; None outside a kernel."""
    try:
        import IPython
        import IPython.display
    except ImportError:
        return None
    shell = IPython.get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return None
    shows: Any = IPython.display  # untyped: reached through Any
    handle = shows.display(shows.Pretty(_line(0, total)), display_id=True)
    if handle is None:
        return None

    def draw(done: int, total: int) -> None:
        handle.update(shows.Pretty(_line(done, total)))

    return guarded(draw)


def _line(done: int, total: int) -> str:
    filled = _WIDTH * done // max(total, 1)
    percent = 100 * done // max(total, 1)
    return f"replay [{'#' * filled}{'.' * (_WIDTH - filled)}] {percent:3d}% {done:,}/{total:,} bars"


def terminal_progress(stream: TextIO, total: int, *, force: bool = False) -> Progress | None:
    """A text bar on ``stream`` if it is a terminal and the replay is long (or ``force``)."""
    if not force and (total < MIN_BARS or not _isatty(stream)):
        return None

    def draw(done: int, total: int) -> None:
        stream.write(f"\r{_line(done, total)}")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return guarded(draw)


def guarded(hook: Progress) -> Progress:
    """``hook``, but one that raises is logged once and then left out."""
    broken = False

    def call(done: int, total: int) -> None:
        nonlocal broken
        if broken:
            return
        try:
            hook(done, total)
        except Exception:
            broken = True
            log.exception("the replay's progress hook raised; no more progress is shown")

    return call


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False
