"""Shields that keep the deadline (contract C1, DESIGN.md rules 4 and 11).

A plain ``trio.CancelScope(shield=True)`` hides every outer deadline: inside it,
``trio.current_effective_deadline()`` is ``inf``, so a stop's ``stop_timeout`` could not reach a
shielded cancel or reconciliation below it. Every shield under a wind-down is therefore opened
with :func:`shield_within`, which protects against a cancel but keeps the caller's deadline.
"""

from __future__ import annotations

import math

import trio

__all__ = ["shield_within"]


def shield_within(timeout: float = math.inf) -> trio.CancelScope:
    """A shielded scope whose deadline is the caller's effective deadline or ``timeout`` seconds
    from now, whichever comes first (real monotonic time: ``trio.current_time()``).

    Outside a wind-down the caller's deadline is usually ``inf``, so a ``pause`` that lands
    mid-submit still waits for the answer; a stop's deadline is honoured.
    """
    return trio.CancelScope(
        shield=True,
        deadline=min(trio.current_effective_deadline(), trio.current_time() + timeout),
    )
