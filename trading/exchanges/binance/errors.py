"""Binance's error answers as exceptions that say what happened to the request.

Sans-IO. The rules this module keeps:

* Two families, by what the caller may conclude. A :class:`BinanceError` (an
  ``ExchangeRejected``) means the exchange answered ``{"code", "msg"}`` and did nothing: the order
  was not placed, the cancel did not happen. Everything else (:class:`RateLimited`,
  :class:`IpBanned`, :class:`ServerError`, :class:`UnexpectedResponse`) is an ``ExchangeError``:
  the outcome is *unknown* and the engine reconciles by client order id. When in doubt, unknown:
  a wrong "rejected" loses track of a live order; a wrong "unknown" costs one query.
* HTTP status first: 5xx is unknown whatever the body says (Binance: "do NOT treat this as a
  failure"); 429 and 418 are rate limits with ``Retry-After`` seconds. Then the body's code:
  Binance's own "execution status unknown" codes (-1000, -1001, -1006, -1007, -1008, -1016) are
  unknown too, never a rejection.
* Messages carry the exchange's ``code`` and ``msg`` and, for bodies we cannot read, the status
  and the first :data:`BODY_PREFIX` characters. Never a key, a secret, a signature or a query
  string: nothing of the request is put in an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from trading.exchanges.base import ExchangeError, ExchangeRejected

__all__ = [
    "AuthError",
    "BadRequest",
    "BinanceError",
    "CancelRejected",
    "FilterFailure",
    "IpBanned",
    "OrderNotFound",
    "OrderRejected",
    "RateLimited",
    "ServerError",
    "TimestampOutsideWindow",
    "UnexpectedResponse",
    "error_for",
    "retry_after_seconds",
]

#: How much of an unreadable body an error message quotes.
BODY_PREFIX: Final = 200
#: Waits assumed when a 429 / 418 comes without a usable ``Retry-After``: the weight window is one
#: minute, and Binance's shortest IP ban is two minutes.
DEFAULT_RATE_LIMIT_WAIT: Final = 60.0
DEFAULT_BAN_WAIT: Final = 120.0
#: Binance codes whose documented meaning is "execution status unknown" / "try again".
UNKNOWN_OUTCOME_CODES: Final = frozenset({-1000, -1001, -1006, -1007, -1008, -1016})


class BinanceError(ExchangeRejected):
    """The exchange answered ``{"code": ..., "msg": ...}``: nothing happened.

    ``code`` is Binance's integer code (the base class's ``code`` is text; Binance's is a number),
    ``msg`` (also ``reason``) its message, ``status`` the HTTP status it came with.
    """

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"code {code}", msg)  # str(exc) == f"{msg} (code {code})"
        self.code = code  # type: ignore[assignment]  # Binance's codes are integers
        self.msg = msg
        self.status = status


class OrderRejected(BinanceError):
    """-2010: the order was refused (insufficient balance, duplicate order, market closed)."""


class FilterFailure(BinanceError):
    """-1013: a filter (PRICE_FILTER, LOT_SIZE, NOTIONAL, ...) refused the order."""


class CancelRejected(BinanceError):
    """-2011: no such open order to cancel (it may have filled or never existed)."""


class OrderNotFound(BinanceError):
    """-2013: the exchange does not know the order."""


class AuthError(BinanceError):
    """-1002, -1022, -1099, -2014, -2015: key, signature, IP or permission refused."""


class TimestampOutsideWindow(BinanceError):
    """-1021: the timestamp is outside ``recvWindow`` of the server's clock; nothing was done."""


class BadRequest(BinanceError):
    """-11xx: a parameter is missing, malformed or not allowed."""


