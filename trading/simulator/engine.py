"""The matching engine: one account's orders, balances and trades against the simulated market.

Rules this module keeps:

* Sans-IO and single-threaded: every method is a plain function of the engine's state and the
  market time ``now_ms`` the caller passes (integer ms). Time never goes backwards: an earlier
  ``now_ms`` is treated as the latest time seen.
* ``place`` and ``cancel`` first advance the market to ``now_ms`` (matching resting orders on the
  way), so an order only ever trades against prices after it was placed and before it was
  cancelled. Their event lists therefore may hold other orders' fills, oldest first.
* Refusals raise :class:`SimError` with Binance's code and message and change nothing (but the
  advance to ``now_ms``, whose events the next ``place`` / ``cancel`` / ``advance`` returns).
* Balances are exact Decimals: a buy locks ``price * quantity`` of the quote asset, a sell locks
  the quantity of the base asset; a fill moves exactly ``price * qty`` of quote against ``qty`` of
  base, and the commission (``taker_fee`` / ``maker_fee`` of what is received) is charged in the
  asset received. ``locked`` is always what the open orders reserve, and nothing goes negative.
* An order's executed quantity only grows; a closed order (FILLED, CANCELED, EXPIRED) never trades.
* Resting orders are matched once a second, at the second's last millisecond, at their own price
  (maker), as ``book.py`` and ``resting.py`` describe. The first fill happens in the second the path
  reaches the price, so it lies inside every kline holding it; while the path stays beyond the
  price, the rest fills there step by step as the depth allows, at a price the klines (the
  market's path, not the account's trades) may no longer show.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from decimal import Decimal

from trading.simulator.account import Balances, TradeLog, WorkingOrder
from trading.simulator.book import Book, BookShape, Level, walk
from trading.simulator.market import PricePath
from trading.simulator.orders import (
    AccountPosition,
    Event,
    ExecutionReport,
    NewOrder,
    OrderRecord,
    TradeRecord,
)
from trading.simulator.resting import RestingOrders
from trading.simulator.symbols import DEFAULT_SYMBOLS, INVALID_SYMBOL, SimError, SymbolRules
from trading.simulator.validation import Plan, validate

__all__ = [
    "AccountPosition",
    "BookShape",
    "Event",
    "ExecutionReport",
    "MatchingEngine",
    "NewOrder",
    "OrderRecord",
    "SimError",
    "TradeRecord",
]

_ID_CHARS = string.ascii_letters + string.digits
_ZERO = Decimal(0)
_DAY_MS = 86_400_000
_OPEN = ("NEW", "PARTIALLY_FILLED")


class MatchingEngine:
    """One account on the simulated exchange (see the module docstring for the rules it keeps).

    ``balances`` funds the account (free); ``depth`` shapes the synthetic book
    (``trading.simulator.book``); ``seed`` makes generated client order ids reproducible;
    ``start_ms`` is the market time before the first call.
    """

    def __init__(
        self,
        *,
        balances: Mapping[str, Decimal],
        symbols: Mapping[str, SymbolRules] = DEFAULT_SYMBOLS,
        prices: PricePath,
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
        depth: BookShape | None = None,
        start_ms: int = 0,
        seed: int = 0,
    ) -> None:
        unknown = [s for s in symbols if s not in prices.symbols]
        if unknown:
            raise ValueError(f"the price path does not list {', '.join(unknown)}")
        self.symbols = dict(symbols)
        self.prices = prices
        self.book = Book(prices, depth)
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.now_ms = start_ms
        self._random = random.Random(seed)
        assets = [a for r in self.symbols.values() for a in (r.base, r.quote)]
        self._balances = Balances(balances, assets)
        self._next_order_id = 1
        self._next_trade_id = 1
        self._next_execution_id = 1
        self._orders: dict[int, WorkingOrder] = {}
        self._latest_by_client: dict[tuple[str, str], WorkingOrder] = {}
        self._resting = RestingOrders(self.book, self.symbols)
        self._trades = {s: TradeLog() for s in self.symbols}
        self._outbox: list[Event] = []

    # -- queries --------------------------------------------------------------------------------

    def rules(self, symbol: str) -> SymbolRules:
        """The listed symbol's rules; -1121 "Invalid symbol." otherwise."""
        try:
            return self.symbols[symbol]
        except KeyError:
            raise SimError(INVALID_SYMBOL.code, INVALID_SYMBOL.msg) from None

    def new_client_order_id(self) -> str:
        """A Binance-like generated id: 22 letters and digits."""
        return "".join(self._random.choices(_ID_CHARS, k=22))

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Every asset the account holds or trades: ``(free, locked)``."""
        return self._balances.snapshot()

    def get(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> OrderRecord:
        """Any order, open or closed; -2013 "Order does not exist." if unknown.

        With both ids, the order found by ``order_id`` must also carry ``client_order_id``.
        """
        error = (-2013, "Order does not exist.")
        return self._find(symbol, order_id, client_order_id, error, open_only=False).record()

    def open_orders(self, symbol: str | None = None) -> list[OrderRecord]:
        """Open orders, oldest first (of one symbol, or of all)."""
        if symbol is not None:
            self.rules(symbol)
            return [o.record() for o in self._resting.by_symbol[symbol].values()]
        found = [o for book in self._resting.by_symbol.values() for o in book.values()]
        return [o.record() for o in sorted(found, key=lambda o: o.order_id)]

    def trades(
        self,
        symbol: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[TradeRecord]:
        """``myTrades``: oldest first, at most ``limit`` (clamped to 1..1000).

        ``from_id``: trades with that id or later. Else with ``start_ms``: the first ones from it
        (up to ``end_ms``); with only ``end_ms``, or nothing: the latest ones. A window longer
        than 24 hours is -1127, as on Binance.
        """
        self.rules(symbol)
        if start_ms is not None and end_ms is not None and end_ms - start_ms > _DAY_MS:
            raise SimError(-1127, "More than 24 hours between startTime and endTime.")
        limit = min(max(limit, 1), 1000)
        return self._trades[symbol].query(
            start_ms=start_ms, end_ms=end_ms, from_id=from_id, limit=limit
        )

    def depth(self, symbol: str, now_ms: int, limit: int = 20) -> tuple[list[Level], list[Level]]:
        """The synthetic book at ``now_ms``: ``(bids, asks)``, best first (without own orders)."""
        self.rules(symbol)
        bids, asks = self.book.levels(symbol, now_ms)
        return list(bids[:limit]), list(asks[:limit])

    # -- orders ---------------------------------------------------------------------------------

    def place(self, req: NewOrder, now_ms: int) -> tuple[OrderRecord, list[Event]]:
        """Validate and execute a new order; its record (with this call's fills) and the events.

        The market first advances to ``now_ms`` (the events of that come first). Raises
        :class:`SimError`, having changed nothing but that advance (whose events are then
        returned by the next call): -1121 unknown symbol, -1117 side, -1116 type, -1115
        timeInForce, -1102 a missing mandatory parameter (named), -1106 one the type does not
        take, -1100 a malformed client order id, -1013 filters, -2010 insufficient balance /
        a clientOrderId already used by an open order / a LIMIT_MAKER that would take.
        """
        rules = self.rules(req.symbol)
        self._advance(now_ms)
        now = self.now_ms
        bids, asks = self.book.levels(rules.symbol, now)
        plan = validate(req, rules, asks[0][0])
        cid = plan.client_order_id
        if cid is not None:
            previous = self._latest_by_client.get((rules.symbol, cid))
            if previous is not None and previous.status in _OPEN:
                raise SimError(-2010, "Duplicate order sent.")
        buy = plan.side == "BUY"
        levels = asks if buy else bids
        takes = walk(
            levels,
            buy=buy,
            step=rules.step_size,
            quantity=plan.quantity,
            quote=plan.quote_order_qty,
            limit=plan.price,
        )
        taken = sum((q for _, q in takes), _ZERO)
        if plan.type == "LIMIT_MAKER" and takes:
            raise SimError(-2010, "Order would immediately match and take.")
        if plan.quantity is None and taken < rules.min_qty:
            raise SimError(-1013, "Filter failure: LOT_SIZE")
        self._check_balance(plan, rules, takes, taken)
        orig_qty = plan.quantity if plan.quantity is not None else taken
        order = WorkingOrder(
            plan, self._next_order_id, cid or self.new_client_order_id(), orig_qty, now
        )
        self._next_order_id += 1
        self._orders[order.order_id] = order
        self._latest_by_client[(rules.symbol, order.client_order_id)] = order
        if order.rests:
            self._balances.lock(order, order.orig_qty)
        self._report(order, "NEW", None)
        fills: list[TradeRecord] = []
        if not (plan.time_in_force == "FOK" and taken < orig_qty):
            for price, qty in takes:
                fills.append(self._fill(order, price, qty, maker=False))
        if order.executed >= order.orig_qty:
            pass
        elif plan.type == "MARKET" or plan.time_in_force in ("IOC", "FOK"):
            self._close(order, "EXPIRED")
            self._report(order, "EXPIRED", None)
        else:
            self._resting.add(order)
        self._account_position((rules.base, rules.quote))
        return order.record(tuple(fills)), self._drain()

    def cancel(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        new_client_order_id: str | None = None,
        now_ms: int,
    ) -> tuple[OrderRecord, list[Event]]:
        """Cancel an open order (by ``order_id``, else ``client_order_id``); record and events.

        The market first advances to ``now_ms``: an order that fills on the way is no longer
        open and the cancel answers -2011 "Unknown order sent." (as for an unknown or closed
        order). ``new_client_order_id`` is the cancel's own id (generated if None): the
        CANCELED report carries it as ``c`` and the order's id as ``C``.
        """
        self.rules(symbol)
        if order_id is None and client_order_id is None:
            self._find(symbol, None, None, (-2011, "Unknown order sent."), open_only=True)
        self._advance(now_ms)
        error = (-2011, "Unknown order sent.")
        order = self._find(symbol, order_id, client_order_id, error, open_only=True)
        self._close(order, "CANCELED")
        cancel_id = new_client_order_id or self.new_client_order_id()
        self._report(order, "CANCELED", None, cancel_id=cancel_id)
        self._account_position((order.rules.base, order.rules.quote))
        return order.record(), self._drain()

    def advance(self, now_ms: int) -> list[Event]:
        """Move market time to ``now_ms``, filling resting orders the path crosses; the events.

        Also returns any events left queued by a refused ``place`` / ``cancel``.
        """
        self._advance(now_ms)
        return self._drain()

    # -- the machinery --------------------------------------------------------------------------

    def _find(
        self,
        symbol: str,
        order_id: int | None,
        client_order_id: str | None,
        error: tuple[int, str],
        *,
        open_only: bool,
    ) -> WorkingOrder:
        self.rules(symbol)
        if order_id is None and client_order_id is None:
            raise SimError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is not None and order.rules.symbol != symbol:
                order = None
            if order is not None and client_order_id not in (None, order.client_order_id):
                order = None
        else:
            assert client_order_id is not None
            order = self._latest_by_client.get((symbol, client_order_id))
        if order is None or (open_only and order.status not in _OPEN):
            raise SimError(*error)
        return order

    def _check_balance(
        self, plan: Plan, rules: SymbolRules, takes: list[Level], taken: Decimal
    ) -> None:
        buy = plan.side == "BUY"
        need: Decimal
        if plan.type != "MARKET":
            assert plan.price is not None and plan.quantity is not None
            need = plan.price * plan.quantity if buy else plan.quantity
        elif buy:
            need = sum((p * q for p, q in takes), _ZERO)
        else:
            need = plan.quantity if plan.quantity is not None else taken
        if need > self._balances.free[rules.quote if buy else rules.base]:
            raise SimError(-2010, "Account has insufficient balance for requested action.")

    def _fill(
        self, order: WorkingOrder, price: Decimal, qty: Decimal, *, maker: bool
    ) -> TradeRecord:
        """Book one execution: balances, the order's totals, the trade and its report."""
        rules = order.rules
        quote_qty = price * qty
        rate = self.maker_fee if maker else self.taker_fee
        if order.side == "BUY":
            commission = (qty * rate).quantize(_places(rules.base_precision))
            fee_asset = rules.base
        else:
            commission = (quote_qty * rate).quantize(_places(rules.quote_precision))
            fee_asset = rules.quote
        self._balances.settle(order, price, qty, commission)
        order.executed += qty
        order.cum_quote += quote_qty
        order.status = "FILLED" if order.executed >= order.orig_qty else "PARTIALLY_FILLED"
        order.update_time = self.now_ms
        trade = TradeRecord(
            symbol=rules.symbol,
            id=self._next_trade_id,
            order_id=order.order_id,
            price=price,
            qty=qty,
            quote_qty=quote_qty,
            commission=commission,
            commission_asset=fee_asset,
            time=self.now_ms,
            is_buyer=order.side == "BUY",
            is_maker=maker,
            base_precision=rules.base_precision,
            quote_precision=rules.quote_precision,
        )
        self._next_trade_id += 1
        self._trades[rules.symbol].append(trade)
        self._report(order, "TRADE", trade)
        return trade

    def _close(self, order: WorkingOrder, status: str) -> None:
        """End an order (CANCELED / EXPIRED) and release what it still reserved."""
        self._balances.release(order)
        order.status = status
        order.update_time = self.now_ms
        self._resting.remove(order)

    def _report(
        self,
        order: WorkingOrder,
        kind: str,
        trade: TradeRecord | None,
        cancel_id: str | None = None,
    ) -> None:
        self._outbox.append(
            ExecutionReport(
                order=order.record(),
                execution_type=kind,
                trade=trade,
                event_ms=self.now_ms,
                cancel_client_order_id=cancel_id,
                execution_id=self._next_execution_id,
            )
        )
        self._next_execution_id += 1

    def _account_position(self, assets: tuple[str, ...]) -> None:
        self._outbox.append(AccountPosition(self._balances.snapshot(assets), self.now_ms))

    def _drain(self) -> list[Event]:
        events, self._outbox = self._outbox, []
        return events

    def _advance(self, now_ms: int) -> None:
        """Trade the resting orders the path reaches in ``(self.now_ms, now_ms]`` (resting.py)."""
        if now_ms <= self.now_ms:
            return
        for step, symbol in self._resting.steps(self.now_ms, now_ms):
            fills = self._resting.allocate(symbol, step)
            if not fills:
                continue
            self.now_ms = step
            for order, qty in fills:
                self._fill(order, order.price, qty, maker=True)
                if order.status == "FILLED":
                    self._resting.remove(order)
            rules = self.symbols[symbol]
            self._account_position((rules.base, rules.quote))
        self.now_ms = now_ms


def _places(precision: int) -> Decimal:
    return Decimal(1).scaleb(-precision)
