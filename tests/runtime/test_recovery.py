"""Crash recovery: a restart rebuilds positions, adopts open orders, books missed trades once.

The exchange (a paper broker behind a FaultyExchange) outlives the Runners, as a real exchange
outlives a killed process; the database is a real Recorder file. A "crash" is a Runner whose
recorder stops writing at some point (the lost tail of a ``kill -9``) and whose wind-down leaves
its orders resting; one test kills a real child process with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import example, given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

import trading
from tests.conftest import T0, EventLog
from trading.core import events as ev
from trading.core.ids import new_client_order_id
from trading.core.ledger import Portfolio
from trading.core.orders import OrderSpec, OrderState, OrderType, Side
from trading.core.risk import RiskLimits
from trading.exchanges.paper import PaperBroker
from trading.observers.history import read_recorded
from trading.observers.recorder import Recorder
from trading.runtime.engine import TradeEngine
from trading.runtime.recovery import Recovery, RecoveryFailed
from trading.runtime.recovery_plan import belongs
from trading.testing.exchange import FaultyExchange, Hang, WithoutFills

from . import recovery_child

D = Decimal
SYMBOL = "BTCUSDT"
CHILD = Path(__file__).with_name("recovery_child.py")


class Prices:
    """A price source the test moves by hand."""

    def __init__(self) -> None:
        self.prices = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0}

    def price(self, symbol: str, t: float) -> float:
        return self.prices[symbol]


def new_broker(clock: trading.Clock, prices: Prices) -> PaperBroker:
    return PaperBroker(prices, clock, balances={"USDT": D(100_000), "BTC": D(1)})


class Quiet(trading.Strategy):
    """Trades only when the test says so; leaves its orders resting when it stops (so a
    Runner that ends behaves, for the exchange, like a killed one)."""

    interval = "1d"
    symbols = (SYMBOL,)
    risk = RiskLimits(cancel_open_orders_on_stop=False)

    async def next(self, ctx: trading.Context) -> None:
        pass


class Tidy(Quiet):
    """The same strategy with the default stop: open orders are cancelled."""

    risk = None


class Mortal:
    """The Recorder, until ``dead``: from then on nothing reaches the disk (a kill -9 loses
    the tail the bus had not handed over). Also the Runner's TradeHistory, through it."""

    lossless = True

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.name = "recorder"
        self.dead = False

    async def recorded(self, strategy: str) -> Any:
        return await self.recorder.recorded(strategy)

    async def handle(self, batch: Any) -> None:
        if not self.dead:
            await self.recorder.handle(batch)

    async def aclose(self) -> None:
        await self.recorder.aclose()


def recovering(
    vclock: trading.VirtualClock, exchange: Any, db: Path, **options: Any
) -> trading.Runner:
    """A Runner recording into ``db`` that recovers each strategy it adds (as after a crash)."""
    return trading.Runner(
        clock=vclock, exchange=exchange, observers=[Recorder(db)], recover=True, **options
    )


async def exchange_runs_alone(broker: PaperBroker, clock: trading.Clock) -> None:
    """Downtime: the exchange matches resting orders while no run listens."""
    async with trio.open_nursery() as nursery:
        await nursery.start(broker.run, lambda report: None)
        await clock.sleep_until(clock.now() + 61)
        nursery.cancel_scope.cancel()


async def truth(broker: PaperBroker, strategy: str) -> Portfolio:
    """The books the exchange's own trades of ``strategy`` make, in the exchange's order."""
    book = Portfolio(symbols={s: (i.base, i.quote) for s, i in broker.symbol_info().items()})
    for fill in await broker.trades_since(SYMBOL, 0):
        if belongs(fill.client_order_id, strategy):
            book.apply_fill(fill)
    return book


def same_books(book: Portfolio, expected: Portfolio) -> None:
    assert book.positions.keys() == expected.positions.keys()
    for symbol, position in expected.positions.items():
        got = book.positions[symbol]
        assert (got.quantity, got.cost_basis, got.realised_pnl, got.fees) == (
            position.quantity,
            position.cost_basis,
            position.realised_pnl,
            position.fees,
        )
    assert book.balances == expected.balances
    assert book.fees_paid == expected.fees_paid


