"""Where the terminal view keeps the commands typed, across runs.

The rules this module keeps:

* The file is ``$XDG_STATE_HOME/trio-trade/history``, or ``~/.local/state/trio-trade/history``
  when ``XDG_STATE_HOME`` is unset or not absolute (as the XDG base directory spec says).
* Only its owner can read it: the folder is created 0700 and the file 0600, and an existing file
  that others could read is narrowed to 0600 (commands name strategies and amounts).
* A history that cannot be kept (a read-only home, a folder where the file should be) costs the
  run its history, never the run: :func:`open_history` then returns an in-memory history and
  says why.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from prompt_toolkit.history import FileHistory, History, InMemoryHistory

__all__ = ["history_path", "open_history"]


def history_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    state = env.get("XDG_STATE_HOME", "")
    base = (
        Path(state)
        if os.path.isabs(state)
        else Path(env.get("HOME") or Path.home()) / (".local/state")
    )
    return base / "trio-trade" / "history"


def open_history(path: Path) -> tuple[History, str | None]:
    """A history kept in ``path`` (created 0600), or an in-memory one and the reason why not."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise OSError(f"{path} is not a regular file")
            if stat.S_IMODE(mode) & 0o077:
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    except OSError as exc:
        return InMemoryHistory(), f"command history not kept ({exc})"
    return FileHistory(path), None
