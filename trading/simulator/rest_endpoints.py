"""The REST endpoints: Binance's parameters in, the matching engine's records out as JSON.

The rules this module keeps:

* Weights are the reference's (``time`` 1, ``exchangeInfo`` 20, ``klines`` 2, ``order`` POST 1 /
  DELETE 1 / GET 4, ``openOrders`` 6 or 80 without a symbol, ``account`` 20, ``myTrades`` 20...).
* Numbers are parsed as Binance parses them: decimals must match ``^\\d{1,20}(\\.\\d{1,20})?$``
  (so ``30000.0`` is fine and ``1e-05`` is -1100, as on Binance), integers are plain digits.
* Every state change goes through the engine with the current market time; the events it returns
  (including other orders' fills) are published to the user stream before the answer is built.
  A refusal is the engine's :class:`SimError`, passed through unchanged.
* The endpoint keeps, per order id, the latest record it has seen (from answers and events), so
  ``allOrders`` can list closed orders too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import trio

from trading.core.bars import Interval, IntervalError
from trading.simulator.engine import MatchingEngine
from trading.simulator.orders import Event, ExecutionReport, NewOrder, OrderRecord
from trading.simulator.rest_api import Call, Route, with_pushes
from trading.simulator.streams import INTERVAL_MS
from trading.simulator.symbols import SimError
from trading.simulator.validation import ORDER_TYPES, validate

__all__ = ["Endpoints"]

_DECIMAL = re.compile(r"^\d{1,20}(\.\d{1,20})?$", re.ASCII)
_INT = re.compile(r"^-?\d{1,20}$", re.ASCII)
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]


def _mandatory(name: str) -> SimError:
    return SimError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _req(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise _mandatory(name)
    return value


def _decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    value = params.get(name)
    if value is None:
        return None
    if not _DECIMAL.match(value):
        raise SimError(
            -1100,
            f"Illegal characters found in parameter '{name}'; "
            "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    return Decimal(value)


def _int(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not _INT.match(value):
        raise SimError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^-?[0-9]{{1,20}}$'.",
        )
    return int(value)


def _limit(params: Mapping[str, str], default: int, maximum: int) -> int:
    limit = _int(params, "limit")
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise SimError(
            -1100, f"Illegal characters found in parameter 'limit'; legal range is '1 - {maximum}'."
        )
    return limit


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
            limit = _limit(params, 100, 5000)
            return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250

        def per_symbol(one: int, every: int) -> Callable[[Mapping[str, str]], int]:
            return lambda params: one if params.get("symbol") else every

        api = "/api/v3/"
        r = Route
        return [
            r("GET", api + "ping", w(1), False, lambda c: {}),
            r("GET", api + "time", w(1), False, lambda c: {"serverTime": c.now_ms}),
            r("GET", api + "exchangeInfo", w(20), False, self.exchange_info),
            r("GET", api + "klines", w(2), False, self.klines),
            r("GET", api + "uiKlines", w(2), False, self.klines),
            r("GET", api + "ticker/price", per_symbol(2, 4), False, self.ticker_price),
            r("GET", api + "ticker/bookTicker", per_symbol(2, 4), False, self.book_ticker),
            r("GET", api + "ticker/24hr", per_symbol(2, 80), False, self.ticker_24h),
            r("GET", api + "depth", depth_weight, False, self.depth),
            r("GET", api + "avgPrice", w(2), False, self.avg_price),
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

    # -- market data ------------------------------------------------------------------------

    def _symbol(self, params: Mapping[str, str]) -> str:
        symbol = _req(params, "symbol")
        self.prices.rules(symbol)  # -1121 for one not listed
        return symbol

    def exchange_info(self, call: Call) -> Any:
        listed = list(self.prices.symbols)
        if "symbol" in call.params:
            wanted = [self._symbol(call.params)]
        elif "symbols" in call.params:
            try:
                wanted = json.loads(call.params["symbols"])
            except ValueError:
                raise SimError(-1100, "Illegal characters found in parameter 'symbols'.") from None
            if not isinstance(wanted, list) or not all(isinstance(s, str) for s in wanted):
                raise SimError(-1100, "Parameter 'symbols' must be a JSON array of symbols.")
            for symbol in wanted:
                self.prices.rules(symbol)
        else:
            wanted = listed
        symbols = []
        for name in wanted:
            rules = self.prices.rules(name)
            symbols.append({
                "symbol": name, "status": "TRADING",
                "baseAsset": rules.base, "baseAssetPrecision": rules.base_precision,
                "quoteAsset": rules.quote, "quotePrecision": rules.quote_precision,
                "quoteAssetPrecision": rules.quote_precision,
                "baseCommissionPrecision": rules.base_precision,
                "quoteCommissionPrecision": rules.quote_precision,
                "orderTypes": list(ORDER_TYPES),
                "icebergAllowed": False, "ocoAllowed": False, "otoAllowed": False,
                "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
                "cancelReplaceAllowed": False, "amendAllowed": False,
                "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
                "filters": rules.filters_json(),
                "permissions": [], "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            })  # fmt: skip
        return {
            "timezone": "UTC",
            "serverTime": call.now_ms,
            "rateLimits": RATE_LIMITS,
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def klines(self, call: Call) -> Any:
        p = call.params
        symbol = self._symbol(p)
        text = _req(p, "interval")
        if text not in INTERVAL_MS:
            raise SimError(-1120, "Invalid interval.")
        try:
            interval = Interval.parse(text)
        except IntervalError:
            raise SimError(-1120, "Invalid interval.") from None
        rows = self.prices.klines(
            symbol, interval, start_ms=_int(p, "startTime"), end_ms=_int(p, "endTime"),
            limit=_limit(p, 500, 1000), now_ms=self.market_ms(),
        )  # fmt: skip
        return [row.to_json() for row in rows]

    def _prices_for(self, params: Mapping[str, str]) -> list[str]:
        if "symbol" in params:
            return [self._symbol(params)]
        if "symbols" in params:
            try:
                wanted = json.loads(params["symbols"])
            except ValueError:
                raise SimError(-1100, "Illegal characters found in parameter 'symbols'.") from None
            if not isinstance(wanted, list):
                raise SimError(-1100, "Parameter 'symbols' must be a JSON array of symbols.")
            for symbol in wanted:
                self.prices.rules(symbol)
            return list(wanted)
        return list(self.prices.symbols)

    def _one_or_list(self, params: Mapping[str, str], rows: list[dict[str, Any]]) -> Any:
        return rows[0] if "symbol" in params else rows

    def ticker_price(self, call: Call) -> Any:
        now = self.market_ms()
        rows = [
            {
                "symbol": s,
                "price": f"{self.prices.price(s, now):.{self.prices.rules(s).quote_precision}f}",
            }
            for s in self._prices_for(call.params)
        ]
        return self._one_or_list(call.params, rows)

    def book_ticker(self, call: Call) -> Any:
        now = self.market_ms()
        rows = []
        for s in self._prices_for(call.params):
            rules = self.prices.rules(s)
            bids, asks = self.engine.book.levels(s, now)
            pq = rules.quote_precision, rules.base_precision
            rows.append({
                "symbol": s,
                "bidPrice": f"{bids[0][0]:.{pq[0]}f}", "bidQty": f"{bids[0][1]:.{pq[1]}f}",
                "askPrice": f"{asks[0][0]:.{pq[0]}f}", "askQty": f"{asks[0][1]:.{pq[1]}f}",
            })  # fmt: skip
        return self._one_or_list(call.params, rows)

    def ticker_24h(self, call: Call) -> Any:
        now = self.market_ms()
        rows = []
        for s in self._prices_for(call.params):
            rules = self.prices.rules(s)
            p = rules.quote_precision
            tick = rules.tick_size
            open_, last = self.prices.price(s, now - 86_400_000), self.prices.price(s, now)
            lo, hi = self.prices.range_ticks(s, now - 86_400_000, now)
            bids, asks = self.engine.book.levels(s, now)
            rows.append({
                "symbol": s, "priceChange": f"{last - open_:.{p}f}",
                "priceChangePercent": f"{(last - open_) / open_ * 100:.3f}",
                "weightedAvgPrice": f"{(open_ + last) / 2:.{p}f}",
                "prevClosePrice": f"{open_:.{p}f}", "lastPrice": f"{last:.{p}f}",
                "lastQty": "0.00000000",
                "bidPrice": f"{bids[0][0]:.{p}f}", "bidQty": f"{bids[0][1]:.8f}",
                "askPrice": f"{asks[0][0]:.{p}f}", "askQty": f"{asks[0][1]:.8f}",
                "openPrice": f"{open_:.{p}f}", "highPrice": f"{hi * tick:.{p}f}",
                "lowPrice": f"{lo * tick:.{p}f}", "volume": "0.00000000",
                "quoteVolume": "0.00000000", "openTime": now - 86_400_000, "closeTime": now,
                "firstId": -1, "lastId": -1, "count": 0,
            })  # fmt: skip
        return self._one_or_list(call.params, rows)

    def depth(self, call: Call) -> Any:
        symbol = self._symbol(call.params)
        limit = _limit(call.params, 100, 5000)
        now = self.market_ms()
        rules = self.prices.rules(symbol)
        bids, asks = self.engine.book.levels(symbol, now)

        def side(levels: Sequence[tuple[Decimal, Decimal]]) -> list[list[str]]:
            return [
                [f"{p:.{rules.quote_precision}f}", f"{q:.{rules.base_precision}f}"]
                for p, q in levels[:limit]
            ]

        return {"lastUpdateId": now // 1000, "bids": side(bids), "asks": side(asks)}

    def avg_price(self, call: Call) -> Any:
        symbol = self._symbol(call.params)
        now = self.market_ms()
        rules = self.prices.rules(symbol)
        samples = [self.prices.price(symbol, now - i * 60_000) for i in range(5)]
        mean = sum(samples, Decimal(0)) / len(samples)
        return {"mins": 5, "price": f"{mean:.{rules.quote_precision}f}", "closeTime": now}

    # -- trading ----------------------------------------------------------------------------

    def _new_order(self, p: Mapping[str, str]) -> NewOrder:
        resp_type = p.get("newOrderRespType")
        return NewOrder(
            symbol=_req(p, "symbol"), side=_req(p, "side"), type=_req(p, "type"),
            quantity=_decimal(p, "quantity"), quote_order_qty=_decimal(p, "quoteOrderQty"),
            price=_decimal(p, "price"), time_in_force=p.get("timeInForce"),
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
        order_id = _int(p, "orderId")
        client_id = p.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise SimError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        return order_id, client_id

    def cancel_order(self, call: Call) -> Any:
        symbol = self._symbol(call.params)
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
        symbol = self._symbol(call.params)
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
        symbol = self._symbol(call.params)
        order_id, client_id = self._lookup(call.params)
        self._catch_up()
        return self.engine.get(symbol, order_id=order_id, client_order_id=client_id).to_query()

    def open_orders(self, call: Call) -> Any:
        symbol = self._symbol(call.params) if "symbol" in call.params else None
        self._catch_up()
        return [o.to_query() for o in self.engine.open_orders(symbol)]

    def all_orders(self, call: Call) -> Any:
        p = call.params
        symbol = self._symbol(p)
        self._catch_up()
        from_id, start, end = _int(p, "orderId"), _int(p, "startTime"), _int(p, "endTime")
        limit = _limit(p, 500, 1000)
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
        symbol = self._symbol(p)
        self._catch_up()
        order_id = _int(p, "orderId")
        trades = self.engine.trades(
            symbol, start_ms=_int(p, "startTime"), end_ms=_int(p, "endTime"),
            from_id=_int(p, "fromId"), limit=_limit(p, 500, 1000) if order_id is None else 1000,
        )  # fmt: skip
        if order_id is not None:
            trades = [t for t in trades if t.order_id == order_id]
        return [t.to_json() for t in trades]

    def _catch_up(self) -> None:
        """Reads see the market as of now: resting orders the path crossed are filled first."""
        self._emit(self.engine.advance(self.market_ms()))
