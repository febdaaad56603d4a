"""Signing against Binance's documented worked examples, byte for byte, on both ends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.exchanges.binance.signing import (
    encode_params,
    sign,
    sign_request,
    timestamp_ok,
    verify,
    ws_api_payload,
    ws_api_signature,
)

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"

ORDER = [
    ("symbol", "LTCBTC"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", "1"),
    ("price", "0.1"),
]


def test_query_string_example() -> None:
    req = sign_request(KEY, SECRET, query=ORDER, timestamp_ms=1499827319559, recv_window_ms=5000)
    assert req.query == (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        "&recvWindow=5000&timestamp=1499827319559"
        "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )
    assert req.body == ""
    assert req.headers == {"X-MBX-APIKEY": KEY}


def test_body_example_signs_the_same_bytes() -> None:
    req = sign_request(KEY, SECRET, body=ORDER, timestamp_ms=1499827319559, recv_window_ms=5000)
    assert req.query == ""
    assert req.body.endswith(
        "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


def test_non_ascii_symbol_is_percent_encoded_before_signing() -> None:
    params = [("symbol", "１２３４５６"), *ORDER[1:]]
    req = sign_request(KEY, SECRET, query=params, timestamp_ms=1499827319559, recv_window_ms=5000)
    assert req.query.startswith("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&")
    assert req.query.endswith(
        "signature=e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
    )


def test_mixed_query_and_body_example_concatenates_without_separator() -> None:
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    expected = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    assert sign(SECRET, query + body) == expected
    assert verify(SECRET, query, f"{body}&signature={expected}")
    assert verify(SECRET, f"{query}&signature={expected.upper()}", body)  # hex is case-insensitive


def test_ws_api_example_sorts_and_does_not_encode() -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": KEY,
    }
    assert ws_api_payload(params).startswith(f"apiKey={KEY}&price=52000.00&quantity=0.01000000")
    assert (
        ws_api_signature(SECRET, params)
        == "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
    )
    assert ws_api_signature(SECRET, {**params, "signature": "x"}) == ws_api_signature(
        SECRET, params
    )


def test_verify_refuses_a_tampered_missing_or_foreign_signature() -> None:
    req = sign_request(KEY, SECRET, query=ORDER, timestamp_ms=1499827319559)
    assert verify(SECRET, req.query, "")
    assert not verify(SECRET, req.query.replace("quantity=1", "quantity=2"), "")
    assert not verify(SECRET, req.query.split("&signature=")[0], "")
    assert not verify("another-secret", req.query, "")
    # re-ordering what was signed breaks it: the server must not re-sort
    head, sig = req.query.split("&signature=")
    swapped = "&".join(reversed(head.split("&"))) + "&signature=" + sig
    assert not verify(SECRET, swapped, "")


@given(
    st.lists(st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=12)), max_size=6),
    st.booleans(),
)
def test_whatever_is_signed_verifies_on_the_server_side(
    params: list[tuple[str, str]], in_body: bool
) -> None:
    kw = {"body": params} if in_body else {"query": params}
    req = sign_request(KEY, SECRET, timestamp_ms=1, **kw)  # type: ignore[arg-type]
    assert verify(SECRET, req.query, req.body)


def test_repr_never_shows_the_key_or_signature() -> None:
    req = sign_request(KEY, SECRET, query=ORDER, timestamp_ms=1)
    assert KEY not in repr(req) and "signature" not in repr(req)


@pytest.mark.parametrize(
    ("ts", "server", "window", "ok"),
    [
        (1000, 1000, 5000, True),
        (1999, 1000, 5000, True),  # < server + 1000
        (2000, 1000, 5000, False),  # a full second ahead
        (1000, 6000, 5000, True),  # exactly recvWindow old
        (1000, 6001, 5000, False),
    ],
)
def test_timestamp_rule(ts: int, server: int, window: int, ok: bool) -> None:
    assert timestamp_ok(ts, server, window) is ok


def test_encode_params_keeps_order_and_encodes_reserved_characters() -> None:
    assert encode_params([("b", "x y"), ("a", "1&2=3")]) == "b=x%20y&a=1%262%3D3"
    assert encode_params({"flag": True}) == "flag=true"
