"""Crash recovery: a restarted run takes over what its strategies' earlier runs left behind.

After a ``kill -9`` the exchange still holds the strategy's resting orders and its trades, and
the database holds what the recorder committed before the process died (all but a tail).
Before a strategy starts, :class:`Recovery` rebuilds its account from both. The rules it keeps:

* The exchange is the truth, the database the memory. Positions are the database's fills
  replayed in the order they were booked, plus every exchange trade of the strategy whose
  ``(symbol, trade id)`` the database lacks, booked once, through the engine (so it is recorded,
  and the next restart finds it in the database). An order's state is the exchange's.
* Orders are matched by client order id: an id is this strategy's if the database recorded it
  for the strategy, or if it is what ``new_client_order_id`` makes for this strategy with the
  id's own sequence and run. Open orders of other strategies, or not made by trio-trade, are
  left alone and named in the report.
* Nothing is sent: an adopted order is tracked again (pushes apply, ``ctx.account`` lists it,
  stop and flatten cancel it), never re-submitted. An order the database thought open and the
  exchange does not know is reconciled in the background like a lost submit (``not found`` is
  believed only after the engine's grace).
* All reads come first, the changes last, with no await between the last read and the end:
  a recovery that fails changes nothing, and a trade that happens meanwhile is either in the
  trades read or pushed to an order already tracked (a cancel in that window is learnt when
  the order is next touched). Recovery is idempotent: a second restart finds the same state.
* Fail closed: if the exchange cannot be read within ``timeout`` seconds (real time; its reads
  are retried, they are read-only), or the database cannot be read at all,
  :class:`RecoveryFailed` stops the start, so a strategy never trades on a position or next to
  an order it does not know. ``recover=False`` is the way to start anyway.

Layering (DESIGN.md): the database is reached through the ``TradeHistory`` port of
:mod:`trading.runtime.history`; the recorder's side implements it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import TypeVar

import trio

from trading.core import events as ev
from trading.core.orders import Side
from trading.core.risk import RiskLimits
from trading.exchanges.base import Recoverable
from trading.runtime.account import Account
from trading.runtime.engine import TradeEngine
from trading.runtime.history import TradeHistory
from trading.runtime.recovery_plan import Plan

__all__ = ["Recovery", "RecoveryFailed", "recovery_for"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class RecoveryFailed(Exception):
    """The strategy did not start: its earlier state could not be read (message says why)."""


def recovery_for(
    recover: bool | None,
    exchange: object,
    observers: Iterable[object],
    flush: Callable[[], Awaitable[None]],
) -> Recovery | None:
    """The Runner's ``recover`` option. None (the default) recovers when an observer is a
    :class:`TradeHistory` (a Recorder: a database is configured) and the exchange is
    :class:`Recoverable` and keeps its state beyond this process (an exchange class saying
    ``outlives_process = False``, like the in-memory paper broker, is new at each start: the
    database's positions would be wrong for it). True without both is a ValueError."""
    history = next((o for o in observers if isinstance(o, TradeHistory)), None)
    if recover is None:
        recover = (
            history is not None
            and isinstance(exchange, Recoverable)
            and getattr(exchange, "outlives_process", True) is not False
        )
    if not recover:
        return None
    if history is None:
        raise ValueError("recover=True needs a database: attach a Recorder to the Runner")
    if not isinstance(exchange, Recoverable):
        raise ValueError(
            f"recover=True needs an exchange that lists open orders and trades; "
            f"{type(exchange).__name__} does not"
        )
    return Recovery(history, flush=flush)


class Recovery:
    """One Runner's crash recovery; :meth:`account` gives a strategy its recovered account.

    ``flush`` waits until the recorder committed what this run published (so a strategy
    removed and added again reads its own fills back). ``lookback`` (seconds) widens the
    trades read for clock skew between the database's times and the exchange's.
    """

    def __init__(
        self,
        history: TradeHistory,
        *,
        flush: Callable[[], Awaitable[None]],
        timeout: float = 30.0,
        lookback: float = 60.0,
    ) -> None:
        self.history = history
        self.flush = flush
        self.timeout = timeout
        self.lookback = lookback

    async def account(
        self, engine: TradeEngine, strategy: str, limits: RiskLimits | None, symbols: Sequence[str]
    ) -> Account:
        """The strategy's account, recovered if the engine does not hold it yet (an account
        that lives on across restarts in this run already knows everything). Raises
        RecoveryFailed, and leaves the engine without the account, if recovery failed.
        Cancelling it before it ends changes nothing (the reads come first)."""
        if engine.has_account(strategy):
            return engine.account(strategy, limits)
        exchange = engine.exchange
        if not isinstance(exchange, Recoverable):
            raise RecoveryFailed(f"{type(exchange).__name__} cannot list open orders and trades")
        await self.flush()  # local and bounded by the recorder; no real-time limit of ours
        try:
            recorded = await self.history.recorded(strategy)
        except Exception as exc:
            raise RecoveryFailed(
                f"{strategy}: cannot recover: the database could not be read "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        plan = Plan(strategy, recorded)
        opened = await self._read("open orders", exchange.open_orders)
        plan.take_open(opened)
        for order in plan.unsettled():
            plan.reports[order.client_order_id] = await self._read(
                f"order {order.client_order_id}",
                partial(engine.exchange.query, order.symbol, order.client_order_id),
            )
        since = max(plan.since() - self.lookback, 0.0)
        await self._read_trades(exchange, plan, symbols, since)
        lost = plan.orders_of_trades_only()
        for symbol, cid in lost:
            plan.reports[cid] = await self._read(
                f"order {cid}", partial(engine.exchange.query, symbol, cid)
            )
        if lost:  # those reads took time: read the trades again, last
            await self._read_trades(exchange, plan, symbols, since)
        balances = await self._read("balances", engine.balances)
        if engine.has_account(strategy):  # recovered by a concurrent add meanwhile
            return engine.account(strategy, limits)
        account = engine.account(strategy, limits)
        try:
            event = plan.apply(engine, account)  # no await from here on
        except Exception as exc:
            engine.release(strategy)
            raise RecoveryFailed(f"{strategy}: cannot rebuild its books: {exc}") from exc
        _check_holdings(account, balances)
        engine.publish(event)
        log.info("%s", ev.describe(event))
        return account

    async def _read_trades(
        self, exchange: Recoverable, plan: Plan, symbols: Sequence[str], since: float
    ) -> None:
        for symbol in sorted(plan.symbols() | set(symbols)):
            plan.trades[symbol] = await self._read(
                f"trades in {symbol}", partial(exchange.trades_since, symbol, since)
            )

    async def _read(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call()``, retried with backoff for ``timeout`` seconds of real time (it is
        read-only); RecoveryFailed naming ``what`` and the last error after that."""
        delay, last = 0.25, "no answer"
        with trio.move_on_after(self.timeout):
            while True:
                try:
                    return await call()
                except Exception as exc:
                    last = f"{type(exc).__name__}: {exc}"
                    log.warning("recovery: reading %s failed (%s); retrying", what, last)
                await trio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise RecoveryFailed(
            f"cannot recover: {what} could not be read within {self.timeout:g}s ({last}); "
            "not starting on positions and orders it does not know (recover=False to start anyway)"
        )


def _check_holdings(account: Account, balances: Mapping[str, Decimal]) -> None:
    """Warn if a recovered long position is more than the account holds of the asset (free,
    plus what the strategy's own open sells lock): the books and the exchange disagree."""
    for symbol, position in account.book.positions.items():
        base = account.book.symbols[symbol][0]
        if position.quantity <= 0:
            continue
        locked = sum(
            (o.remaining_quantity for o in account.open_orders(symbol) if o.side is Side.SELL),
            Decimal(0),
        )
        held = balances.get(base, Decimal(0)) + locked  # an asset not listed is not held
        if position.quantity > held:
            log.warning(
                "%s: recovered position %s %s but the exchange holds %s %s: check the account",
                account.strategy,
                symbol,
                position.quantity,
                held,
                base,
            )
