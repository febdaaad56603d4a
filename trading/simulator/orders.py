"""The simulator's records: an order request, order and trade snapshots, and the events it emits.

Rules this module keeps:

* Every record is a frozen snapshot: the engine builds a new one whenever an order changes, so a
  record handed to a caller (the server, a test) never changes under it.
* JSON is produced here and only here, field for field as Binance serves it (REST ``order``
  answers ACK / RESULT / FULL, ``GET order``, ``DELETE order``, ``myTrades``; the user stream's
  ``executionReport`` and ``outboundAccountPosition``). Decimals are strings with the symbol's
  precision (``"0.00100000"``), ids and times are integers.
* No behaviour: what an order *does* is ``trading.simulator.engine``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import attrs

__all__ = [
    "AccountPosition",
    "Event",
    "ExecutionReport",
    "NewOrder",
    "OrderRecord",
    "TradeRecord",
]

STP_MODE = "EXPIRE_MAKER"  # Binance's default selfTradePreventionMode for new orders
_ZERO = Decimal(0)


@attrs.frozen(slots=True)
class NewOrder:
    """``POST /api/v3/order`` parameters, parsed into types but not yet validated.

    ``None`` means "not sent". Strings are kept as sent (upper case expected) so the engine can
    answer an unknown side or type with Binance's own code (-1117 / -1116).
    """

    symbol: str
    side: str
    type: str
    quantity: Decimal | None = None
    quote_order_qty: Decimal | None = None
    price: Decimal | None = None
    time_in_force: str | None = None
    client_order_id: str | None = None
    resp_type: str | None = None


def _d(value: Decimal, places: int) -> str:
    return f"{value:.{places}f}"


@attrs.frozen(slots=True)
class TradeRecord:
    """One execution of one of the account's orders (a ``myTrades`` row)."""

    symbol: str
    id: int
    order_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool
    base_precision: int = 8
    quote_precision: int = 8

    def _commission_places(self) -> int:
        # Commission is charged in the asset received: base for a buyer, quote for a seller.
        return self.base_precision if self.is_buyer else self.quote_precision

    def to_json(self) -> dict[str, object]:
        """The ``GET /api/v3/myTrades`` row."""
        return {
            "symbol": self.symbol,
            "id": self.id,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": _d(self.price, self.quote_precision),
            "qty": _d(self.qty, self.base_precision),
            "quoteQty": _d(self.quote_qty, self.quote_precision),
            "commission": _d(self.commission, self._commission_places()),
            "commissionAsset": self.commission_asset,
            "time": self.time,
            "isBuyer": self.is_buyer,
            "isMaker": self.is_maker,
            "isBestMatch": True,
        }

    def to_fill_json(self) -> dict[str, object]:
        """One element of a FULL order answer's ``fills``."""
        return {
            "price": _d(self.price, self.quote_precision),
            "qty": _d(self.qty, self.base_precision),
            "commission": _d(self.commission, self._commission_places()),
            "commissionAsset": self.commission_asset,
            "tradeId": self.id,
        }


