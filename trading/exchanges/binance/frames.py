"""Decoding Binance stream and WebSocket-API frames into our records.

Sans-IO: text in, records out, no IO and no logging (the stream front-ends log). The rules this
module keeps:

* Every decoder either returns a record, returns None for a frame that is well formed but of no
  use to us (an event type we do not model, an order of a type trio-trade never places), or
  raises :class:`FrameError` naming what was wrong. Nothing else escapes, whatever the bytes: not
  ``json``'s errors, not ``KeyError``, ``TypeError``, ``decimal.InvalidOperation`` or
  ``RecursionError`` (a property test feeds arbitrary bytes and arbitrary JSON).
* Types are checked, not coerced: an id or a time is a JSON integer (never a bool or a string),
  a decimal is a JSON string, a flag is a JSON bool. Money becomes ``Decimal`` (finite); bar
  prices become ``float`` (finite), because bars feed signal maths, never accounting.
* Times on the wire are integer milliseconds; records carry float seconds (``ms / 1000``) except
  ``event_time_ms`` fields, which keep the exchange's integer.
* A reply's ``id`` is echoed with its type (Binance echoes an integer or a UUID string).
* Fees are kept as charged (``n`` in asset ``N``): never converted here.

The standard ``json`` module is used: it is not the bottleneck. Measured on the development
machine, ``json.loads`` takes ~3.5 µs of the ~7 µs a kline frame costs to decode (the rest is
checking and building records), while receiving one message through websockets' Trio client
costs ~85 µs; orjson would save ~3 µs of ~90.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import attrs

from trading.core.bars import Bar, Interval, IntervalError
from trading.core.records import Fill, InvalidFill, OrderType
from trading.core.updates import ExchangeOrder
from trading.exchanges.binance.enums import SIDE, TYPE, UnknownEnum, order_state
from trading.exchanges.binance.fields import (
    FrameError,
    bool_field,
    decimal_field,
    field,
    float_field,
    int_field,
    kind_of,
    obj,
    parse_json,
    short,
    str_field,
)

__all__ = [
    "AccountUpdate",
    "ApiReply",
    "FrameError",
    "KlineUpdate",
    "ServerShutdown",
    "StreamTerminated",
    "SubscriptionReply",
    "UserEventFrame",
    "decode_api_frame",
    "decode_kline",
    "decode_market_frame",
    "decode_user_event",
    "kline_stream_name",
]

#: Events on market streams and the user data stream that we recognise but do not use.
_UNUSED_MARKET: Final = frozenset(
    {"trade", "aggTrade", "24hrTicker", "24hrMiniTicker", "depthUpdate", "bookTicker", "avgPrice"}
)
#: ``balanceUpdate`` (deposits, withdrawals) is always followed by an ``outboundAccountPosition``
#: carrying the new balances; ``listStatus`` concerns OCO lists, which trio-trade never places
#: (their legs report as ``executionReport``s too); ``externalLockUpdate`` likewise.
_UNUSED_USER: Final = frozenset({"balanceUpdate", "listStatus", "externalLockUpdate"})


@attrs.frozen(slots=True)
class KlineUpdate:
    """One kline push: the bar so far (``closed`` False) or the final bar (``closed`` True)."""

    symbol: str
    interval: Interval
    bar: Bar
    closed: bool
    event_time_ms: int


@attrs.frozen(slots=True)
class ServerShutdown:
    """The server will close this connection soon: reconnect now, before it does."""

    event_time_ms: int


@attrs.frozen(slots=True)
class SubscriptionReply:
    """The answer to a SUBSCRIBE / UNSUBSCRIBE on a market stream connection.

    ``error`` is None on success, else the server's message and code.
    """

    id: int | str
    result: object = None
    error: str | None = None


@attrs.frozen(slots=True)
class AccountUpdate:
    """Balances of the assets that changed: asset -> (free, locked)."""

    balances: dict[str, tuple[Decimal, Decimal]]
    event_time_ms: int = 0


@attrs.frozen(slots=True)
class StreamTerminated:
    """The user data stream ended on the server's side (``eventStreamTerminated``): resubscribe."""

    event_time_ms: int


@attrs.frozen(slots=True)
class ApiReply:
    """An answer on the WebSocket API: ``status`` 200 with ``result``, or an error code and msg."""

    id: int | str | None
    status: int
    result: object = None
    error_code: int | None = None
    error_msg: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error_code is None


@attrs.frozen(slots=True)
class UserEventFrame:
    """A pushed user data event (``{"subscriptionId": N, "event": {...}}``), still undecoded."""

    subscription_id: int
    event: Mapping[str, Any]


