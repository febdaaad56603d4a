"""Where the streams are, from the REST base URL (as Binance publishes them), and what a venue
refuses before connecting."""

from __future__ import annotations

import pytest

from trading.exchanges.binance.venue import MissingCredentials, open_binance, stream_urls


@pytest.mark.parametrize(
    ("base", "streams", "ws_api"),
    [
        (
            "https://api.binance.com",
            "wss://stream.binance.com:9443",
            "wss://ws-api.binance.com:443/ws-api/v3",
        ),
        (
            "https://api3.binance.com",
            "wss://stream.binance.com:9443",
            "wss://ws-api.binance.com:443/ws-api/v3",
        ),
        (
            "https://testnet.binance.vision",
            "wss://stream.testnet.binance.vision",
            "wss://ws-api.testnet.binance.vision/ws-api/v3",
        ),
        ("http://127.0.0.1:8765", "ws://127.0.0.1:8765", "ws://127.0.0.1:8765/ws-api/v3"),
        ("https://proxy.example/", "wss://proxy.example", "wss://proxy.example/ws-api/v3"),
    ],
)
def test_stream_urls_follow_the_rest_base(base: str, streams: str, ws_api: str) -> None:
    assert stream_urls(base) == (streams, ws_api)


@pytest.mark.parametrize(
    "given", ["ws://10.0.0.5:9000", "ws://10.0.0.5:9000/", "ws://10.0.0.5:9000/ws-api/v3",
              "ws://10.0.0.5:9000/stream", "ws://10.0.0.5:9000/ws"],
)  # fmt: skip
def test_an_explicit_ws_url_wins(given: str) -> None:
    assert stream_urls("https://api.binance.com", given) == (
        "ws://10.0.0.5:9000",
        "ws://10.0.0.5:9000/ws-api/v3",
    )


async def test_live_without_credentials_is_refused_before_connecting() -> None:
    with pytest.raises(MissingCredentials, match="BINANCE_API_KEY and BINANCE_API_SECRET"):
        async with open_binance(base_url="http://127.0.0.1:9", live=True):
            pass
