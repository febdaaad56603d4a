"""The REST endpoints: Binance's parameters in, the matching engine's records out as JSON.

The rules this module keeps:

* Weights are the reference's (``time`` 1, ``exchangeInfo`` 20, ``klines`` 2, ``order`` POST 1 /
  DELETE 1 / GET 4, ``openOrders`` 6 or 80 without a symbol, ``account`` 20, ``myTrades`` 20...).
* Parameters are parsed as ``rest_market`` parses them (Binance's number syntax).
* Every state change goes through the engine with the current market time; the events it returns
  (including other orders' fills) are published to the user stream before the answer is built.
  A refusal is the engine's :class:`SimError`, passed through unchanged.
* The endpoint keeps, per order id, the latest record it has seen (from answers and events), so
  ``allOrders`` can list closed orders too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio

from trading.simulator.engine import MatchingEngine
from trading.simulator.orders import Event, ExecutionReport, NewOrder, OrderRecord
from trading.simulator.rest_api import Call, Route, with_pushes
from trading.simulator.rest_market import (
    MarketEndpoints,
    decimal_param,
    int_param,
    limit_param,
    required,
)
from trading.simulator.symbols import SimError
from trading.simulator.validation import validate

__all__ = ["Endpoints"]


class Endpoints:
    """The routes of one simulated account, on top of its engine."""

    def __init__(
        self,
        engine: MatchingEngine,
        market_ms: Callable[[], int],
        publish: Callable[[Sequence[Event]], list[trio.Event]],
    ) -> None:
        self.engine = engine
        self.prices = engine.prices
        self.market = MarketEndpoints(engine, market_ms)
        self.market_ms = market_ms
        self.publish = publish
        self.orders: dict[int, OrderRecord] = {}

    def remember(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, ExecutionReport):
                self.orders[event.order.order_id] = event.order

    def _emit(self, events: Sequence[Event]) -> list[trio.Event]:
        self.remember(events)
        return self.publish(events)

    def routes(self) -> list[Route]:
        def w(n: int) -> Callable[[Mapping[str, str]], int]:
            return lambda _params: n

        def depth_weight(params: Mapping[str, str]) -> int:
            limit = limit_param(params, 100, 5000)
            return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250

        def per_symbol(one: int, every: int) -> Callable[[Mapping[str, str]], int]:
            return lambda params: one if params.get("symbol") else every

        api = "/api/v3/"
        r = Route
        return [
            r("GET", api + "ping", w(1), False, lambda c: {}),
            r("GET", api + "time", w(1), False, lambda c: {"serverTime": c.now_ms}),
            r("GET", api + "exchangeInfo", w(20), False, self.market.exchange_info),
            r("GET", api + "klines", w(2), False, self.market.klines),
            r("GET", api + "uiKlines", w(2), False, self.market.klines),
            r("GET", api + "ticker/price", per_symbol(2, 4), False, self.market.ticker_price),
            r("GET", api + "ticker/bookTicker", per_symbol(2, 4), False, self.market.book_ticker),
            r("GET", api + "ticker/24hr", per_symbol(2, 80), False, self.market.ticker_24h),
            r("GET", api + "depth", depth_weight, False, self.market.depth),
            r("GET", api + "avgPrice", w(2), False, self.market.avg_price),
            r("POST", api + "order", w(1), True, self.new_order, counts_order=True),
            r("POST", api + "order/test", w(1), True, self.test_order),
            r("DELETE", api + "order", w(1), True, self.cancel_order),
            r("GET", api + "order", w(4), True, self.get_order),
            r("GET", api + "openOrders", per_symbol(6, 80), True, self.open_orders),
            r("DELETE", api + "openOrders", w(1), True, self.cancel_all),
            r("GET", api + "allOrders", w(20), True, self.all_orders),
            r("GET", api + "account", w(20), True, self.account),
            r("GET", api + "myTrades", w(20), True, self.my_trades),
        ]

    # -- trading ----------------------------------------------------------------------------

    def _new_order(self, p: Mapping[str, str]) -> NewOrder:
        resp_type = p.get("newOrderRespType")
        return NewOrder(
            symbol=required(p, "symbol"), side=required(p, "side"), type=required(p, "type"),
            quantity=decimal_param(p, "quantity"),
            quote_order_qty=decimal_param(p, "quoteOrderQty"),
            price=decimal_param(p, "price"), time_in_force=p.get("timeInForce"),
            client_order_id=p.get("newClientOrderId") or None, resp_type=resp_type,
        )  # fmt: skip

    def new_order(self, call: Call) -> Any:
        req = self._new_order(call.params)
        record, events = self.engine.place(req, self.market_ms())
        self.orders[record.order_id] = record
        written = self._emit(events)
        return with_pushes(record.to_response(req.resp_type), written)

    def test_order(self, call: Call) -> Any:
        """Validate like a new order (parameters and filters), without placing it."""
        req = self._new_order(call.params)
        rules = self.prices.rules(req.symbol)
        validate(req, rules, self.prices.price(req.symbol, self.market_ms()))
        return {}

    def _lookup(self, p: Mapping[str, str]) -> tuple[int | None, str | None]:
        order_id = int_param(p, "orderId")
        client_id = p.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise SimError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        return order_id, client_id

    def cancel_order(self, call: Call) -> Any:
        symbol = self.market.symbol(call.params)
        order_id, client_id = self._lookup(call.params)
        new_id = call.params.get("newClientOrderId") or self.engine.new_client_order_id()
        record, events = self.engine.cancel(
            symbol, order_id=order_id, client_order_id=client_id,
            new_client_order_id=new_id, now_ms=self.market_ms(),
        )  # fmt: skip
        self.orders[record.order_id] = record
        written = self._emit(events)
        return with_pushes(record.to_cancel(record.client_order_id, new_id), written)

    def cancel_all(self, call: Call) -> Any:
        symbol = self.market.symbol(call.params)
        answers, written = [], []
        for order in self.engine.open_orders(symbol):
            new_id = self.engine.new_client_order_id()
            record, events = self.engine.cancel(
                symbol, order_id=order.order_id, new_client_order_id=new_id, now_ms=self.market_ms()
            )
            written += self._emit(events)
            answers.append(record.to_cancel(record.client_order_id, new_id))
        if not answers:
            raise SimError(-2011, "Unknown order sent.")
        return with_pushes(answers, written)

    def get_order(self, call: Call) -> Any:
        symbol = self.market.symbol(call.params)
        order_id, client_id = self._lookup(call.params)
        self._catch_up()
        return self.engine.get(symbol, order_id=order_id, client_order_id=client_id).to_query()

    def open_orders(self, call: Call) -> Any:
        symbol = self.market.symbol(call.params) if "symbol" in call.params else None
        self._catch_up()
        return [o.to_query() for o in self.engine.open_orders(symbol)]

    def all_orders(self, call: Call) -> Any:
        p = call.params
        symbol = self.market.symbol(p)
        self._catch_up()
        from_id, start, end = (
            int_param(p, "orderId"),
            int_param(p, "startTime"),
            int_param(p, "endTime"),
        )
        limit = limit_param(p, 500, 1000)
        for open_order in self.engine.open_orders(symbol):
            self.orders[open_order.order_id] = open_order
        rows = sorted(
            (o for o in self.orders.values() if o.symbol == symbol),
            key=lambda o: o.order_id,
        )
        if from_id is not None:
            rows = [o for o in rows if o.order_id >= from_id][:limit]
        else:
            rows = [
                o for o in rows
                if (start is None or o.time >= start) and (end is None or o.time <= end)
            ][-limit:]  # fmt: skip
        return [o.to_query() for o in rows]

    def account(self, call: Call) -> Any:
        self._catch_up()
        omit_zero = call.params.get("omitZeroBalances", "false").lower() == "true"
        balances = [
            {"asset": asset, "free": f"{free:.8f}", "locked": f"{locked:.8f}"}
            for asset, (free, locked) in self.engine.balances().items()
            if not (omit_zero and free == 0 and locked == 0)
        ]
        maker, taker = self.engine.maker_fee, self.engine.taker_fee
        return {
            "makerCommission": int(maker * 10000), "takerCommission": int(taker * 10000),
            "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {
                "maker": f"{maker:.8f}", "taker": f"{taker:.8f}",
                "buyer": "0.00000000", "seller": "0.00000000",
            },
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": self.market_ms(), "accountType": "SPOT",
            "balances": balances, "permissions": ["SPOT"], "uid": 1,
        }  # fmt: skip

    def my_trades(self, call: Call) -> Any:
        p = call.params
        symbol = self.market.symbol(p)
        self._catch_up()
        order_id = int_param(p, "orderId")
        limit = limit_param(p, 500, 1000) if order_id is None else 1000
        trades = self.engine.trades(
            symbol, start_ms=int_param(p, "startTime"), end_ms=int_param(p, "endTime"),
            from_id=int_param(p, "fromId"), limit=limit,
        )  # fmt: skip
        if order_id is not None:
            trades = [t for t in trades if t.order_id == order_id]
        return [t.to_json() for t in trades]

    def _catch_up(self) -> None:
        """Reads see the market as of now: resting orders the path crossed are filled first."""
        self._emit(self.engine.advance(self.market_ms()))