def kline_stream_name(symbol: str, interval: Interval) -> str:
    """``btcusdt@kline_1m``: stream names use lower-case symbols."""
    return f"{symbol.lower()}@kline_{interval.text}"


@functools.lru_cache(maxsize=64)
def _interval(text: str) -> Interval:
    return Interval.parse(text)


# --- market streams ----------------------------------------------------------------------------


def decode_market_frame(
    raw: str | bytes,
) -> KlineUpdate | ServerShutdown | SubscriptionReply | None:
    """One frame from a market stream connection, combined (``{"stream", "data"}``) or raw."""
    frame = obj(parse_json(raw), "frame")
    if "data" in frame and "stream" in frame:
        str_field(frame, "stream", "frame")
        return _market_event(obj(frame["data"], "frame 'data'"))
    if "id" in frame and ("result" in frame or "code" in frame or "error" in frame):
        return _subscription_reply(frame)
    return _market_event(frame)


def _subscription_reply(frame: Mapping[str, Any]) -> SubscriptionReply:
    rid = frame["id"]
    if type(rid) is not int and not isinstance(rid, str):
        raise FrameError(f"reply: field 'id' must be an integer or a string, not {kind_of(rid)}")
    error = frame.get("error")
    if "code" in frame or error is not None:
        body = obj(error, "reply 'error'") if error is not None else frame
        code, msg = body.get("code"), body.get("msg")
        return SubscriptionReply(rid, error=short(f"{msg} (code {code})", 200))
    return SubscriptionReply(rid, result=frame.get("result"))


def _market_event(data: Mapping[str, Any]) -> KlineUpdate | ServerShutdown | None:
    kind = field(data, "e", "event")
    if kind == "kline":
        return decode_kline(data)
    if kind == "serverShutdown":
        return ServerShutdown(int_field(data, "E", "serverShutdown"))
    if not isinstance(kind, str):
        raise FrameError(f"event: field 'e' must be a string, not {kind_of(kind)}")
    if kind in _UNUSED_MARKET:
        return None
    raise FrameError(f"unexpected event type {short(kind)!r} on a market stream")


def decode_kline(data: Mapping[str, Any]) -> KlineUpdate:
    """A ``kline`` event's body (``{"e":"kline","E":..,"s":..,"k":{..}}``).

    A fast path takes well-formed events (the same checks, fewer calls); anything it does not
    accept goes through the careful path, which is the authority and names what is wrong.
    """
    try:
        k = data["k"]
        t, event_time, closed = k["t"], data["E"], k["x"]
        symbol, text = k["s"], k["i"]
        o, h, low, c, v = k["o"], k["h"], k["l"], k["c"], k["v"]
        if (
            type(t) is int
            and type(event_time) is int
            and type(closed) is bool
            and type(symbol) is str
            and type(text) is str
            and type(o) is str
            and type(h) is str
            and type(low) is str
            and type(c) is str
            and type(v) is str
        ):
            prices = float(o), float(h), float(low), float(c), float(v)
            if math.isfinite(sum(prices)):  # inf and nan survive a sum
                interval = _interval(text)
                bar = Bar(symbol, interval, t / 1000, *prices)
                return KlineUpdate(symbol, interval, bar, closed, event_time)
    except (KeyError, TypeError, ValueError, IntervalError):
        pass
    return _decode_kline_carefully(data)


def _decode_kline_carefully(data: Mapping[str, Any]) -> KlineUpdate:
    event_time = int_field(data, "E", "kline")
    k = obj(field(data, "k", "kline"), "kline 'k'")
    where = "kline 'k'"
    symbol = str_field(k, "s", where)
    text = str_field(k, "i", where)
    try:
        interval = _interval(text)
    except IntervalError:
        raise FrameError(f"{where}: unsupported interval {short(text)!r}") from None
    bar = Bar(
        symbol=symbol,
        interval=interval,
        open_time=int_field(k, "t", where) / 1000,
        open=float_field(k, "o", where),
        high=float_field(k, "h", where),
        low=float_field(k, "l", where),
        close=float_field(k, "c", where),
        volume=float_field(k, "v", where),
    )
    return KlineUpdate(symbol, interval, bar, bool_field(k, "x", where), event_time)


# --- the WebSocket API and the user data stream ------------------------------------------------


