"""The paper broker: Binance's refusals, exact Decimal money, resting limits filled by run()."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import T0
from trading.core.orders import OrderState, OrderType, Side, TimeInForce
from trading.exchanges.base import (
    Exchange,
    ExchangeOrder,
    ExchangeRejected,
    OrderRequest,
    PriceSource,
    SymbolInfo,
)
from trading.exchanges.paper import DEFAULT_SYMBOLS, PaperBroker
from trading.exchanges.sim import SimulatedMarket
from trading.runtime.clock import VirtualClock

CENT = Decimal("0.01")
FEE = Decimal("0.001")
SLIP = Decimal("0.0005")


class SettablePrices:
    """A price source a test moves by hand: the price is whatever was set last."""

    def __init__(self, **prices: float) -> None:
        self.prices = dict(prices)

    def price(self, symbol: str, t: float) -> float:
        return self.prices[symbol]


def make_broker(prices: PriceSource | None = None, /, **kwargs: Any) -> PaperBroker:
    return PaperBroker(prices or SimulatedMarket(), VirtualClock(start=T0), **kwargs)


def market(cid: str, side: Side, qty: str, symbol: str = "BTCUSDT") -> OrderRequest:
    return OrderRequest(
        client_order_id=cid, symbol=symbol, side=side, type=OrderType.MARKET, quantity=Decimal(qty)
    )


def limit(
    cid: str, side: Side, qty: str, price: str, symbol: str = "SOLUSDT", tif: str = "gtc"
) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        symbol=symbol,
        side=side,
        type=OrderType.LIMIT,
        quantity=Decimal(qty),
        price=Decimal(price),
        time_in_force=TimeInForce(tif),
    )


def taker_price(raw: float, side: Side) -> Decimal:
    """The hand computation: cut to 8 places, to the cent, then slip against the taker."""
    mid = Decimal(str(round(raw, 8))).quantize(CENT, ROUND_HALF_EVEN)
    if side is Side.BUY:
        return (mid * (1 + SLIP)).quantize(CENT, ROUND_CEILING)
    return (mid * (1 - SLIP)).quantize(CENT, ROUND_FLOOR)


async def snapshot(broker: PaperBroker) -> tuple[object, ...]:
    return dict(await broker.balances()), dict(broker.locked), await broker.open_orders()


def test_is_an_exchange() -> None:
    exchange: Exchange = make_broker()
    assert set(exchange.symbol_info()) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    btc = exchange.symbol_info()["BTCUSDT"]
    assert (btc.base, btc.quote, btc.tick_size, btc.step_size, btc.min_notional) == (
        ("BTC", "USDT", CENT, Decimal("0.00001"), Decimal(5))
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fee_rate": Decimal("-0.001")},
        {"slippage": Decimal(1)},
        {"poll_interval": 0},
        {"balances": {"USDT": Decimal(-1)}},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_broker(**kwargs)


# ---------------------------------------------------------------------------- market orders


async def test_market_buy_fills_with_slippage_and_fee(clock: trio.testing.MockClock) -> None:
    sim = SimulatedMarket()
    broker = make_broker(sim)
    report = await broker.submit(market("b1", Side.BUY, "0.01"))

    price = taker_price(sim.price("BTCUSDT", T0), Side.BUY)
    # By hand: 59329.21125778 -> 59329.21; * 1.0005 = 59358.874605 -> 59358.88 (rounded up).
    assert price == Decimal("59358.88")
    assert (report.state, report.exchange_order_id) == (OrderState.FILLED, "1")
    assert (report.filled_quantity, report.average_price) == (Decimal("0.01"), price)
    (fill,) = report.fills
    assert (fill.price, fill.quantity, fill.fee, fill.fee_asset) == (
        (price, Decimal("0.01"), Decimal("0.5935888"), "USDT")
    )
    assert (fill.time, fill.trade_id, fill.side, fill.client_order_id) == (T0, "1", Side.BUY, "b1")
    assert await broker.balances() == {
        "USDT": Decimal("10000") - Decimal("593.5888") - Decimal("0.5935888"),
        "BTC": Decimal("0.01"),
    }
    assert broker.locked == {}


async def test_market_sell_receives_less_and_pays_fee_in_quote(
    clock: trio.testing.MockClock,
) -> None:
    sim = SimulatedMarket()
    broker = make_broker(sim, balances={"BTC": Decimal("0.5")})
    await broker.last_price("BTCUSDT")  # VirtualClock starts counting at its first reading
    await trio.sleep(3600)  # the price comes from the clock's now, not from T0
    report = await broker.submit(market("s1", Side.SELL, "0.1"))

    price = taker_price(sim.price("BTCUSDT", T0 + 3600), Side.SELL)
    assert price == Decimal("58430.15")  # 58459.38 * 0.9995 = 58430.150310 -> rounded down
    (fill,) = report.fills
    assert fill.price == price and fill.time == T0 + 3600
    assert fill.fee == Decimal("0.1") * price * FEE
    assert await broker.balances() == {
        "BTC": Decimal("0.4"),
        "USDT": Decimal("0.1") * price * (1 - FEE),
    }


async def test_submit_is_a_checkpoint_that_does_nothing_when_cancelled(
    clock: trio.testing.MockClock,
) -> None:
    broker = make_broker()
    with trio.CancelScope() as scope:
        scope.cancel()
        await broker.submit(market("c1", Side.BUY, "0.01"))
    assert scope.cancelled_caught
    assert await broker.query("BTCUSDT", "c1") is None
    assert await broker.balances() == {"USDT": Decimal(10000)}


async def test_trade_ids_count_per_symbol_and_order_ids_are_unique(
    clock: trio.testing.MockClock,
) -> None:
    broker = make_broker()
    reports: list[ExchangeOrder] = []
    for i in range(3):
        reports.append(await broker.submit(market(f"b{i}", Side.BUY, "0.01")))
        reports.append(await broker.submit(market(f"e{i}", Side.BUY, "0.1", "ETHUSDT")))
    btc = [r.fills[0].trade_id for r in reports if r.symbol == "BTCUSDT"]
    eth = [r.fills[0].trade_id for r in reports if r.symbol == "ETHUSDT"]
    assert btc == eth == ["1", "2", "3"]
    assert len({r.exchange_order_id for r in reports}) == 6


async def test_last_price_is_rounded_to_the_tick(clock: trio.testing.MockClock) -> None:
    broker = make_broker(SettablePrices(BTCUSDT=60000.126, SOLUSDT=0.1 + 0.2))
    assert await broker.last_price("BTCUSDT") == Decimal("60000.13")
    assert await broker.last_price("SOLUSDT") == Decimal("0.30")
    with pytest.raises(ExchangeRejected) as info:
        await broker.last_price("DOGEUSDT")
    assert (info.value.code, info.value.reason) == ("-1121", "Invalid symbol.")


# ---------------------------------------------------------------------------- limit orders


@pytest.mark.parametrize(
    ("request_", "fill_price"),
    [
        (limit("l1", Side.BUY, "1", "101"), Decimal("100.05")),  # taker price is better
        (limit("l2", Side.BUY, "1", "100.02"), Decimal("100.02")),  # the limit is better
        (limit("l3", Side.SELL, "1", "99"), Decimal("99.95")),
        (limit("l4", Side.SELL, "1", "99.98"), Decimal("99.98")),
    ],
)
async def test_marketable_limit_fills_at_once_as_taker(
    clock: trio.testing.MockClock, request_: OrderRequest, fill_price: Decimal
) -> None:
    broker = make_broker(SettablePrices(SOLUSDT=100.0), balances={"USDT": Decimal(500), "SOL": 1})
    report = await broker.submit(request_)
    assert report.state is OrderState.FILLED
    assert report.fills[0].price == fill_price
    assert report.fills[0].fee == fill_price * FEE
    assert broker.locked == {} and await broker.open_orders() == []


async def test_limit_buy_rests_then_fills_at_its_limit_when_crossed(
    clock: trio.testing.MockClock,
) -> None:
    prices = SettablePrices(SOLUSDT=100.0)
    broker = make_broker(prices, poll_interval=60.0)
    report = await broker.submit(limit("lb", Side.BUY, "1", "95"))
    assert report.state is OrderState.SUBMITTED and report.fills == ()
    # The limit's cost and its fee estimate are locked: 95 * 1.001.
    assert broker.locked == {"USDT": Decimal("95.095")}
    assert await broker.balances() == {"USDT": Decimal("9904.905")}

    updates: list[ExchangeOrder] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(broker.run, updates.append)
        await trio.sleep(61)
        prices.prices["SOLUSDT"] = 96.0
        await trio.sleep(60)
        assert updates == []
        prices.prices["SOLUSDT"] = 94.5  # crossed: fills at 95, not 94.5
        await trio.sleep(60)
        prices.prices["SOLUSDT"] = 90.0
        await trio.sleep(600)
        nursery.cancel_scope.cancel()

    (update,) = updates
    assert update.state is OrderState.FILLED and update.filled_quantity == 1
    (fill,) = update.fills
    assert (fill.price, fill.fee, fill.time) == (Decimal(95), Decimal("0.095"), T0 + 180)
    assert await broker.balances() == {"USDT": Decimal("9904.905"), "SOL": Decimal(1)}
    assert broker.locked == {}
    assert await broker.query("SOLUSDT", "lb") == update


async def test_limit_sell_rests_locking_base_then_fills(clock: trio.testing.MockClock) -> None:
    prices = SettablePrices(SOLUSDT=100.0)
    broker = make_broker(prices, balances={"SOL": Decimal(2)}, poll_interval=10.0)
    await broker.submit(limit("ls", Side.SELL, "1.5", "105"))
    assert broker.locked == {"SOL": Decimal("1.5")}
    assert await broker.balances() == {"SOL": Decimal("0.5")}
    updates: list[ExchangeOrder] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(broker.run, updates.append)
        prices.prices["SOLUSDT"] = 105.0
        await trio.sleep(11)
        nursery.cancel_scope.cancel()
    assert [u.fills[0].price for u in updates] == [Decimal(105)]
    assert await broker.balances() == {"SOL": Decimal("0.5"), "USDT": Decimal("157.3425")}


async def test_cancel_releases_the_lock(clock: trio.testing.MockClock) -> None:
    broker = make_broker(SettablePrices(SOLUSDT=100.0))
    await broker.submit(limit("lc", Side.BUY, "2", "90"))
    assert broker.locked == {"USDT": Decimal("180.18")}
    report = await broker.cancel("SOLUSDT", "lc")
    assert report.state is OrderState.CANCELLED and report.filled_quantity == 0
    assert await broker.balances() == {"USDT": Decimal(10000)}
    assert broker.locked == {} and await broker.open_orders() == []
    assert (await broker.query("SOLUSDT", "lc")) == report
    with pytest.raises(ExchangeRejected) as info:
        await broker.cancel("SOLUSDT", "lc")
    assert (info.value.code, info.value.reason) == ("-2011", "Unknown order sent.")


async def test_ioc_limit_that_cannot_trade_expires(clock: trio.testing.MockClock) -> None:
    broker = make_broker(SettablePrices(SOLUSDT=100.0))
    report = await broker.submit(limit("ioc", Side.BUY, "1", "90", tif="ioc"))
    assert report.state is OrderState.EXPIRED
    assert broker.locked == {} and await broker.open_orders() == []


# ---------------------------------------------------------------------------- refusals

ABC = SymbolInfo("ABCUSDT", "ABC", "USDT", CENT, CENT, Decimal(1), Decimal(0))
INSUFFICIENT = "Account has insufficient balance for requested action."
MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
ILLEGAL_ID = (
    "Illegal characters found in parameter 'newClientOrderId'; "
    "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'."
)
NO_PRICE = OrderRequest(
    client_order_id="r", symbol="SOLUSDT", side=Side.BUY, type=OrderType.LIMIT, quantity=Decimal(1)
)
MARKET_WITH_PRICE = attrs.evolve(market("r", Side.BUY, "1", "SOLUSDT"), price=Decimal(100))


@pytest.mark.parametrize(
    ("request_", "code", "reason"),
    [
        (market("r", Side.BUY, "0.01", "DOGEUSDT"), "-1121", "Invalid symbol."),
        (market("r", Side.BUY, "0.000015"), "-1013", "Filter failure: LOT_SIZE"),
        (market("r", Side.BUY, "0.5", "ABCUSDT"), "-1013", "Filter failure: LOT_SIZE"),
        (
            limit("r", Side.BUY, "0.001", "59999.995", "BTCUSDT"),
            "-1013",
            "Filter failure: PRICE_FILTER",
        ),
        (market("r", Side.BUY, "0.00005"), "-1013", "Filter failure: NOTIONAL"),
        (limit("r", Side.BUY, "0.01", "100"), "-1013", "Filter failure: NOTIONAL"),
        (market("r", Side.BUY, "1"), "-2010", INSUFFICIENT),
        (market("r", Side.SELL, "0.001"), "-2010", INSUFFICIENT),
        # 50000 * 0.2 is exactly the balance: the locked fee estimate is what does not fit.
        (limit("r", Side.BUY, "0.2", "50000", "BTCUSDT"), "-2010", INSUFFICIENT),
        (market("r", Side.BUY, "0"), "-1102", MANDATORY.format("quantity")),
        (market("r", Side.BUY, "-0.01"), "-1102", MANDATORY.format("quantity")),
        (NO_PRICE, "-1102", MANDATORY.format("price")),
        (MARKET_WITH_PRICE, "-1106", "Parameter 'price' sent when not required."),
        (market("not allowed!", Side.BUY, "0.01"), "-1100", ILLEGAL_ID),
    ],
)
async def test_refusals_use_binance_codes_and_change_nothing(
    clock: trio.testing.MockClock, request_: OrderRequest, code: str, reason: str
) -> None:
    symbols: Mapping[str, SymbolInfo] = {**DEFAULT_SYMBOLS, "ABCUSDT": ABC}
    prices = SettablePrices(BTCUSDT=60000.0, SOLUSDT=100.0, ABCUSDT=10.0)
    broker = make_broker(prices, symbols=symbols)
    await broker.submit(limit("resting", Side.BUY, "1", "90"))
    before = await snapshot(broker)

    with pytest.raises(ExchangeRejected) as info:
        await broker.submit(request_)
    assert (info.value.code, info.value.reason) == (code, reason)
    assert await snapshot(broker) == before
    assert await broker.query(request_.symbol, request_.client_order_id) is None


async def test_duplicate_client_id_among_open_orders(clock: trio.testing.MockClock) -> None:
    broker = make_broker(SettablePrices(SOLUSDT=100.0))
    first = await broker.submit(limit("dup", Side.BUY, "1", "90"))
    before = await snapshot(broker)
    with pytest.raises(ExchangeRejected) as info:
        await broker.submit(limit("dup", Side.BUY, "1", "80"))
    assert (info.value.code, info.value.reason) == ("-2010", "Duplicate order sent.")
    assert await snapshot(broker) == before
    assert await broker.query("SOLUSDT", "dup") == first
    # Like Binance, the id is only unique among *open* orders: once closed it may be reused.
    await broker.cancel("SOLUSDT", "dup")
    again = await broker.submit(limit("dup", Side.BUY, "1", "80"))
    assert again.exchange_order_id != first.exchange_order_id
    assert await broker.query("SOLUSDT", "dup") == again


async def test_query_and_cancel_of_unknown_orders(clock: trio.testing.MockClock) -> None:
    broker = make_broker()
    assert await broker.query("BTCUSDT", "nope") is None
    filled = await broker.submit(market("m", Side.BUY, "0.01"))
    assert await broker.query("BTCUSDT", "m") == filled
    assert await broker.query("ETHUSDT", "m") is None  # orders are looked up per symbol
    with pytest.raises(ExchangeRejected) as info:
        await broker.cancel("BTCUSDT", "m")  # filled orders are no longer open
    assert info.value.code == "-2011"


# ---------------------------------------------------------------------------- accounting

ORDERS = st.lists(
    st.tuples(st.sampled_from(Side), st.integers(1, 20_000), st.integers(0, 7200)),
    min_size=1,
    max_size=15,
)


@settings(max_examples=60, deadline=None)
@given(ORDERS)
def test_market_order_accounting_is_exact(orders: list[tuple[Side, int, int]]) -> None:
    """Cash spent equals the fills' notionals plus fees, to the last Decimal digit."""
    trio.run(_check_accounting, orders, clock=trio.testing.MockClock(autojump_threshold=0))


