"""Error answers map to exceptions that say whether anything happened, with the exchange's words."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.exchanges.base import ExchangeError, ExchangeRejected
from trading.exchanges.binance.errors import (
    AuthError,
    BadRequest,
    BinanceError,
    CancelRejected,
    FilterFailure,
    IpBanned,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    ServerError,
    TimestampOutsideWindow,
    UnexpectedResponse,
    error_for,
)


def body(code: int, msg: str) -> bytes:
    return f'{{"code":{code},"msg":"{msg}"}}'.encode()


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (-2010, OrderRejected),
        (-1013, FilterFailure),
        (-2011, CancelRejected),
        (-2013, OrderNotFound),
        (-2014, AuthError),
        (-2015, AuthError),
        (-1022, AuthError),
        (-1002, AuthError),
        (-1021, TimestampOutsideWindow),
        (-1102, BadRequest),
        (-1121, BadRequest),
        (-1100, BadRequest),
        (-2026, BinanceError),
        (-1014, BinanceError),
    ],
)
def test_codes_map_to_rejections_carrying_code_and_msg(code: int, cls: type) -> None:
    exc = error_for(400, body(code, "Some words."), {})
    assert type(exc) is cls
    assert isinstance(exc, ExchangeRejected)
    assert isinstance(exc, BinanceError)
    assert exc.code == code
    assert exc.msg == exc.reason == "Some words."
    assert exc.status == 400
    assert str(exc) == f"Some words. (code {code})"


def test_insufficient_balance_keeps_the_exchanges_message() -> None:
    msg = "Account has insufficient balance for requested action."
    exc = error_for(400, body(-2010, msg), {"Content-Type": "application/json"})
    assert isinstance(exc, OrderRejected)
    assert msg in str(exc)


@pytest.mark.parametrize("code", [-1000, -1001, -1006, -1007, -1008, -1016])
def test_execution_status_unknown_codes_are_never_rejections(code: int) -> None:
    exc = error_for(400, body(code, "Timeout waiting for response from backend server."), {})
    assert isinstance(exc, ServerError)
    assert not isinstance(exc, ExchangeRejected)
    assert exc.code == code


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_outcome_unknown_whatever_the_body(status: int) -> None:
    for raw in (body(-2010, "Duplicate order sent."), b"<html>bad gateway</html>", b""):
        exc = error_for(status, raw, {})
        assert isinstance(exc, ServerError) and isinstance(exc, ExchangeError)
        assert not isinstance(exc, ExchangeRejected)
        assert str(status) in str(exc)


def test_429_carries_retry_after_from_the_header() -> None:
    exc = error_for(429, body(-1003, "Too much request weight used"), {"Retry-After": "37"})
    assert type(exc) is RateLimited
    assert exc.retry_after == 37
    assert "Too much request weight used" in str(exc)
    # headers are case-insensitive on the wire
    assert error_for(429, b"", {"retry-after": "5"}).retry_after == 5  # type: ignore[attr-defined]


def test_418_is_an_ip_ban_with_retry_after() -> None:
    exc = error_for(
        418, body(-1003, "Way too much request weight used; IP banned"), {"Retry-After": "7200"}
    )
    assert type(exc) is IpBanned and isinstance(exc, RateLimited)
    assert exc.retry_after == 7200
    assert not isinstance(exc, ExchangeRejected)


@pytest.mark.parametrize("header", [None, "soon", "-5", "nan", "inf", ""])
def test_rate_limit_without_a_usable_retry_after_waits_a_default(header: str | None) -> None:
    headers = {} if header is None else {"Retry-After": header}
    limited = error_for(429, b"", headers)
    banned = error_for(418, b"", headers)
    assert isinstance(limited, RateLimited) and limited.retry_after == 60
    assert isinstance(banned, IpBanned) and banned.retry_after == 120


def test_code_1003_with_a_400_status_is_still_a_rate_limit() -> None:
    assert isinstance(error_for(400, body(-1003, "Too many requests queued."), {}), RateLimited)


def test_non_json_error_names_status_and_a_prefix_of_the_body() -> None:
    html = b"<html><body>403 Forbidden: WAF" + b"x" * 5000 + b"</body></html>"
    exc = error_for(403, html, {})
    assert isinstance(exc, UnexpectedResponse) and isinstance(exc, ExchangeError)
    text = str(exc)
    assert "403" in text and "<html><body>403 Forbidden: WAF" in text
    assert len(text) < 400  # a prefix, not the page


@pytest.mark.parametrize(
    "raw",
    [
        b'{"code":"-2010","msg":"x"}',
        b'{"code":-2010}',
        b"[1,2]",
        b'{"code":true,"msg":"x"}',
        b"\xff\xfe",
        b"[" * 100_000,
    ],
)
def test_unexpected_error_bodies_are_named_not_raised(raw: bytes) -> None:
    exc = error_for(400, raw, {})
    assert isinstance(exc, UnexpectedResponse)
    assert "400" in str(exc)


@given(
    status=st.integers(400, 599),
    raw=st.one_of(st.binary(max_size=300), st.text(max_size=300)),
    retry=st.one_of(st.none(), st.text(max_size=10)),
)
def test_any_error_answer_maps_to_an_exception_without_raising(
    status: int, raw: bytes | str, retry: str | None
) -> None:
    exc = error_for(status, raw, {} if retry is None else {"Retry-After": retry})
    assert isinstance(exc, ExchangeRejected | ExchangeError)
    if status >= 500:
        assert isinstance(exc, ServerError)


def test_a_mapping_body_is_accepted_too() -> None:
    exc = error_for(400, {"code": -2013, "msg": "Order does not exist."}, {})
    assert isinstance(exc, OrderNotFound)
