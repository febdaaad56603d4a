"""REST market-data endpoints: exchangeInfo, klines, tickers, depth, avgPrice; and the parameter
parsing every endpoint shares.

The rules this module keeps:

* Numbers are parsed as Binance parses them: decimals must match ``^\\d{1,20}(\\.\\d{1,20})?$``
  (so ``30000.0`` is fine and ``1e-05`` is -1100, as on Binance), integers are plain digits;
  ``limit`` outside its range is -1100 naming the range.
* Market data is read at the current market time; nothing here changes the exchange.
* ``exchangeInfo`` lists what common clients need to place orders: ``status``, assets and
  precisions, ``orderTypes``, the PRICE_FILTER / LOT_SIZE / NOTIONAL filters, permissions,
  ``isSpotTradingAllowed``, and the ``rateLimits``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from trading.core.bars import Interval, IntervalError
from trading.simulator.engine import MatchingEngine
from trading.simulator.intervals import INTERVAL_MS
from trading.simulator.rest_api import Call
from trading.simulator.symbols import SimError
from trading.simulator.validation import ORDER_TYPES

__all__ = [
    "RATE_LIMITS",
    "MarketEndpoints",
    "decimal_param",
    "int_param",
    "limit_param",
    "required",
]

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


def required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise _mandatory(name)
    return value


def decimal_param(params: Mapping[str, str], name: str) -> Decimal | None:
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


def int_param(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not _INT.match(value):
        raise SimError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^-?[0-9]{{1,20}}$'.",
        )
    return int(value)


def limit_param(params: Mapping[str, str], default: int, maximum: int) -> int:
    limit = int_param(params, "limit")
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise SimError(
            -1100, f"Illegal characters found in parameter 'limit'; legal range is '1 - {maximum}'."
        )
    return limit


class MarketEndpoints:
    """Market data of the simulated exchange, read at ``market_ms()``."""

    def __init__(self, engine: MatchingEngine, market_ms: Callable[[], int]) -> None:
        self.engine = engine
        self.prices = engine.prices
        self.market_ms = market_ms
        #: REQUEST_WEIGHT per minute that exchangeInfo publishes (the server's own limit).
        self.weight_limit = 6000

    def symbol(self, params: Mapping[str, str]) -> str:
        symbol = required(params, "symbol")
        self.prices.rules(symbol)  # -1121 for one not listed
        return symbol

    def exchange_info(self, call: Call) -> Any:
        listed = list(self.prices.symbols)
        if "symbol" in call.params:
            wanted = [self.symbol(call.params)]
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
            "rateLimits": [{**RATE_LIMITS[0], "limit": self.weight_limit}, *RATE_LIMITS[1:]],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def klines(self, call: Call) -> Any:
        p = call.params
        symbol = self.symbol(p)
        text = required(p, "interval")
        if text not in INTERVAL_MS:
            raise SimError(-1120, "Invalid interval.")
        try:
            interval = Interval.parse(text)
        except IntervalError:
            raise SimError(-1120, "Invalid interval.") from None
        rows = self.prices.klines(
            symbol, interval, start_ms=int_param(p, "startTime"), end_ms=int_param(p, "endTime"),
            limit=limit_param(p, 500, 1000), now_ms=self.market_ms(),
        )  # fmt: skip
        return [row.to_json() for row in rows]

    def _prices_for(self, params: Mapping[str, str]) -> list[str]:
        if "symbol" in params:
            return [self.symbol(params)]
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
        symbol = self.symbol(call.params)
        limit = limit_param(call.params, 100, 5000)
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
        symbol = self.symbol(call.params)
        now = self.market_ms()
        rules = self.prices.rules(symbol)
        samples = [self.prices.price(symbol, now - i * 60_000) for i in range(5)]
        mean = sum(samples, Decimal(0)) / len(samples)
        return {"mins": 5, "price": f"{mean:.{rules.quote_precision}f}", "closeTime": now}
