"""The account's kill switch, wired to its strategy: a trip pauses it, as an operator's pause would.

The rules this module keeps (DESIGN.md rule 7):

* A trip goes through the strategy's mailbox as ``pause NAME`` from source ``risk``, so it is
  audited and ordered like any command, and never waits (``send_nowait``).
* The callback holds its strategy weakly: the engine's account must not keep a removed
  strategy's runner alive.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Protocol

from trading.core.commands import Command
from trading.runtime.mailbox import Mailbox

__all__ = ["pause_on_kill"]


class _Pausable(Protocol):
    name: str
    mailbox: Mailbox


def pause_on_kill(runner: _Pausable) -> Callable[[str], None]:
    """The ``account.on_kill`` callback for ``runner``: pause it at once, holding it weakly."""
    ref = weakref.ref(runner)

    def kill(reason: str) -> None:
        target = ref()
        if target is not None:
            name = target.name
            pause = Command("pause", name, source="risk", text=f"pause {name}")
            target.mailbox.send_nowait(pause, _ignore)

    return kill


def _ignore(result: object) -> None:
    """A reply nobody waits for (the kill switch's own pause is audited like any command)."""
