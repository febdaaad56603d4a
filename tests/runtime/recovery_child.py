"""The child process of ``test_recovery.py::test_kill_9_mid_run_then_restart``.

Runs a Runner with a Recorder on the database file given as argument and a paper broker, trades
(a fill, a resting order, both flushed to disk; then a fill that may or may not be), prints
``ready`` and waits to be killed. :func:`requests` lists what it sent, so the parent can rebuild
the (deterministic) exchange it left behind.
"""

from __future__ import annotations

import sys
from decimal import Decimal

import trio

import trading
from trading.core.ids import new_client_order_id
from trading.core.records import OrderSpec, OrderType
from trading.core.risk import RiskLimits
from trading.exchanges.paper import PaperBroker
from trading.observers.recorder import Recorder

RUN = "kill9"
T0 = 1_735_689_600.0
RESTING = new_client_order_id("s", 2, RUN)


class Prices:
    def price(self, symbol: str, t: float) -> float:
        return 60_000.0


class Quiet(trading.Strategy):
    interval = "1d"
    symbols = ("BTCUSDT",)
    risk = RiskLimits(cancel_open_orders_on_stop=False)

    async def next(self, ctx: trading.Context) -> None:
        pass


def requests() -> list[OrderSpec]:
    """The orders the child sends, in order, with the ids its engine gives them."""

    def spec(seq: int, quantity: str, price: str | None = None) -> OrderSpec:
        return OrderSpec(
            client_order_id=new_client_order_id("s", seq, RUN),
            symbol="BTCUSDT",
            side=trading.Side.BUY,
            type=OrderType.MARKET if price is None else OrderType.LIMIT,
            quantity=Decimal(quantity),
            price=None if price is None else Decimal(price),
        )

    return [spec(1, "0.02"), spec(2, "0.01", "59000"), spec(3, "0.01")]


async def main(db: str) -> None:
    clock = trading.VirtualClock(start=T0)
    broker = PaperBroker(Prices(), clock, balances={"USDT": Decimal(100_000), "BTC": Decimal(1)})
    async with trading.Runner(
        clock=clock,
        exchange=broker,
        observers=[Recorder(db, run_id=RUN)],
        run_id=RUN,
        recover=True,
    ) as runner:
        await runner.add(Quiet(), name="s")
        assert runner.engine is not None
        account = runner.engine.account("s")
        sent = requests()
        for spec in sent[:2]:
            order = await account.submit(spec.side, spec.quantity, spec.symbol, spec.price)
            assert order.client_order_id == spec.client_order_id
        await runner.flush()
        last = sent[2]
        order = await account.submit(last.side, last.quantity, last.symbol, last.price)
        assert order.client_order_id == last.client_order_id
        print("ready", flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
