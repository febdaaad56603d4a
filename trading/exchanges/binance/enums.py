"""Binance's words for sides, order types, times in force and order statuses, and ours for them.

Sans-IO. One table each way, so the REST codec, the stream decoder and the exchange simulator
cannot disagree. Binance statuses we do not model map to the nearest state by what they mean for
money: ``PENDING_NEW`` is accepted but not yet working (submitted); ``EXPIRED_IN_MATCH`` (self-trade
prevention) and ``PENDING_CANCEL`` follow the order's fate (expired / still submitted).
"""

from __future__ import annotations

from typing import Final

from trading.core.records import OrderState, OrderType, Side, TimeInForce

__all__ = [
    "BINANCE_SIDE",
    "BINANCE_TIF",
    "BINANCE_TYPE",
    "SIDE",
    "STATUS",
    "TIF",
    "TYPE",
    "UnknownEnum",
    "order_state",
]


class UnknownEnum(ValueError):
    """A word Binance sent that this table does not know; the message names it."""


SIDE: Final = {"BUY": Side.BUY, "SELL": Side.SELL}
BINANCE_SIDE: Final = {v: k for k, v in SIDE.items()}

TYPE: Final = {"MARKET": OrderType.MARKET, "LIMIT": OrderType.LIMIT}
BINANCE_TYPE: Final = {v: k for k, v in TYPE.items()}

TIF: Final = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
BINANCE_TIF: Final = {v: k for k, v in TIF.items()}

STATUS: Final = {
    "NEW": OrderState.SUBMITTED,
    "PENDING_NEW": OrderState.SUBMITTED,
    "PARTIALLY_FILLED": OrderState.PARTIALLY_FILLED,
    "FILLED": OrderState.FILLED,
    "CANCELED": OrderState.CANCELLED,
    "PENDING_CANCEL": OrderState.SUBMITTED,
    "REJECTED": OrderState.REJECTED,
    "EXPIRED": OrderState.EXPIRED,
    "EXPIRED_IN_MATCH": OrderState.EXPIRED,
}


def order_state(status: str) -> OrderState:
    """Our state for a Binance order status; UnknownEnum for a status not in the table."""
    try:
        return STATUS[status]
    except KeyError:
        raise UnknownEnum(f"unknown order status {status!r}") from None
