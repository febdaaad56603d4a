"""ReplayBroker: the paper broker, fed by the bar stream instead of polling the clock.

The paper broker's model is kept whole (:mod:`trading.exchanges.paper`: Binance's checks, codes
and messages, fees in the quote asset, slippage and tick rounding against the trader). What
changes in a replay, and why:

* **Market orders** (and marketable limits) fill at once at the current price — the close of
  the bar just closed (:class:`~trading.replay.market.BarsMarket`) — worsened by ``slippage``
  and rounded to the tick against the trader: a buy at ``close * (1 + slippage)`` rounded up, a
  sell at ``close * (1 - slippage)`` rounded down. The paper broker's convention, unchanged.
* **Resting limit orders** are judged per bar, not per polled minute: when a *later* bar's range
  reaches the limit (``low <= limit`` for a buy, ``high >= limit`` for a sell) the order fills in
  full at its limit, as maker, at that bar's close time. The paper broker's ``run`` polls every
  simulated minute, which costs a scheduler loop per minute; here :meth:`on_bar` is called by
  the replay clock as it moves, so ``run`` only waits.
* Its async methods check for cancellation without yielding (``checkpoint_if_cancelled``): a
  cancelled call still did nothing, and an order costs no task switch.
* It keeps what a result needs: every fill (:attr:`fills`) and the holdings after each one
  (:attr:`holdings`), from which the equity curve is valued at every close.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import trio

from trading.core.bars import Bar
from trading.core.records import Fill, Side
from trading.exchanges.base import OrderUpdate, PriceSource, SymbolInfo
from trading.exchanges.paper import DEFAULT_BALANCES, PaperBroker, _Order
from trading.runtime.clock import Clock

__all__ = ["ReplayBroker"]


class ReplayBroker(PaperBroker):
    """A :class:`PaperBroker` whose resting orders are filled by :meth:`on_bar`."""

    _checkpoint = staticmethod(trio.lowlevel.checkpoint_if_cancelled)

    def __init__(
        self,
        prices: PriceSource,
        clock: Clock,
        *,
        balances: Mapping[str, Decimal] = DEFAULT_BALANCES,
        fee_rate: Decimal = Decimal("0.001"),
        slippage: Decimal = Decimal("0.0005"),
        symbols: Mapping[str, SymbolInfo] | None = None,
    ) -> None:
        super().__init__(
            prices,
            clock,
            balances=balances,
            fee_rate=fee_rate,
            slippage=slippage,
            symbols=symbols,
        )
        self._on_update: OrderUpdate | None = None
        self.fills: list[Fill] = []
        self._marks: dict[str, tuple[float, Decimal]] = {}
        #: ``(time, {base: held, quote: held})`` after each fill, free and locked together.
        self.holdings: list[tuple[float, dict[str, Decimal]]] = []

    async def run(
        self,
        on_update: OrderUpdate,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Ready at once; then only wait (bars come through :meth:`on_bar`). Cancelling it
        disconnects: later fills of resting orders are no longer pushed."""
        self._on_update = on_update
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self._on_update = None

    def on_bar(self, bar: Bar) -> None:
        """A bar closed: fill, oldest first, every resting order of its symbol that its range
        reached. Synchronous; the engine's update callback never raises."""
        if not self._open:
            return
        for key, order in list(self._open.items()):
            request = order.request
            if request.symbol != bar.symbol:
                continue
            limit = request.price
            assert limit is not None
            if request.side is Side.BUY:
                reached = Decimal(repr(bar.low)) <= limit
            else:
                reached = Decimal(repr(bar.high)) >= limit
            if reached:
                del self._open[key]
                self._fill(order, self._symbols[request.symbol], limit)
                if self._on_update is not None:
                    self._on_update(order.report())

    def _market_price(self, info: SymbolInfo) -> Decimal:
        """The paper broker's price, computed once per symbol and clock time: it is a pure
        function of both, and a replay asks for it on every bar a position is held."""
        now = self._clock.now()
        cached = self._marks.get(info.symbol)
        if cached is not None and cached[0] == now:
            return cached[1]
        price = super()._market_price(info)
        self._marks[info.symbol] = (now, price)
        return price

    def balances_total(self) -> dict[str, Decimal]:
        """Every asset held, free plus locked."""
        assets = set(self._free) | set(self._locked)
        return {a: self._free.get(a, Decimal(0)) + self._locked.get(a, Decimal(0)) for a in assets}

    def _fill(self, order: _Order, info: SymbolInfo, price: Decimal) -> Fill:
        fill = super()._fill(order, info, price)
        self.fills.append(fill)
        held = {}
        for asset in (info.base, info.quote):
            held[asset] = self._free.get(asset, Decimal(0)) + self._locked.get(asset, Decimal(0))
        self.holdings.append((fill.time, held))
        return fill