async def open_ids(broker: PaperBroker) -> set[str]:
    return {o.client_order_id for o in await broker.open_orders()}


# ------------------------------------------------------------------ the kill -9 scenario


async def test_restart_after_a_crash_adopts_orders_and_books_lost_trades_once(
    clock: MockClock, vclock: trading.VirtualClock, tmp_path: Path
) -> None:
    prices = Prices()
    broker = new_broker(vclock, prices)
    fx = FaultyExchange(broker)
    db = tmp_path / "trades.sqlite"

    mortal = Mortal(Recorder(db, run_id="runa"))
    async with trading.Runner(
        clock=vclock, exchange=fx, observers=[mortal], run_id="runa", recover=True
    ) as runner:
        await runner.add(Quiet(), name="s")
        assert runner.engine is not None
        account = runner.engine.account("s")
        await account.submit(Side.BUY, "0.02", SYMBOL)  # recorded
        ask = await account.submit(Side.SELL, "0.01", SYMBOL, price="61000")  # rests
        bid = await account.submit(Side.BUY, "0.01", SYMBOL, price="59000")  # rests
        await runner.flush()
        mortal.dead = True  # kill -9: what follows never reaches the disk
        lost = await account.submit(Side.BUY, "0.01", SYMBOL)
    assert await open_ids(broker) == {ask.client_order_id, bid.client_order_id}

    prices.prices[SYMBOL] = 61_500.0  # while nothing runs, the ask trades
    await exchange_runs_alone(broker, vclock)
    prices.prices[SYMBOL] = 60_000.0
    assert await open_ids(broker) == {bid.client_order_id}
    placed_before, calls_before = Counter(fx.placed), len(fx.calls)

    events = EventLog()
    async with trading.Runner(
        clock=vclock,
        exchange=fx,
        observers=[Recorder(db, run_id="runb")],
        publish=events,
        run_id="runb",
        recover=True,
    ) as runner:
        await runner.add(Tidy(), name="s")
        assert runner.engine is not None
        account = runner.engine.account("s")
        (recovered,) = events.of(ev.Recovered)
        assert isinstance(recovered, ev.Recovered)
        assert recovered.restored_fills == 1
        assert recovered.adopted_orders == (bid.client_order_id,)
        lost_trade, ask_trade = lost.fills[0].trade_id, (await broker.trades_since(SYMBOL, 0))[-1]
        assert ask_trade.client_order_id == ask.client_order_id
        assert sorted(recovered.booked_trades) == sorted(
            [f"{SYMBOL}:{lost_trade}", f"{SYMBOL}:{ask_trade.trade_id}"]
        )
        assert set(recovered.closed_orders) == {
            f"{ask.client_order_id} filled",
            f"{lost.client_order_id} filled",
        }
        assert recovered.positions == ((SYMBOL, D("0.02")),)
        same_books(account.book, await truth(broker, "s"))
        assert [o.client_order_id for o in account.open_orders()] == [bid.client_order_id]
        assert fx.placed == placed_before  # nothing re-sent
        assert [m for m, _ in fx.calls[calls_before:]] == ["query", "query"]  # the two gone

        prices.prices[SYMBOL] = 58_000.0  # the adopted bid trades: pushed, booked once
        await vclock.sleep_until(vclock.now() + 61)
        assert account.open_orders() == []
        assert account.position(SYMBOL).quantity == D("0.03")
        bid_fills = [
            e for e in events.of(ev.OrderFilled) if e.client_order_id == bid.client_order_id
        ]
        assert len(bid_fills) == 1
        same_books(account.book, await truth(broker, "s"))
        await runner.flush()  # on disk before the block ends (the clock autojumps past waits)

    # A second restart finds the same state and books nothing again.
    events = EventLog()
    async with trading.Runner(
        clock=vclock,
        exchange=fx,
        observers=[Recorder(db, run_id="runc")],
        publish=events,
        recover=True,
    ) as runner:
        await runner.add(Tidy(), name="s")
        (recovered,) = events.of(ev.Recovered)
        assert isinstance(recovered, ev.Recovered)
        assert (recovered.restored_fills, recovered.booked_trades) == (4, ())
        assert recovered.adopted_orders == recovered.closed_orders == ()
        assert runner.engine is not None
        same_books(runner.engine.account("s").book, await truth(broker, "s"))
        await runner.flush()
    assert fx.placed == placed_before
    audit = sqlite3.connect(db).execute("SELECT strategy FROM events WHERE kind = 'Recovered'")
    assert [row[0] for row in audit] == ["s", "s", "s"]  # runs a, b and c