def decode_api_frame(raw: str | bytes) -> ApiReply | UserEventFrame:
    """One frame from ``/ws-api/v3``: an answer to a request, or a pushed user data event."""
    frame = obj(parse_json(raw), "frame")
    if "event" in frame:
        sub = int_field(frame, "subscriptionId", "user event")
        return UserEventFrame(sub, obj(frame["event"], "user event 'event'"))
    if "status" not in frame:
        raise FrameError("frame is neither an API answer ('status') nor an event ('event')")
    status = int_field(frame, "status", "answer")
    rid = frame.get("id")
    if rid is not None and type(rid) is not int and not isinstance(rid, str):
        raise FrameError(f"answer: field 'id' must be an integer or a string, not {kind_of(rid)}")
    if "error" in frame:
        error = obj(frame["error"], "answer 'error'")
        code = error.get("code")
        msg = error.get("msg")
        return ApiReply(
            rid,
            status,
            error_code=code if type(code) is int else 0,
            error_msg=short(msg if isinstance(msg, str) else "no message", 300),
        )
    return ApiReply(rid, status, result=frame.get("result"))


def decode_user_event(
    event: Mapping[str, Any],
) -> ExchangeOrder | AccountUpdate | StreamTerminated | None:
    """A user data event's body: an order report, balances, or the stream's end; None if unused."""
    event = obj(event, "user event")
    kind = field(event, "e", "user event")
    if kind == "executionReport":
        try:
            return _execution_report(event)
        except ArithmeticError:  # an average of absurd magnitudes (Z / z) overflows
            raise FrameError("executionReport: quantities out of range") from None
    if kind == "outboundAccountPosition":
        return _account_position(event)
    if kind == "eventStreamTerminated":
        return StreamTerminated(int_field(event, "E", "eventStreamTerminated"))
    if not isinstance(kind, str):
        raise FrameError(f"user event: field 'e' must be a string, not {kind_of(kind)}")
    if kind in _UNUSED_USER:
        return None
    raise FrameError(f"unexpected user event type {short(kind)!r}")


def _account_position(event: Mapping[str, Any]) -> AccountUpdate:
    where = "outboundAccountPosition"
    rows = field(event, "B", where)
    if not isinstance(rows, list):
        raise FrameError(f"{where}: field 'B' must be a list, not {kind_of(rows)}")
    balances: dict[str, tuple[Decimal, Decimal]] = {}
    for row in rows:
        row = obj(row, f"{where} balance")
        balances[str_field(row, "a", where)] = (
            decimal_field(row, "f", where),
            decimal_field(row, "l", where),
        )
    return AccountUpdate(balances, int_field(event, "E", where))


def _execution_report(e: Mapping[str, Any]) -> ExchangeOrder | None:
    where = "executionReport"
    type_text = str_field(e, "o", where)
    order_type = TYPE.get(type_text)
    if order_type is None:
        return None  # stop / OCO orders: trio-trade never places them, so they are not ours
    side_text = str_field(e, "S", where)
    try:
        side = SIDE[side_text]
    except KeyError:
        raise FrameError(f"{where}: unknown side {short(side_text)!r}") from None
    try:
        state = order_state(str_field(e, "X", where))
    except UnknownEnum as exc:
        raise FrameError(f"{where}: {exc}") from None
    execution = str_field(e, "x", where)
    original = e.get("C")
    client_id = (
        original
        if execution == "CANCELED" and isinstance(original, str) and original
        else str_field(e, "c", where)
    )
    symbol = str_field(e, "s", where)
    quantity = decimal_field(e, "q", where)
    price: Decimal | None = decimal_field(e, "p", where)
    if order_type is OrderType.MARKET or not price:
        price = None
    filled = decimal_field(e, "z", where)
    average = decimal_field(e, "Z", where) / filled if filled > 0 else None
    fills: tuple[Fill, ...] = ()
    if execution == "TRADE":
        fee_asset = e.get("N")
        try:
            fills = (
                Fill(
                    client_order_id=client_id,
                    symbol=symbol,
                    side=side,
                    quantity=decimal_field(e, "l", where),
                    price=decimal_field(e, "L", where),
                    fee=decimal_field(e, "n", where),
                    fee_asset=fee_asset if isinstance(fee_asset, str) else "",
                    time=int_field(e, "T", where) / 1000,
                    trade_id=str(int_field(e, "t", where)),
                ),
            )
        except InvalidFill as exc:
            raise FrameError(f"{where}: {exc}") from None
    reason = e.get("r")
    return ExchangeOrder(
        client_order_id=client_id,
        exchange_order_id=str(int_field(e, "i", where)),
        symbol=symbol,
        side=side,
        type=order_type,
        quantity=quantity,
        price=price,
        state=state,
        filled_quantity=filled,
        average_price=average,
        fills=fills,
        reason=reason if isinstance(reason, str) and reason != "NONE" else "",
    )