class RateLimited(ExchangeError):
    """429 (or -1003 / -1015): too much weight or too many orders; wait ``retry_after`` seconds.

    An ExchangeError, not a rejection: a 429 on an order is treated as outcome unknown.
    """

    def __init__(self, message: str, retry_after: float, status: int = 429) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class IpBanned(RateLimited):
    """418: the IP is banned for ``retry_after`` seconds for ignoring 429s."""

    def __init__(self, message: str, retry_after: float, status: int = 418) -> None:
        super().__init__(message, retry_after, status)


class ServerError(ExchangeError):
    """5xx, or a code meaning "execution status unknown": the request may or may not have been
    carried out. Never a rejection."""

    def __init__(self, message: str, status: int, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class UnexpectedResponse(ExchangeError):
    """An error status whose body is not Binance's ``{"code", "msg"}`` (a proxy's HTML page, a
    WAF block, garbage): outcome unknown. The message names the status and a prefix of the body."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


_BY_CODE: Final[Mapping[int, type[BinanceError]]] = {
    -2010: OrderRejected,
    -1013: FilterFailure,
    -2011: CancelRejected,
    -2013: OrderNotFound,
    -1002: AuthError,
    -1022: AuthError,
    -1099: AuthError,
    -2014: AuthError,
    -2015: AuthError,
    -1021: TimestampOutsideWindow,
}


def retry_after_seconds(headers: Mapping[str, str], default: float) -> float:
    """``Retry-After`` as seconds (Binance sends whole seconds); ``default`` when absent or
    unreadable. Never negative, never NaN."""
    raw = _header(headers, "retry-after")
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        return default
    if not value >= 0 or value == float("inf"):  # NaN fails the comparison
        return default
    return value


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None


def _prefix(body: bytes | str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    cut = text[:BODY_PREFIX]
    return repr(cut) + ("..." if len(text) > BODY_PREFIX else "")


def _code_and_msg(body: bytes | str | Mapping[str, object]) -> tuple[int, str] | None:
    data: object = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return None
    if not isinstance(data, Mapping):
        return None
    code, msg = data.get("code"), data.get("msg")
    if type(code) is not int or not isinstance(msg, str):
        return None
    return code, msg


def error_for(
    status: int, body: bytes | str | Mapping[str, object], headers: Mapping[str, str]
) -> Exception:
    """The exception for an error answer (status >= 400, or a 2xx carrying ``code``/``msg``).

    Returns it rather than raising, so the caller decides (``get_order`` turns -2013 into None).
    """
    parsed = _code_and_msg(body)
    said = f"{parsed[1]} (code {parsed[0]})" if parsed else None
    if status == 418:
        wait = retry_after_seconds(headers, DEFAULT_BAN_WAIT)
        return IpBanned(f"HTTP 418: IP banned for {wait:g} s: {said or _prefix_of(body)}", wait)
    if status == 429 or (parsed is not None and parsed[0] in (-1003, -1015)):
        wait = retry_after_seconds(headers, DEFAULT_RATE_LIMIT_WAIT)
        return RateLimited(
            f"HTTP {status}: rate limited, retry after {wait:g} s: {said or _prefix_of(body)}",
            wait,
            status,
        )
    if status >= 500:
        return ServerError(
            f"HTTP {status}: server error, outcome unknown: {said or _prefix_of(body)}",
            status,
            parsed[0] if parsed else None,
        )
    if parsed is None:
        return UnexpectedResponse(
            f"HTTP {status} with a body that is not Binance's error JSON: {_prefix_of(body)}",
            status,
        )
    code, msg = parsed
    if code in UNKNOWN_OUTCOME_CODES:
        return ServerError(f"HTTP {status}: outcome unknown: {msg} (code {code})", status, code)
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = BadRequest if -1199 <= code <= -1100 else BinanceError
    return cls(code, msg, status)


def _prefix_of(body: bytes | str | Mapping[str, object]) -> str:
    if isinstance(body, Mapping):
        try:
            return _prefix(json.dumps(body, default=str))
        except (ValueError, TypeError, RecursionError):
            return "<unprintable body>"
    return _prefix(body)