def test_client_ids_are_matched_to_their_strategy_as_the_engine_made_them() -> None:
    made = new_client_order_id("grid bot/v2", 17, "r1")
    assert belongs(made, "grid bot/v2")
    assert not belongs(made, "grid")
    assert not belongs(new_client_order_id("grid", 17, "r1"), "grid bot/v2")
    assert not belongs("web_7f3a", "grid")
    assert not belongs("x" * 36, "grid")


async def test_an_adopted_order_is_cancelled_by_cancel_and_by_stop(
    clock: MockClock, vclock: trading.VirtualClock, tmp_path: Path
) -> None:
    broker = new_broker(vclock, Prices())
    fx = FaultyExchange(broker)
    db = tmp_path / "trades.sqlite"
    async with recovering(vclock, fx, db) as runner:
        await runner.add(Quiet(), name="s")
        assert runner.engine is not None
        account = runner.engine.account("s")
        one = await account.submit(Side.BUY, "0.01", SYMBOL, price="59000")
        two = await account.submit(Side.BUY, "0.01", SYMBOL, price="58000")
    assert await open_ids(broker) == {one.client_order_id, two.client_order_id}

    async with recovering(vclock, fx, db) as runner:
        await runner.add(Tidy(), name="s")
        assert runner.engine is not None
        account = runner.engine.account("s")
        assert {o.client_order_id for o in account.open_orders()} == {
            one.client_order_id,
            two.client_order_id,
        }
        cancelled = await account.cancel(one.client_order_id)
        assert cancelled.state is OrderState.CANCELLED
        assert await open_ids(broker) == {two.client_order_id}
        result = await runner.remove("s")  # stop cancels the other adopted order
        # (Not result.ok: under the autojumping clock the recorder's thread can make the
        # stop's flush time out, which the reply says; the cancel is what is judged here.)
        assert f"cancelled 1 open order(s): {two.client_order_id}" in result.message
        await runner.flush()
    assert await open_ids(broker) == set()
    latest = {o.client_order_id: o.state for o in read_recorded(db, "s").orders}
    assert latest == {
        one.client_order_id: OrderState.CANCELLED,
        two.client_order_id: OrderState.CANCELLED,
    }


async def test_two_adds_of_one_name_recover_it_once(
    clock: MockClock, vclock: trading.VirtualClock, tmp_path: Path
) -> None:
    broker = new_broker(vclock, Prices())
    fx = FaultyExchange(broker)
    db = tmp_path / "trades.sqlite"
    async with recovering(vclock, fx, db) as runner:
        await runner.add(Quiet(), name="s")
        assert runner.engine is not None
        await runner.engine.account("s").submit(Side.BUY, "0.02", SYMBOL)
        await runner.engine.account("s").submit(Side.BUY, "0.01", SYMBOL, price="59000")
        await runner.flush()
    events = EventLog()
    outcomes: list[object] = []
    async with recovering(vclock, fx, db, publish=events) as runner:

        async def add() -> None:
            try:
                outcomes.append(await runner.add(Quiet(), name="s"))
            except ValueError as exc:
                outcomes.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(add)
            nursery.start_soon(add)
        assert sorted(type(o).__name__ for o in outcomes) == ["StrategyRunner", "ValueError"]
        assert len(events.of(ev.Recovered)) == 1
        assert runner.engine is not None
        account = runner.engine.account("s")
        assert account.position(SYMBOL).quantity == D("0.02")
        assert len(account.open_orders()) == 1
        same_books(account.book, await truth(broker, "s"))
        await runner.flush()


