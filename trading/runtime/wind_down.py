"""The wind-down of one strategy: on_stop, its orders, a flush — under one deadline, all reported.

Rule 11 of DESIGN.md: every shutdown path is bounded and true. A stop, a failure past its restart
budget and an outside cancellation (the Runner torn down) all end here. The three steps run inside
ONE ``trio.CancelScope(shield=True, deadline=start + timeout)``: the shield holds against the
cancellation that brought us here, and the deadline reaches every shielded step below (the
engine's own shielded exchange calls take ``min(current_effective_deadline(), ...)``), so
``stop_timeout`` bounds the stop as a whole. ``on_stop`` may use at most half of it: a strategy
whose on_stop hangs must not leave its orders resting at the exchange, so the other half is kept
for cancelling them (and the flush). What a deadline cut short is named: the step, and each order
the account still holds open, by client order id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from trading.runtime.account import Account

__all__ = ["left_over", "run_on_stop", "wind_down"]

log = logging.getLogger(__name__)


async def run_on_stop(name: str, on_stop: Callable[[], Awaitable[None]]) -> str | None:
    """Run on_stop under the caller's scope; a sentence for what went wrong, if anything."""
    try:
        await on_stop()
    except Exception as exc:
        log.exception("%s: on_stop raised", name)
        return f"raised {type(exc).__name__}: {exc}"
    return None


async def wind_down(
    name: str,
    *,
    on_stop: Callable[[], Awaitable[None]] | None,
    account: Account | None,
    flush: Callable[[], Awaitable[None]] | None,
    stop_timeout: float,
) -> tuple[bool, str]:
    """Run the wind-down; ``(ok, "stopped; ...")`` with every problem and every line of the
    account's shutdown report. Never raises, never outlives ``stop_timeout`` (of trio time)."""
    done: list[str] = []
    problems: list[str] = []
    step = "on_stop"
    shut = False
    with trio.CancelScope(shield=True, deadline=trio.current_time() + stop_timeout) as scope:
        if on_stop is not None:
            with trio.move_on_after(stop_timeout / 2) as own:
                problem = await run_on_stop(name, on_stop)
                if problem:
                    problems.append(f"on_stop {problem}")
            if own.cancelled_caught:
                log.error("%s: on_stop timed out after %gs", name, stop_timeout / 2)
                problems.append(
                    f"on_stop timed out after {stop_timeout / 2:g}s (half of stop_timeout "
                    f"{stop_timeout:g}s; the rest is kept for the orders)"
                )
        if account is not None:
            step = "cancelling open orders"
            try:
                done.extend(await account.shutdown())
            except Exception as exc:
                log.exception("%s: winding down orders failed", name)
                problems.append(f"winding down orders failed: {type(exc).__name__}: {exc}")
            shut = True
        if flush is not None:
            step = "flushing observers"
            await flush()
    if scope.cancelled_caught:
        problems.append(f"{step} timed out: stop_timeout {stop_timeout:g}s covers the whole stop")
        log.error("%s: %s timed out after %gs", name, step, stop_timeout)
        if account is not None and not shut:
            done.extend(left_over(account))
    return not problems, "; ".join(["stopped", *problems, *done])


def left_over(account: Account) -> list[str]:
    """What the account still holds, named from its book (no await: the deadline has passed)."""
    lines = [
        f"order {o.client_order_id} not cancelled ({o.state.value})" for o in account.open_orders()
    ]
    for symbol, position in account.book.positions.items():
        if position.quantity:
            lines.append(f"position {symbol} {position.quantity} kept")
    return lines