def free_quote_drop(before: tuple[object, ...], after: Mapping[str, Decimal]) -> Decimal:
    balances = before[0]
    assert isinstance(balances, dict)
    drop: Decimal = balances.get("USDT", Decimal(0)) - after["USDT"]
    return drop


async def _check_accounting(orders: list[tuple[Side, int, int]]) -> None:
    sim = SimulatedMarket()
    vclock = VirtualClock(start=T0)
    start = {"USDT": Decimal(10000), "ETH": Decimal(1)}
    broker = PaperBroker(sim, vclock, balances=start)
    step = Decimal("0.0001")
    spent = flows = base = fees = Decimal(0)
    for i, (side, steps, wait) in enumerate(orders):
        await trio.sleep(wait)
        before = await snapshot(broker)
        try:
            report = await broker.submit(market(f"h{i}", side, str(steps * step), "ETHUSDT"))
        except ExchangeRejected as refused:
            assert refused.code in ("-1013", "-2010")
            assert await snapshot(broker) == before
            continue
        (fill,) = report.fills
        assert fill.price == taker_price(sim.price("ETHUSDT", vclock.now()), side)
        assert fill.fee == fill.quantity * fill.price * FEE
        spent += free_quote_drop(before, await broker.balances())
        flows += side.sign * fill.quantity * fill.price
        base += side.sign * fill.quantity
        fees += fill.fee
    free = await broker.balances()
    assert start["USDT"] - free["USDT"] == spent == flows + fees
    assert free["ETH"] - start["ETH"] == base
    assert all(amount >= 0 for amount in free.values())
    # Marked at any price, equity moved by exactly the trades' edge over that price minus fees.
    mark = Decimal("3000.00")
    equity = free["USDT"] + free["ETH"] * mark
    assert equity == start["USDT"] + start["ETH"] * mark + base * mark - spent


async def test_only_recent_finished_orders_stay_queryable(clock: trio.testing.MockClock) -> None:
    broker = make_broker(keep_finished=3)
    resting = await broker.submit(limit("rest", Side.BUY, "1", "10.00"))
    for n in range(5):
        await broker.submit(market(f"m{n}", Side.BUY, "0.001"))
    assert [await broker.query("BTCUSDT", f"m{n}") is None for n in range(5)] == [
        True,
        True,
        False,
        False,
        False,
    ]
    again = await broker.query("SOLUSDT", "rest")  # an open order is never forgotten
    assert again is not None and again.state is resting.state