async def test_orders_of_other_strategies_and_strangers_are_left_alone(
    clock: MockClock, vclock: trading.VirtualClock, tmp_path: Path
) -> None:
    broker = new_broker(vclock, Prices())
    fx = FaultyExchange(broker)
    db = tmp_path / "trades.sqlite"
    async with recovering(vclock, fx, db) as runner:
        for name in ("s", "s_2"):
            await runner.add(Quiet(), name=name)
        assert runner.engine is not None
        mine = await runner.engine.account("s").submit(Side.BUY, "0.01", SYMBOL, price="59000")
        other = await runner.engine.account("s_2").submit(Side.BUY, "0.01", SYMBOL, price="59000")
    stranger = await broker.submit(
        OrderSpec(
            client_order_id="web_7f3a",
            symbol=SYMBOL,
            side=Side.BUY,
            type=OrderType.LIMIT,
            quantity=D("0.01"),
            price=D("59000"),
        )
    )
    events = EventLog()
    async with recovering(vclock, fx, db, publish=events) as runner:
        await runner.add(Quiet(), name="s")
        (recovered,) = events.of(ev.Recovered)
        assert isinstance(recovered, ev.Recovered)
        assert recovered.adopted_orders == (mine.client_order_id,)
        assert set(recovered.left_alone) == {other.client_order_id, stranger.client_order_id}
        assert runner.engine is not None
        assert other.client_order_id not in runner.engine.orders
        await runner.add(Quiet(), name="s_2")  # its own recovery adopts its order
        assert other.client_order_id in runner.engine.orders
        assert stranger.client_order_id not in runner.engine.orders
    assert await open_ids(broker) == {
        mine.client_order_id,
        other.client_order_id,
        stranger.client_order_id,
    }


async def test_an_exchange_that_cannot_be_read_fails_the_start(
    clock: MockClock, vclock: trading.VirtualClock, tmp_path: Path
) -> None:
    broker = new_broker(vclock, Prices())
    fx = FaultyExchange(broker)
    db = tmp_path / "trades.sqlite"
    async with recovering(vclock, fx, db) as runner:
        fx.read_faults = 3  # a short outage is ridden out (reads are retried)
        await runner.add(Quiet(), name="s")
        fx.read_faults = 10_000  # a long one stops the start: no trading on unknown positions
        with pytest.raises(RecoveryFailed, match="open orders could not be read within 30s"):
            await runner.add(Quiet(), name="t")
        assert "t" not in runner.names()
        assert runner.engine is not None and not runner.engine.has_account("t")
        with pytest.raises(trading.StartFailed, match="RecoveryFailed"):
            await runner.add_many([("u", Quiet())])
        fx.read_faults = 0
        await runner.add(Quiet(), name="t")  # once the exchange answers, it starts


def test_recover_defaults_to_on_only_with_a_database_and_an_exchange_that_outlives_us(
    tmp_path: Path,
) -> None:
    clock = trading.VirtualClock(start=T0)
    broker = new_broker(clock, Prices())
    recorder = Recorder(tmp_path / "x.sqlite")
    try:
        assert trading.Runner(exchange=broker, observers=[recorder])._recovery is None
        assert trading.Runner(exchange=broker, observers=[recorder], recover=True)._recovery
        assert trading.Runner(exchange=broker)._recovery is None
        with pytest.raises(ValueError, match="needs a database"):
            trading.Runner(exchange=broker, recover=True)
    finally:
        recorder.close()


async def test_a_trade_the_run_never_heard_of_is_found_from_its_order_record(
    clock: MockClock, vclock: trading.VirtualClock, tmp_path: Path
) -> None:
    """The push of a fill was lost and the run went on recording for an hour: the trade is
    older than the strategy's last record, and Binance's order lookup carries no trades, so it
    must be read from the trades since the order was first recorded."""
    prices = Prices()
    broker = new_broker(vclock, prices)
    fx = FaultyExchange(broker)
    published = EventLog()
    async with trio.open_nursery() as nursery:
        engine = TradeEngine(fx, clock=vclock, publish=published, run_id="a")
        await nursery.start(engine.run)
        bid = await engine.account("s").submit(Side.BUY, "0.01", SYMBOL, price="59000")
        nursery.cancel_scope.cancel()
    prices.prices[SYMBOL] = 58_000.0
    await exchange_runs_alone(broker, vclock)  # it trades; nobody hears
    prices.prices[SYMBOL] = 60_000.0
    await vclock.sleep_until(vclock.now() + 3600)
    later = ev.StrategyStateChanged(
        time=vclock.now(), strategy="s", old="sleeping", new="computing"
    )
    recorder = Recorder(tmp_path / "db.sqlite", run_id="a")
    recorder.write(list(enumerate([*published, later], 1)))
    fx.script("query", WithoutFills())
    published = EventLog()
    async with trio.open_nursery() as nursery:
        engine = TradeEngine(fx, clock=vclock, publish=published, run_id="b")
        await nursery.start(engine.run)
        recovery = Recovery(recorder, flush=trio.lowlevel.checkpoint)
        account = await recovery.account(engine, "s", None, (SYMBOL,))
        assert fx.pending("query") == ()
        assert account.position(SYMBOL).quantity == D("0.01")
        same_books(account.book, await truth(broker, "s"))
        (recovered,) = published.of(ev.Recovered)
        assert isinstance(recovered, ev.Recovered)
        assert recovered.closed_orders == (f"{bid.client_order_id} filled",)
        assert len(recovered.booked_trades) == 1
        nursery.cancel_scope.cancel()
    recorder.close()