@attrs.frozen(slots=True)
class OrderRecord:
    """Everything Binance reports of an order, as of one moment.

    ``price`` is 0 for market orders; ``orig_qty`` of a market buy by ``quoteOrderQty`` is the
    quantity it executed (the exchange works it out while filling). ``fills`` are the trades made
    by the call that returned this record (a FULL answer's ``fills``), not the order's history.
    """

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cummulative_quote_qty: Decimal
    orig_quote_order_qty: Decimal
    status: str
    time: int
    update_time: int
    working_time: int
    fills: tuple[TradeRecord, ...] = ()
    base_precision: int = 8
    quote_precision: int = 8

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    def _price(self, value: Decimal) -> str:
        return _d(value, self.quote_precision)

    def _qty(self, value: Decimal) -> str:
        return _d(value, self.base_precision)

    def to_ack(self) -> dict[str, object]:
        """``newOrderRespType=ACK``."""
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "transactTime": self.time,
        }

    def to_result(self) -> dict[str, object]:
        """``newOrderRespType=RESULT``."""
        out = self.to_ack()
        out.update(
            price=self._price(self.price),
            origQty=self._qty(self.orig_qty),
            executedQty=self._qty(self.executed_qty),
            origQuoteOrderQty=self._price(self.orig_quote_order_qty),
            cummulativeQuoteQty=self._price(self.cummulative_quote_qty),
            status=self.status,
            timeInForce=self.time_in_force,
            type=self.type,
            side=self.side,
            workingTime=self.working_time,
            selfTradePreventionMode=STP_MODE,
        )
        return out

    def to_full(self, fills: Sequence[TradeRecord] | None = None) -> dict[str, object]:
        """``newOrderRespType=FULL`` (the default for MARKET and LIMIT): RESULT plus ``fills``."""
        out = self.to_result()
        out["fills"] = [t.to_fill_json() for t in (self.fills if fills is None else fills)]
        return out

    def to_response(self, resp_type: str | None) -> dict[str, object]:
        """The answer for ``newOrderRespType`` (None: FULL, Binance's default for these types)."""
        if resp_type == "ACK":
            return self.to_ack()
        if resp_type == "RESULT":
            return self.to_result()
        return self.to_full()

    def to_query(self) -> dict[str, object]:
        """``GET /api/v3/order`` and each element of ``GET /api/v3/openOrders``."""
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": self._price(self.price),
            "origQty": self._qty(self.orig_qty),
            "executedQty": self._qty(self.executed_qty),
            "cummulativeQuoteQty": self._price(self.cummulative_quote_qty),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": self._price(_ZERO),
            "icebergQty": self._qty(_ZERO),
            "time": self.time,
            "updateTime": self.update_time,
            "isWorking": True,
            "workingTime": self.working_time,
            "origQuoteOrderQty": self._price(self.orig_quote_order_qty),
            "selfTradePreventionMode": STP_MODE,
        }

    def to_cancel(self, orig_client_id: str, new_client_id: str) -> dict[str, object]:
        """``DELETE /api/v3/order``: ``clientOrderId`` is the cancel request's own id."""
        return {
            "symbol": self.symbol,
            "origClientOrderId": orig_client_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": new_client_id,
            "transactTime": self.update_time,
            "price": self._price(self.price),
            "origQty": self._qty(self.orig_qty),
            "executedQty": self._qty(self.executed_qty),
            "origQuoteOrderQty": self._price(self.orig_quote_order_qty),
            "cummulativeQuoteQty": self._price(self.cummulative_quote_qty),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "selfTradePreventionMode": STP_MODE,
        }


@attrs.frozen(slots=True)
class ExecutionReport:
    """A user-stream ``executionReport``: the order after one change.

    ``execution_type`` is NEW, TRADE, CANCELED, EXPIRED or REJECTED; ``trade`` is the execution
    for TRADE (None otherwise). For CANCELED, ``cancel_client_order_id`` is the cancel request's
    id: Binance then reports it as ``c`` and the order's own id as ``C``.
    """

    order: OrderRecord
    execution_type: str
    trade: TradeRecord | None
    event_ms: int
    cancel_client_order_id: str | None = None
    execution_id: int = 0
    reject_reason: str = "NONE"

    def to_json(self) -> dict[str, object]:
        o = self.order
        t = self.trade
        price, qty = o._price, o._qty
        canceled = self.cancel_client_order_id is not None
        return {
            "e": "executionReport",
            "E": self.event_ms,
            "s": o.symbol,
            "c": self.cancel_client_order_id if canceled else o.client_order_id,
            "S": o.side,
            "o": o.type,
            "f": o.time_in_force,
            "q": qty(o.orig_qty),
            "p": price(o.price),
            "P": price(_ZERO),
            "F": qty(_ZERO),
            "g": -1,
            "C": o.client_order_id if canceled else "",
            "x": self.execution_type,
            "X": o.status,
            "r": self.reject_reason,
            "i": o.order_id,
            "l": qty(t.qty if t else _ZERO),
            "z": qty(o.executed_qty),
            "L": price(t.price if t else _ZERO),
            "n": _d(t.commission, t._commission_places()) if t else "0",
            "N": t.commission_asset if t else None,
            "T": t.time if t else o.update_time,
            "t": t.id if t else -1,
            "I": self.execution_id,
            "w": o.is_open,
            "m": t.is_maker if t else False,
            "M": False,
            "O": o.time,
            "Z": price(o.cummulative_quote_qty),
            "Y": price(t.quote_qty if t else _ZERO),
            "Q": price(o.orig_quote_order_qty),
            "W": o.working_time,
            "V": STP_MODE,
        }


@attrs.frozen(slots=True)
class AccountPosition:
    """A user-stream ``outboundAccountPosition``: the assets that changed, free and locked."""

    balances: Mapping[str, tuple[Decimal, Decimal]]
    event_ms: int
    precision: int = 8

    def to_json(self) -> dict[str, object]:
        p = self.precision
        return {
            "e": "outboundAccountPosition",
            "E": self.event_ms,
            "u": self.event_ms,
            "B": [
                {"a": asset, "f": _d(free, p), "l": _d(locked, p)}
                for asset, (free, locked) in sorted(self.balances.items())
            ],
        }


Event = ExecutionReport | AccountPosition
