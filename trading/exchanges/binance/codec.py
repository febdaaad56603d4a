"""Binance REST JSON -> our records: orders, fills, symbol rules, klines, balances, trades.

Sans-IO. The rules this module keeps:

* Decimals are read from JSON strings with ``Decimal`` (ints are accepted, floats never: they
  are already rounded); times are integer milliseconds, our records hold float seconds.
* One error for bad input: every decoder raises :class:`DecodeError` (a ``ValueError``) naming
  what it was decoding and the field (a missing key, a wrong type, a string that is not a
  decimal, an unknown status), and nothing else, for any JSON at all (a property test feeds it
  arbitrary JSON). Parsing is linear in the input; decimals are bounded in length and exponent
  so no later arithmetic can blow up on them.
* Orders: the same decoder reads ACK/RESULT/FULL answers of ``POST /order``, ``DELETE /order``
  answers, ``GET /order`` and ``openOrders`` objects. Our id is ``origClientOrderId`` when present
  (a cancel's answer carries a *new* ``clientOrderId``), else ``clientOrderId``. An ACK has no
  side, type or status: those come from the spec we sent. The average price is
  ``cummulativeQuoteQty / executedQty`` when something traded and the quote amount is known
  (Binance sends a negative one when it is not). FULL ``fills`` become :class:`Fill` s with the
  commission as charged, in ``commissionAsset``; ``trade_id = str(tradeId)``. An order of a type
  we do not model is an :class:`UnsupportedOrder`; ``openOrders`` leaves those out (logged).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Final, NamedTuple, TypeVar

import attrs

from trading.core.bars import Bar, Interval
from trading.core.records import Fill, InvalidFill, OrderSpec, OrderState, OrderType, Side
from trading.core.updates import ExchangeOrder
from trading.exchanges.base import SymbolInfo
from trading.exchanges.binance import fields
from trading.exchanges.binance.enums import SIDE, TYPE, UnknownEnum, order_state
from trading.exchanges.binance.fields import DecodeError

__all__ = [
    "AccountBalance",
    "DecodeError",
    "Kline",
    "Trade",
    "UnsupportedOrder",
    "decode_account",
    "decode_exchange_info",
    "decode_kline",
    "decode_klines",
    "decode_my_trades",
    "decode_order",
    "decode_orders",
    "decode_server_time",
    "decode_trade",
]

_DECIMAL_RE: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?")
_MAX_DECIMAL_LEN: Final = 64
_MAX_EXPONENT: Final = 40
_MAX_INT: Final = fields.MAX_INT
_T = TypeVar("_T")

logger = logging.getLogger(__name__)


class UnsupportedOrder(DecodeError):
    """A well-formed order of a type we do not model (STOP_LOSS_LIMIT, LIMIT_MAKER, ...): one
    placed by hand or by another program on the same account."""


class Kline(NamedTuple):
    """One kline row as served (the last may still be open): the bar and its close time (ms)."""

    bar: Bar
    close_time_ms: int


@attrs.frozen(slots=True)
class AccountBalance:
    asset: str
    free: Decimal
    locked: Decimal


@attrs.frozen(slots=True, kw_only=True)
class Trade:
    """One of our trades, as ``GET /api/v3/myTrades`` lists it."""

    symbol: str
    trade_id: str
    order_id: str
    side: Side
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    commission: Decimal
    commission_asset: str
    time: float
    maker: bool

    def to_fill(self, client_order_id: str) -> Fill:
        """The fill of our order ``client_order_id`` (myTrades knows only the exchange's id)."""
        return Fill(
            client_order_id=client_order_id,
            symbol=self.symbol,
            side=self.side,
            quantity=self.quantity,
            price=self.price,
            fee=self.commission,
            fee_asset=self.commission_asset,
            time=self.time,
            trade_id=self.trade_id,
        )


# ------------------------------------------------------------------ field readers


def _show(value: object) -> str:
    if isinstance(value, int) and abs(value) >= _MAX_INT:
        return "a very large integer"  # repr of a huge int is slow, or refused
    if isinstance(value, Mapping | list):
        return f"a JSON {'object' if isinstance(value, Mapping) else 'array'}"
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _decimal_of(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DecodeError(f"{name}: expected a decimal string, got {_show(value)}")
    text = str(value)
    if len(text) > _MAX_DECIMAL_LEN or not _DECIMAL_RE.fullmatch(text):
        raise DecodeError(f"{name}: not a decimal: {_show(value)}")
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
        raise DecodeError(f"{name}: not a decimal: {_show(value)}") from None
    if number and abs(number.adjusted()) > _MAX_EXPONENT:
        raise DecodeError(f"{name}: out of range: {_show(value)}")
    return number


def _decimal(data: Mapping[str, object], key: str, what: str) -> Decimal:
    return _decimal_of(fields.field(data, key, what), f"{what}: field {key!r}")


def _enum(table: Mapping[str, _T], data: Mapping[str, object], key: str, what: str) -> _T:
    word = fields.str_field(data, key, what)
    try:
        return table[word]
    except KeyError:
        raise DecodeError(f"{what}: field {key!r}: unknown value {_show(word)}") from None


# ------------------------------------------------------------------------ orders


def decode_order(data: object, spec: OrderSpec | None = None) -> ExchangeOrder:
    """An order object (any answer shape, see the module docstring) as an ExchangeOrder.

    ``spec`` is the order we sent; it supplies what an ACK answer leaves out.
    """
    what = "order"
    d = fields.obj(data, what)
    cid = d.get("origClientOrderId", d.get("clientOrderId"))
    if not isinstance(cid, str) or not cid:
        raise DecodeError(f"{what}: field 'clientOrderId': expected a non-empty string")
    what = f"order {cid!r}"
    symbol = fields.str_field(d, "symbol", what)
    order_id = fields.int_field(d, "orderId", what)
    if "status" not in d and spec is not None:  # ACK: accepted, nothing more said
        return ExchangeOrder.of(spec, exchange_order_id=str(order_id), state=OrderState.SUBMITTED)
    try:
        state = order_state(fields.str_field(d, "status", what))
    except UnknownEnum as exc:
        raise DecodeError(f"{what}: field 'status': {exc}") from None
    side = _enum(SIDE, d, "side", what)
    kind = fields.str_field(d, "type", what)
    if kind not in TYPE:
        raise UnsupportedOrder(f"{what}: field 'type': {_show(kind)} orders are not supported")
    type_ = TYPE[kind]
    quantity = _decimal(d, "origQty", what)
    filled = _decimal(d, "executedQty", what)
    quote = _decimal(d, "cummulativeQuoteQty", what)
    price: Decimal | None = _decimal(d, "price", what)
    if type_ is OrderType.MARKET or not price:
        price = None
    for name, value in (("origQty", quantity), ("executedQty", filled)):
        if value < 0:
            raise DecodeError(f"{what}: field {name!r}: negative: {value}")
    average = quote / filled if filled > 0 and quote >= 0 else None
    fills: tuple[Fill, ...] = ()
    if "fills" in d:
        at = fields.int_field(d, "transactTime", what) / 1000
        fills = tuple(
            _fill(raw, i, what, cid=cid, symbol=symbol, side=side, at=at)
            for i, raw in enumerate(fields.array(d["fills"], f"{what}: field 'fills'"))
        )
    reason = ""
    if state in (OrderState.REJECTED, OrderState.EXPIRED):
        given = d.get("expiryReason") or d.get("rejectReason")
        reason = given if isinstance(given, str) and given else str(d["status"])
    return ExchangeOrder(
        client_order_id=cid,
        exchange_order_id=str(order_id),
        symbol=symbol,
        side=side,
        type=type_,
        quantity=quantity,
        price=price,
        state=state,
        filled_quantity=filled,
        average_price=average,
        fills=fills,
        reason=reason,
    )


def _fill(raw: object, i: int, what: str, *, cid: str, symbol: str, side: Side, at: float) -> Fill:
    what = f"{what}: fills[{i}]"
    f = fields.obj(raw, what)
    try:
        return Fill(
            client_order_id=cid,
            symbol=symbol,
            side=side,
            quantity=_decimal(f, "qty", what),
            price=_decimal(f, "price", what),
            fee=_decimal(f, "commission", what),
            fee_asset=fields.str_field(f, "commissionAsset", what),
            time=at,
            trade_id=str(fields.int_field(f, "tradeId", what)),
        )
    except InvalidFill as exc:
        raise DecodeError(f"{what}: {exc}") from None


def decode_orders(data: object) -> list[ExchangeOrder]:
    """``GET /api/v3/openOrders``: an array of order objects.

    Orders of a type we do not model are left out and logged (they are not ours, and must not
    hide ours); any other malformed entry raises DecodeError.
    """
    orders: list[ExchangeOrder] = []
    for item in fields.array(data, "openOrders"):
        try:
            orders.append(decode_order(item))
        except UnsupportedOrder as exc:
            logger.warning("open orders: left out: %s", exc)
    return orders


# ------------------------------------------------------------------- market data


def decode_server_time(data: object) -> int:
    """``GET /api/v3/time`` -> the server's time in ms."""
    return fields.int_field(fields.obj(data, "time"), "serverTime", "time")


def decode_weight_limit(data: object) -> int | None:
    """exchangeInfo's REQUEST_WEIGHT limit per one minute, or None if it does not say."""
    if not isinstance(data, Mapping):
        return None
    limits = data.get("rateLimits")
    if not isinstance(limits, list):
        return None
    for entry in limits:
        if (
            isinstance(entry, Mapping)
            and entry.get("rateLimitType") == "REQUEST_WEIGHT"
            and entry.get("interval") == "MINUTE"
            and entry.get("intervalNum") == 1
            and isinstance(entry.get("limit"), int)
        ):
            return int(entry["limit"])
    return None


def decode_ticker_price(data: object) -> Decimal:
    """``GET /api/v3/ticker/price?symbol=`` -> the last price."""
    return _decimal(fields.obj(data, "ticker price"), "price", "ticker price")


def decode_exchange_info(data: object) -> dict[str, SymbolInfo]:
    """``GET /api/v3/exchangeInfo`` -> rules per symbol; filters we do not use are ignored."""
    top = fields.obj(data, "exchangeInfo")
    rules: dict[str, SymbolInfo] = {}
    for i, raw in enumerate(
        fields.array(fields.field(top, "symbols", "exchangeInfo"), "exchangeInfo.symbols")
    ):
        what = f"exchangeInfo.symbols[{i}]"
        s = fields.obj(raw, what)
        symbol = fields.str_field(s, "symbol", what)
        what = f"exchangeInfo {symbol!r}"
        values: dict[str, Decimal] = {}
        for j, fraw in enumerate(
            fields.array(fields.field(s, "filters", what), f"{what}: field 'filters'")
        ):
            fwhat = f"{what}: filters[{j}]"
            f = fields.obj(fraw, fwhat)
            kind = fields.str_field(f, "filterType", fwhat)
            fwhat = f"{what}: {kind}"
            if kind == "PRICE_FILTER":
                values["tick_size"] = _decimal(f, "tickSize", fwhat)
            elif kind == "LOT_SIZE":
                values["step_size"] = _decimal(f, "stepSize", fwhat)
                values["min_quantity"] = _decimal(f, "minQty", fwhat)
            elif kind in ("NOTIONAL", "MIN_NOTIONAL"):
                values["min_notional"] = _decimal(f, "minNotional", fwhat)
        for name, value in values.items():
            if value < 0:
                raise DecodeError(f"{what}: {name} is negative: {value}")
        rules[symbol] = SymbolInfo(
            symbol=symbol,
            base=fields.str_field(s, "baseAsset", what),
            quote=fields.str_field(s, "quoteAsset", what),
            **values,
        )
    return rules


def decode_kline(row: object, symbol: str, interval: Interval) -> Kline:
    """One ``GET /api/v3/klines`` row: ``[openTime, o, h, l, c, v, closeTime, ...]``."""
    what = f"kline {symbol} {interval}"
    r = fields.array(row, what)
    if len(r) < 7:
        raise DecodeError(f"{what}: expected at least 7 columns, got {len(r)}")
    names = ("openTime", "open", "high", "low", "close", "volume", "closeTime")
    cols = dict(zip(names, r, strict=False))
    open_ms = fields.int_field(cols, "openTime", what)
    close_ms = fields.int_field(cols, "closeTime", what)
    prices = [float(_decimal(cols, name, what)) for name in names[1:6]]
    return Kline(
        Bar(symbol, interval, open_ms / 1000, *prices),
        close_ms,
    )


def decode_klines(data: object, symbol: str, interval: Interval) -> list[Kline]:
    """The array ``GET /api/v3/klines`` returns, oldest first, as served."""
    return [decode_kline(row, symbol, interval) for row in fields.array(data, f"klines {symbol}")]


# ----------------------------------------------------------------------- account


def decode_account(data: object) -> dict[str, AccountBalance]:
    """``GET /api/v3/account`` -> balance per asset."""
    top = fields.obj(data, "account")
    balances: dict[str, AccountBalance] = {}
    for i, raw in enumerate(
        fields.array(fields.field(top, "balances", "account"), "account.balances")
    ):
        what = f"account.balances[{i}]"
        b = fields.obj(raw, what)
        asset = fields.str_field(b, "asset", what)
        balances[asset] = AccountBalance(
            asset, _decimal(b, "free", what), _decimal(b, "locked", what)
        )
    return balances


def decode_trade(data: object) -> Trade:
    """One ``GET /api/v3/myTrades`` entry."""
    what = "myTrades entry"
    t = fields.obj(data, what)
    return Trade(
        symbol=fields.str_field(t, "symbol", what),
        trade_id=str(fields.int_field(t, "id", what)),
        order_id=str(fields.int_field(t, "orderId", what)),
        side=Side.BUY if fields.bool_field(t, "isBuyer", what) else Side.SELL,
        price=_decimal(t, "price", what),
        quantity=_decimal(t, "qty", what),
        quote_quantity=_decimal(t, "quoteQty", what),
        commission=_decimal(t, "commission", what),
        commission_asset=fields.str_field(t, "commissionAsset", what),
        time=fields.int_field(t, "time", what) / 1000,
        maker=fields.bool_field(t, "isMaker", what),
    )


def decode_my_trades(data: object) -> list[Trade]:
    """``GET /api/v3/myTrades``: an array of trades."""
    return [decode_trade(item) for item in fields.array(data, "myTrades")]