async def test_a_position_the_exchange_does_not_hold_is_reported(
    clock: MockClock,
    vclock: trading.VirtualClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "db.sqlite"
    broker = new_broker(vclock, Prices())
    async with recovering(vclock, broker, db) as runner:
        await runner.add(Quiet(), name="s")
        assert runner.engine is not None
        await runner.engine.account("s").submit(Side.BUY, "0.02", SYMBOL)
        await runner.flush()
    emptied = PaperBroker(Prices(), vclock, balances={"USDT": D(100_000)})  # BTC gone
    async with recovering(vclock, emptied, db) as runner:
        await runner.add(Quiet(), name="s")
    assert "recovered position BTCUSDT 0.02 but the exchange holds 0 BTC" in caplog.text


# ------------------------------------------------------------------ property: books == truth

ROLES = st.sampled_from(
    [
        "lost_submit",
        "market_buy",
        "market_sell",
        "fill_before",
        "fill_downtime",
        "open",
        "cancel_before",
        "cancel_downtime",
    ]
)


@settings(max_examples=60)
@example(roles=["market_buy", "open", "fill_downtime"], cut=1.0)
@example(roles=["fill_before", "cancel_before", "market_sell"], cut=0.0)
@example(roles=["market_buy", "fill_before", "market_sell"], cut=0.0)  # booked in time order
@example(roles=["lost_submit", "open"], cut=0.2)  # recorded in flight, never arrived
@given(roles=st.lists(ROLES, min_size=1, max_size=5), cut=st.floats(0, 1))
def test_whatever_the_crash_lost_the_restarted_books_equal_the_exchange(
    roles: list[str], cut: float
) -> None:
    """Each order plays a role (traded at once, traded or cancelled before the crash or while
    down, still open); the database keeps only a prefix of what the run published (``cut``).
    After the restart the books equal the exchange's trades, the open orders are the
    exchange's, nothing was sent again, and the recorded order states are the exchange's."""

    async def main(tmp: Path) -> None:
        vclock = trading.VirtualClock(start=T0)
        prices = Prices()
        broker = new_broker(vclock, prices)
        fx = FaultyExchange(broker)
        published = EventLog()
        orders: dict[str, list[str]] = {}
        async with trio.open_nursery() as nursery:  # run A
            engine = TradeEngine(fx, clock=vclock, publish=published, run_id="a")
            await nursery.start(engine.run)
            account = engine.account("s")
            for i, role in enumerate(roles):
                if role == "lost_submit":  # never reaches the exchange; run A gives up on it
                    fx.script("submit", Hang())
                    with contextlib.suppress(trading.OrderRefused, trading.OrderUnresolved):
                        await account.submit(Side.BUY, "0.01", SYMBOL, price=str(55_000 - i))
                    continue
                if role.startswith("market"):
                    side = Side.BUY if role == "market_buy" else Side.SELL
                    order = await account.submit(side, "0.01", SYMBOL)
                else:
                    base = {"fill_before": 59_000, "fill_downtime": 58_000}.get(role, 55_000)
                    order = await account.submit(Side.BUY, "0.01", SYMBOL, price=str(base - i))
                orders.setdefault(role, []).append(order.client_order_id)
            for cid in orders.get("cancel_before", []):
                await account.cancel(cid)
            if "fill_before" in orders:
                prices.prices[SYMBOL] = 59_000 - len(roles)
                await vclock.sleep_until(vclock.now() + 61)
            nursery.cancel_scope.cancel()  # the crash: no wind-down at all
        recorder = Recorder(tmp / "db.sqlite", run_id="a")
        kept = published[: round(cut * len(published))]
        recorder.write(list(enumerate(kept, 1)))

        for cid in orders.get("cancel_downtime", []):
            await broker.cancel(SYMBOL, cid)
        if "fill_downtime" in orders:
            prices.prices[SYMBOL] = 58_000 - len(roles)
            await exchange_runs_alone(broker, vclock)
        prices.prices[SYMBOL] = 60_000.0
        placed = Counter(fx.placed)

        for run in ("b", "c"):  # two restarts: the second finds everything in the database
            published = EventLog()
            async with trio.open_nursery() as nursery:
                engine = TradeEngine(fx, clock=vclock, publish=published, run_id=run)
                await nursery.start(engine.run)
                recovery = Recovery(recorder, flush=trio.lowlevel.checkpoint)
                account = await recovery.account(engine, "s", None, (SYMBOL,))
                same_books(account.book, await truth(broker, "s"))
                (recovered,) = published.of(ev.Recovered)
                assert isinstance(recovered, ev.Recovered)
                if run == "c":
                    assert recovered.booked_trades == ()
                await trio.sleep(60)  # the background reconciler settles what was unknown
                assert {o.client_order_id for o in account.open_orders()} == await open_ids(broker)
                nursery.cancel_scope.cancel()
            recorder.run_id = run
            recorder.write(list(enumerate(published, 1)))
            assert fx.placed == placed
            states = {o.client_order_id: o for o in read_recorded(tmp / "db.sqlite", "s").orders}
            for cid, recorded in states.items():
                at_exchange = await broker.query(SYMBOL, cid)
                expected = OrderState.REJECTED if at_exchange is None else at_exchange.state
                assert recorded.state is expected, (cid, recorded)
        recorder.close()

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        # A few real milliseconds of idleness before each jump: the recorder's SQLite thread
        # finishes its write instead of the clock spinning through months of paper-broker polls
        # while it works (seen: 2 s to 86 s per run, depending on the disk and the load).
        trio.run(main, Path(tmp), clock=MockClock(autojump_threshold=0.002))


# ------------------------------------------------------------------ a real kill -9


async def test_kill_9_mid_run_then_restart(tmp_path: Path) -> None:
    """A child process trades (one fill, one resting order, then a fill it may not have
    recorded) and is killed with SIGKILL. The exchange is deterministic, so the parent rebuilds
    it from the same requests; the restart then knows the position and the open order whatever
    the child's database lost, and sends nothing."""
    db = tmp_path / "child.sqlite"
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(CHILD), str(db)], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = b""
        with trio.fail_after(60):
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some()
                assert chunk, f"the child ended before it was ready: {line!r}"
                line += chunk
        assert line.strip() == b"ready", line
        os.kill(proc.pid, signal.SIGKILL)
        with trio.fail_after(30):
            code = await proc.wait()
        assert code == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()

    recorded = read_recorded(db, "s")  # the killed run's file opens and reads
    assert len(recorded.fills) in (1, 2)

    vclock = trading.VirtualClock(start=T0)
    broker = new_broker(vclock, Prices())
    for spec in recovery_child.requests():
        await broker.submit(spec)  # the exchange as the child left it
    fx = FaultyExchange(broker)
    events = EventLog()
    with trio.fail_after(60):
        async with recovering(vclock, fx, db, publish=events) as runner:
            await runner.add(Quiet(), name="s")
            (recovered,) = events.of(ev.Recovered)
            assert isinstance(recovered, ev.Recovered)
            assert recovered.adopted_orders == (recovery_child.RESTING,)
            assert recovered.restored_fills + len(recovered.booked_trades) == 2
            assert runner.engine is not None
            account = runner.engine.account("s")
            assert account.position(SYMBOL).quantity == D("0.03")
            same_books(account.book, await truth(broker, "s"))
    assert fx.placed == Counter()
