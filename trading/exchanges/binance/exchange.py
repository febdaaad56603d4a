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
  Balances too: a REST snapshot once the user stream is subscribed (and after each
  resubscription), kept current by its ``outboundAccountPosition`` pushes; the pre-trade check
  costs no request weight. (The exchange stays the judge: it refuses what the cache let by.)
* Crash recovery (:class:`~trading.exchanges.base.Recoverable`): ``open_orders`` and
  ``trades_since`` answer completely or raise, never in part; myTrades names orders by the
  exchange's id, so trades are matched to client ids through ``allOrders`` (cached).
* Keys live in the REST client and the user stream; nothing here logs or prints them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal

import attrs
import trio

from trading.core.records import Fill
from trading.core.updates import ExchangeOrder
from trading.exchanges.base import OrderRequest, OrderUpdate, SymbolInfo
from trading.exchanges.binance.frames import AccountUpdate
from trading.exchanges.binance.rest import BinanceRest, Trade
from trading.exchanges.binance.user_stream import UserDataStream
from trading.exchanges.links import Link

__all__ = ["BinanceExchange"]

log = logging.getLogger(__name__)

Mark = Callable[[str], Decimal | None]
#: Binance's largest page for myTrades and allOrders.
_PAGE = 1000


class BinanceExchange:
    """Order routing on Binance spot. ``marks`` is the market's cached stream prices."""

    def __init__(
        self,
        rest: BinanceRest,
        user_stream: UserDataStream | None,
        *,
        marks: Mark | None = None,
        symbols: tuple[str, ...] = (),
        connect_timeout: float = 30.0,
        info: Mapping[str, SymbolInfo] | None = None,
    ) -> None:
        self.rest = rest
        self.connect_timeout = connect_timeout
        self.user_stream = user_stream
        self._marks = marks
        self._wanted = symbols
        self._info: dict[str, SymbolInfo] = dict(info or {})
        self._open: dict[str, str] = {}  # client order id -> symbol, for orders not known final
        self._client_of: dict[str, str] = {}  # exchange order id -> client order id
        self._free: dict[str, Decimal] | None = None  # streamed balances, once snapshotted
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
        if not self.rest.synced:
            await self.rest.sync_time()
        if not self._info:  # not handed over by the market (which read them already)
            self._info = await self.rest.exchange_info(self._wanted or None)
        self._on_update = on_update
        async with trio.open_nursery() as nursery:
            if self.user_stream is not None:
                try:
                    with trio.fail_after(self.connect_timeout):
                        await nursery.start(
                            self.user_stream.run, self._pushed, self._on_account, self._resubscribed
                        )
                except trio.TooSlowError:
                    raise ConnectionError(
                        f"no user data stream subscription within {self.connect_timeout:g} s"
                    ) from None
                await self._refresh_balances()
                nursery.start_soon(self._resyncer)
            task_status.started()

    def links(self) -> list[Link]:
        """The user data stream (when there is one) and the REST API, for health reports."""
        stream = [self.user_stream.link] if self.user_stream is not None else []
        return [*stream, self.rest.link]

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
        """The order, with its trades: ``GET /order`` reports only the cumulative fill, so when
        it traded, its trades are read too (``myTrades?orderId=``) — an answer and its pushes
        both lost must not leave a fill unbooked."""
        report = await self.rest.get_order(symbol, client_order_id)
        if report is None:
            return None
        self._seen(report)
        if report.filled_quantity > 0 and sum(f.quantity for f in report.fills) < (
            report.filled_quantity
        ):
            trades = await self.rest.my_trades(symbol, order_id=report.exchange_order_id)
            fills = tuple(t.to_fill(client_order_id) for t in trades)
            report = attrs.evolve(report, fills=fills)
        return report

    async def balances(self) -> Mapping[str, Decimal]:
        """Free balances: the user stream's, cached (no REST call per order), else REST."""
        if self._free is not None:
            await trio.lowlevel.checkpoint()
            return dict(self._free)
        account = await self.rest.account()
        return {asset: balance.free for asset, balance in account.items()}

    async def last_price(self, symbol: str) -> Decimal:
        if self._marks is not None:
            mark = self._marks(symbol)
            if mark is not None:
                return mark
        return await self.rest.ticker_price(symbol)

    # -- crash recovery ----------------------------------------------------------------------------

    async def open_orders(self) -> list[ExchangeOrder]:
        """Every open order of the account (``openOrders`` without a symbol, weight 80)."""
        orders = await self.rest.open_orders()
        for order in orders:
            self._open[order.client_order_id] = order.symbol
        return orders

    async def trades_since(self, symbol: str, since: float) -> list[Fill]:
        """Every trade in ``symbol`` at or after ``since``, oldest first, each matched to its
        order's client id (``""`` when the exchange no longer lists the order)."""
        trades = await self._trades_since(symbol, round(since * 1000))
        ids = await self._client_ids(symbol, {t.order_id for t in trades})
        return [t.to_fill(ids.get(t.order_id, "")) for t in trades]

    async def _trades_since(self, symbol: str, since_ms: int) -> list[Trade]:
        # startTime finds the first page (Binance answers up to 24 h after it); fromId pages on
        # from there with no time limit. If that day is empty, walk back from the newest.
        page = await self.rest.my_trades(symbol, start_ms=since_ms, limit=_PAGE)
        if not page:
            page = await self._newest_back_to(symbol, since_ms)
        trades = list(page)
        while len(page) == _PAGE:
            page = await self.rest.my_trades(symbol, from_id=int(trades[-1].trade_id) + 1)
            trades += page
        return [t for t in trades if t.time * 1000 >= since_ms]

    async def _newest_back_to(self, symbol: str, since_ms: int) -> list[Trade]:
        page = await self.rest.my_trades(symbol, limit=_PAGE)
        trades = list(page)
        while len(page) == _PAGE and trades[0].time * 1000 >= since_ms:
            first = int(trades[0].trade_id)
            page = await self.rest.my_trades(symbol, from_id=max(0, first - _PAGE), limit=_PAGE)
            page = [t for t in page if int(t.trade_id) < first]
            trades[:0] = page
        return trades

    async def _client_ids(self, symbol: str, order_ids: set[str]) -> dict[str, str]:
        missing = order_ids - self._client_of.keys()
        if missing:
            first = min(int(i) for i in missing)
            page = await self.rest.all_orders(symbol, order_id=first, limit=_PAGE)
            while True:
                for order in page:
                    self._client_of[order.exchange_order_id] = order.client_order_id
                if len(page) < _PAGE or missing <= self._client_of.keys():
                    break
                last = max(int(o.exchange_order_id) for o in page)
                page = await self.rest.all_orders(symbol, order_id=last + 1, limit=_PAGE)
        return {i: self._client_of[i] for i in order_ids if i in self._client_of}

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

    def _on_account(self, update: AccountUpdate) -> None:
        """``outboundAccountPosition``: the assets that changed."""
        if self._free is not None:
            for asset, (free, _locked) in update.balances.items():
                self._free[asset] = free

    async def _refresh_balances(self) -> None:
        """A full snapshot over REST, then pushes keep it current (after every resubscription
        too: pushes missed while disconnected are not replayed)."""
        account = await self.rest.account()
        self._free = {asset: balance.free for asset, balance in account.items()}

    async def _resyncer(self) -> None:
        """After each resubscription, ask for every order not known final and push its report."""
        while True:
            await self._resync.wait()
            self._resync = trio.Event()
            try:
                await self._refresh_balances()
            except Exception as exc:  # until it works, balances() goes to REST
                self._free = None
                log.warning("balances after resubscribing: %s", type(exc).__name__)
            for cid, symbol in list(self._open.items()):
                try:
                    report = await self.query(symbol, cid)
                except Exception as exc:  # the engine's reconciler covers what this misses
                    log.warning(
                        "resync of %s failed (%s); the next push or query covers it",
                        cid,
                        type(exc).__name__,
                    )
                    continue
                if report is not None:
                    self._pushed(report)
