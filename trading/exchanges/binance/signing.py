"""Signing Binance requests: HMAC-SHA256 over exactly the bytes that are sent.

Sans-IO. The rules this module keeps, from Binance's spot API documentation:

* REST (TRADE / USER_DATA): the signature is the hex HMAC-SHA256, keyed with the secret, of the
  *raw* query string concatenated, with no separator, to the *raw* form body; the ``signature``
  parameter itself is appended last (to the body if there is one, else to the query). Nothing is
  re-sorted or re-encoded after signing: the server verifies the bytes as they came.
* Non-ASCII values are percent-encoded (UTF-8) before signing.
* WebSocket API: the parameters (``apiKey`` included, ``signature`` excluded) are sorted by name and
  joined as ``k=v`` with ``&``, UTF-8, *not* percent-encoded.
* ``recvWindow`` defaults to 5000 ms and is capped at 60000 ms by the server, with up to three
  decimals; ``timestamp`` is milliseconds. A server accepts a request only when
  ``timestamp < server_time + 1000`` and ``server_time - timestamp <= recvWindow`` (else -1021).

``verify`` is the server's side of the same rule (the exchange simulator uses it), so both ends
are tested against the documentation's worked examples byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import quote

__all__ = [
    "DEFAULT_RECV_WINDOW_MS",
    "MAX_RECV_WINDOW_MS",
    "SignedRequest",
    "encode_params",
    "sign",
    "sign_request",
    "timestamp_ok",
    "verify",
    "ws_api_payload",
    "ws_api_signature",
]

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
#: How far ahead of the server's clock a timestamp may be.
FUTURE_TOLERANCE_MS = 1000

Params = Iterable[tuple[str, object]] | Mapping[str, object]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_params(params: Params) -> str:
    """``k=v&k=v`` in the given order, values percent-encoded as UTF-8 (as the docs require)."""
    items = params.items() if isinstance(params, Mapping) else params
    return "&".join(f"{quote(k, safe='')}={quote(_text(v), safe='')}" for k, v in items)


def sign(secret: str, payload: str) -> str:
    """Lower-case hex HMAC-SHA256 of ``payload`` keyed with ``secret``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class SignedRequest:
    """The query string and body to send, signature included, and the headers to send with them."""

    __slots__ = ("body", "headers", "query")

    def __init__(self, query: str, body: str, headers: dict[str, str]) -> None:
        self.query = query
        self.body = body
        self.headers = headers

    def __repr__(self) -> str:  # never the key or the signature: repr ends up in logs
        return f"SignedRequest(query_len={len(self.query)}, body_len={len(self.body)})"


def sign_request(
    api_key: str,
    secret: str,
    *,
    query: Params = (),
    body: Params = (),
    timestamp_ms: int,
    recv_window_ms: int | None = None,
) -> SignedRequest:
    """Add ``recvWindow`` and ``timestamp`` and sign; they go where the other parameters go.

    With a body, ``recvWindow``/``timestamp``/``signature`` travel in the body (as most clients
    send POST); otherwise in the query string.
    """
    extra: list[tuple[str, object]] = []
    if recv_window_ms is not None:
        extra.append(("recvWindow", recv_window_ms))
    extra.append(("timestamp", timestamp_ms))
    q = encode_params(query)
    b = encode_params(body)
    if b:
        b = "&".join(filter(None, [b, encode_params(extra)]))
    else:
        q = "&".join(filter(None, [q, encode_params(extra)]))
    signature = sign(secret, q + b)
    if b:
        b = f"{b}&signature={signature}"
    else:
        q = f"{q}&signature={signature}" if q else f"signature={signature}"
    return SignedRequest(q, b, {"X-MBX-APIKEY": api_key})


def _strip_signature(raw: str) -> tuple[str, str | None]:
    """``raw`` without its ``signature=`` pair, and the signature (None if absent)."""
    parts = raw.split("&") if raw else []
    kept: list[str] = []
    found: str | None = None
    for part in parts:
        if part.startswith("signature="):
            found = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), found


def verify(secret: str, raw_query: str, raw_body: str) -> bool:
    """The server's check: the signature (in the query or the body) over the raw bytes as sent.

    Case-insensitive on the hex digest; nothing is re-sorted or decoded.
    """
    query, in_query = _strip_signature(raw_query)
    body, in_body = _strip_signature(raw_body)
    given = in_query if in_query is not None else in_body
    if not given:
        return False
    expected = sign(secret, query + body)
    return hmac.compare_digest(expected, given.lower())


def timestamp_ok(timestamp_ms: int, server_ms: int, recv_window_ms: float) -> bool:
    """Binance's timing rule: not more than 1 s ahead, not older than ``recvWindow``."""
    return timestamp_ms < server_ms + FUTURE_TOLERANCE_MS and server_ms - timestamp_ms <= (
        recv_window_ms
    )


def ws_api_payload(params: Mapping[str, object]) -> str:
    """The WebSocket API's signing payload: parameters sorted by name, not percent-encoded."""
    return "&".join(f"{k}={_text(v)}" for k, v in sorted(params.items()) if k != "signature")


def ws_api_signature(secret: str, params: Mapping[str, object]) -> str:
    """Signature for a WebSocket API request (``params`` must include ``apiKey``)."""
    return sign(secret, ws_api_payload(params))
