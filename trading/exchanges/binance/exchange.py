"""Binance as an :class:`~trading.exchanges.base.Exchange`: signed REST calls, and the user data
stream pushing every order change to the engine.

The rules this module keeps:

* The engine is the only caller, and it runs ``submit``/``cancel`` shielded under its own
  deadline; whatever happens here other than a :class:`BinanceError` (the exchange answered and
  refused: nothing happened) leaves the outcome unknown, and the engine reconciles the order by
  its client order id with ``query``. Nothing here retries a submit.
* Pushes (``executionReport``) and REST answers reach the engine in any order, more than once;
  the engine keeps what moves an order forward (DESIGN.md rule 4).
* After the user stream reconnects, pushes sent while it was down are lost: every order this
  process placed that is not known final is asked for over REST and its report pushed, so a
  fill during the outage is booked (once) without waiting for the next push.
* Marks come from the market's stream cache; REST is the fallback before its first update.
* Keys live in the REST client and the user stream; nothing here logs or prints them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal

import trio

from trading.core.updates import ExchangeOrder
from trading.exchanges.base import OrderRequest, OrderUpdate, SymbolInfo
from trading.exchanges.binance.rest import BinanceRest
from trading.exchanges.binance.user_stream import UserDataStream

__all__ = ["BinanceExchange"]

log = logging.getLogger(__name__)

Mark = Callable[[str], Decimal | None]


class BinanceExchange:
    """Order routing on Binance spot. ``marks`` is the market's cached stream prices."""

    def __init__(
        self,
        rest: BinanceRest,
        user_stream: UserDataStream | None,
        *,
        marks: Mark | None = None,
        symbols: tuple[str, ...] = (),
    ) -> None:
        self.rest = rest
        self.user_stream = user_stream
        self._marks = marks
        self._wanted = symbols
        self._info: dict[str, SymbolInfo] = {}
        self._open: dict[str, str] = {}  # client order id -> symbol, for orders not known final
        self._on_update: OrderUpdate | None = None
        self._resync = trio.Event()

    async def run(
        self,
        on_update: OrderUpdate,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Load trading rules, subscribe to the user data stream, push order changes; until
        cancelled. Ready once the rules are known and the subscription is confirmed."""
        await self.rest.sync_time()
        self._info = await self.rest.exchange_info(self._wanted or None)
        self._on_update = on_update
        async with trio.open_nursery() as nursery:
            if self.user_stream is not None:
                await nursery.start(
                    self.user_stream.run, self._pushed, self._ignore_account, self._resubscribed
                )
                nursery.start_soon(self._resyncer)
            task_status.started()

    def symbol_info(self) -> Mapping[str, SymbolInfo]:
        return self._info

    async def submit(self, request: OrderRequest) -> ExchangeOrder:
        self._open[request.client_order_id] = request.symbol
        report = await self.rest.new_order(request)
        self._seen(report)
        return report

    async def cancel(self, symbol: str, client_order_id: str) -> ExchangeOrder:
        report = await self.rest.cancel_order(symbol, client_order_id)
        self._seen(report)
        return report

    async def query(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        report = await self.rest.get_order(symbol, client_order_id)
        if report is not None:
            self._seen(report)
        return report

    async def balances(self) -> Mapping[str, Decimal]:
        account = await self.rest.account()
        return {asset: balance.free for asset, balance in account.items()}

    async def last_price(self, symbol: str) -> Decimal:
        if self._marks is not None:
            mark = self._marks(symbol)
            if mark is not None:
                return mark
        return await self.rest.ticker_price(symbol)

    # -- internals ---------------------------------------------------------------------------------

    def _seen(self, report: ExchangeOrder) -> None:
        if report.state.is_final:
            self._open.pop(report.client_order_id, None)

    def _pushed(self, report: ExchangeOrder) -> None:
        self._seen(report)
        if self._on_update is not None:
            self._on_update(report)

    def _resubscribed(self) -> None:
        self._resync.set()

    @staticmethod
    def _ignore_account(_: object) -> None:
        """Balances are read when needed (``balances``); the push is not cached."""

    async def _resyncer(self) -> None:
        """After each resubscription, ask for every order not known final and push its report."""
        while True:
            await self._resync.wait()
            self._resync = trio.Event()
            for cid, symbol in list(self._open.items()):
                try:
                    report = await self.rest.get_order(symbol, cid)
                except Exception as exc:  # the engine's reconciler covers what this misses
                    log.warning(
                        "resync of %s failed (%s); the next push or query covers it",
                        cid,
                        type(exc).__name__,
                    )
                    continue
                if report is not None:
                    self._pushed(report)
