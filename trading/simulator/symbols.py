"""Symbols the simulator lists, their exchange filters, and the checks an order must pass.

Rules this module keeps:

* A symbol's rules are data (:class:`SymbolRules`); the filter checks are pure functions of the
  rules and the order's numbers, raising :class:`SimError` with Binance's exact code and message
  (``-1013 "Filter failure: PRICE_FILTER"`` and so on), so the server never words an error itself.
* The defaults copy Binance spot's filters for the same symbols (tick, step, minimum quantity and
  notional), so a bot's rounding code meets the numbers it will meet in production.
* Decimals only: a price or quantity never passes through a float here.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

import attrs

__all__ = [
    "DEFAULT_SYMBOLS",
    "SimError",
    "SymbolRules",
    "check_lot_size",
    "check_notional",
    "check_price",
]


class SimError(Exception):
    """An order or query the exchange refuses: Binance's ``{"code": ..., "msg": ...}`` answer.

    ``http_status`` is what the REST server sends with it (400 for every refusal Binance answers
    with a body; the server may choose others, e.g. 404 is never used by Binance for these).
    Nothing changed on the exchange when this is raised.
    """

    def __init__(self, code: int, msg: str, http_status: int = 400) -> None:
        super().__init__(f"{msg} (code {code})")
        self.code = code
        self.msg = msg
        self.http_status = http_status

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> SimError:
    """-1102 naming the parameter, worded as Binance words it."""
    return SimError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def not_required(name: str) -> SimError:
    """-1106: a parameter this order type does not take."""
    return SimError(-1106, f"Parameter '{name}' sent when not required.")


INVALID_SYMBOL = SimError(-1121, "Invalid symbol.")


@attrs.frozen(slots=True)
class SymbolRules:
    """One trading pair and its filters (PRICE_FILTER, LOT_SIZE, NOTIONAL).

    A zero ``max_price`` / ``min_price`` turns that bound off, as on Binance. ``max_notional``
    applies to limit orders only (``applyMaxToMarket`` false); ``min_notional`` applies to
    market orders too, judged at the current price (``applyMinToMarket`` true).
    """

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    base_precision: int = 8
    quote_precision: int = 8
    min_price: Decimal = attrs.field(default=Decimal("0"))
    max_price: Decimal = attrs.field(default=Decimal("0"))
    max_notional: Decimal = attrs.field(default=Decimal("9000000"))

    def filters_json(self) -> list[dict[str, object]]:
        """The ``filters`` array of this symbol in ``exchangeInfo``, decimals as strings."""
        p = self.quote_precision
        q = self.base_precision
        return [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": f"{self.min_price or self.tick_size:.{p}f}",
                "maxPrice": f"{self.max_price:.{p}f}",
                "tickSize": f"{self.tick_size:.{p}f}",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": f"{self.min_qty:.{q}f}",
                "maxQty": f"{self.max_qty:.{q}f}",
                "stepSize": f"{self.step_size:.{q}f}",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": f"{self.min_notional:.{p}f}",
                "applyMinToMarket": True,
                "maxNotional": f"{self.max_notional:.{p}f}",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ]


def _rules(
    symbol: str, base: str, quote: str, tick: str, step: str, max_qty: str, min_notional: str
) -> SymbolRules:
    return SymbolRules(
        symbol=symbol,
        base=base,
        quote=quote,
        tick_size=Decimal(tick),
        step_size=Decimal(step),
        min_qty=Decimal(step),
        max_qty=Decimal(max_qty),
        min_notional=Decimal(min_notional),
        min_price=Decimal(tick),
        max_price=Decimal("1000000"),
    )


# Binance spot's filters for these pairs (exchangeInfo, 2025): minQty equals stepSize on each.
DEFAULT_SYMBOLS: Mapping[str, SymbolRules] = {
    r.symbol: r
    for r in (
        _rules("BTCUSDT", "BTC", "USDT", "0.01", "0.00001", "9000", "5"),
        _rules("ETHUSDT", "ETH", "USDT", "0.01", "0.0001", "9000", "5"),
        _rules("BNBUSDT", "BNB", "USDT", "0.01", "0.001", "9000", "5"),
        _rules("SOLUSDT", "SOL", "USDT", "0.01", "0.001", "9000", "5"),
        _rules("XRPUSDT", "XRP", "USDT", "0.0001", "0.1", "9222449", "5"),
        _rules("DOGEUSDT", "DOGE", "USDT", "0.00001", "1", "9000000", "1"),
        _rules("ETHBTC", "ETH", "BTC", "0.00001", "0.0001", "100000", "0.0001"),
    )
}


def _whole_steps(value: Decimal, step: Decimal) -> bool:
    """Is ``value`` a whole number of ``step``s? (False, not an error, past Decimal's precision.)"""
    try:
        return value % step == 0
    except InvalidOperation:
        return False


def check_price(rules: SymbolRules, price: Decimal) -> None:
    """PRICE_FILTER: within [minPrice, maxPrice] (0 = off) and a whole number of ticks."""
    if price <= 0:
        raise SimError(-1013, "Invalid price.")
    if (rules.min_price and price < rules.min_price) or (
        rules.max_price and price > rules.max_price
    ):
        raise SimError(-1013, "Filter failure: PRICE_FILTER")
    if not _whole_steps(price, rules.tick_size):
        raise SimError(-1013, "Filter failure: PRICE_FILTER")


def check_lot_size(rules: SymbolRules, quantity: Decimal) -> None:
    """LOT_SIZE: within [minQty, maxQty] and a whole number of steps above minQty."""
    if quantity <= 0:
        raise SimError(-1013, "Invalid quantity.")
    if quantity < rules.min_qty or quantity > rules.max_qty:
        raise SimError(-1013, "Filter failure: LOT_SIZE")
    if not _whole_steps(quantity - rules.min_qty, rules.step_size):
        raise SimError(-1013, "Filter failure: LOT_SIZE")


def check_notional(rules: SymbolRules, notional: Decimal, *, market: bool) -> None:
    """NOTIONAL: at least minNotional (market orders too); at most maxNotional for limits."""
    if notional < rules.min_notional or (not market and notional > rules.max_notional):
        raise SimError(-1013, "Filter failure: NOTIONAL")
