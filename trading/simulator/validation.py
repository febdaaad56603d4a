"""Checking a new order's parameters, in the order Binance checks them, before anything happens.

Rules this module keeps:

* Pure: :func:`validate` reads the request, the symbol's rules and the current price and either
  returns a :class:`Plan` or raises :class:`SimError` with Binance's code and exact message.
  Balances, open orders and the book are the engine's business (they are checked after this).
* Order of checks: symbol (-1121), side (-1117), type (-1116), the type's mandatory parameters
  (-1102 naming the first missing one), parameters the type does not take (-1106), time in force
  (-1115), client order id (-1100), response type, a NaN or infinite number (-1102 naming it),
  more decimals than the asset has (-1111),
  then the filters (-1013: PRICE_FILTER, LOT_SIZE,
  NOTIONAL with ``applyMinToMarket`` judged at the current price).
"""

from __future__ import annotations

import re
from decimal import Decimal

import attrs

from trading.simulator.orders import NewOrder
from trading.simulator.symbols import (
    SimError,
    SymbolRules,
    check_lot_size,
    check_notional,
    check_price,
    mandatory,
    not_required,
)

__all__ = ["ORDER_TYPES", "Plan", "validate"]

ORDER_TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER")
_SIDES = ("BUY", "SELL")
_TIFS = ("GTC", "IOC", "FOK")
_RESP_TYPES = ("ACK", "RESULT", "FULL")
_CLIENT_ID = re.compile(r"^[a-zA-Z0-9\-_]{1,36}\Z")
CLIENT_ID_RANGE = "^[a-zA-Z0-9-_]{1,36}$"


@attrs.frozen(slots=True)
class Plan:
    """A request that passed every check that does not depend on the account."""

    rules: SymbolRules
    side: str
    type: str
    time_in_force: str
    quantity: Decimal | None  # None: a market order by quote_order_qty
    quote_order_qty: Decimal | None
    price: Decimal | None  # None for market orders
    client_order_id: str | None
    resp_type: str | None


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def validate(req: NewOrder, rules: SymbolRules, market_price: Decimal) -> Plan:
    """Check ``req`` for ``rules``' symbol; ``market_price`` judges a market order's notional."""
    if req.side not in _SIDES:
        raise SimError(-1117, "Invalid side.")
    if req.type not in ORDER_TYPES:
        raise SimError(-1116, "Invalid orderType.")
    if req.type == "MARKET":
        if req.quantity is None and req.quote_order_qty is None:
            raise SimError(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
            )
        if req.quantity is not None and req.quote_order_qty is not None:
            raise not_required("quoteOrderQty")
        if req.price is not None:
            raise not_required("price")
        if req.time_in_force is not None:
            raise not_required("timeInForce")
        tif = "GTC"
    else:
        needed: tuple[tuple[str, object], ...] = (
            ("timeInForce", req.time_in_force),
            ("quantity", req.quantity),
            ("price", req.price),
        )
        if req.type == "LIMIT_MAKER":
            needed = needed[1:]
        for name, value in needed:
            if value is None:
                raise mandatory(name)
        if req.quote_order_qty is not None:
            raise not_required("quoteOrderQty")
        if req.type == "LIMIT_MAKER":
            if req.time_in_force is not None:
                raise not_required("timeInForce")
            tif = "GTC"
        else:
            if req.time_in_force not in _TIFS:
                raise SimError(-1115, "Invalid timeInForce.")
            tif = req.time_in_force
    cid = req.client_order_id
    if cid is not None and not _CLIENT_ID.match(cid):
        raise SimError(
            -1100,
            f"Illegal characters found in parameter 'newClientOrderId'; "
            f"legal range is '{CLIENT_ID_RANGE}'.",
        )
    if req.resp_type is not None and req.resp_type not in _RESP_TYPES:
        raise mandatory("newOrderRespType")
    for name, value in (
        ("price", req.price),
        ("quantity", req.quantity),
        ("quoteOrderQty", req.quote_order_qty),
    ):
        if value is not None and not value.is_finite():
            raise mandatory(name)
    for value, places in (
        (req.price, rules.quote_precision),
        (req.quantity, rules.base_precision),
        (req.quote_order_qty, rules.quote_precision),
    ):
        if value is not None and _decimals(value) > places:
            raise SimError(-1111, "Precision is over the maximum defined for this asset.")
    if req.price is not None:
        check_price(rules, req.price)
    if req.quantity is not None:
        check_lot_size(rules, req.quantity)
        reference = market_price if req.type == "MARKET" else req.price
        assert reference is not None
        check_notional(rules, req.quantity * reference, market=req.type == "MARKET")
    elif req.quote_order_qty is not None:
        if req.quote_order_qty <= 0:
            raise SimError(-1013, "Invalid quantity.")
        check_notional(rules, req.quote_order_qty, market=True)
    return Plan(
        rules=rules,
        side=req.side,
        type=req.type,
        time_in_force=tif,
        quantity=req.quantity,
        quote_order_qty=req.quote_order_qty,
        price=req.price,
        client_order_id=cid,
        resp_type=req.resp_type,
    )
