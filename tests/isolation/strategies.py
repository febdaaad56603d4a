"""Strategies the isolation tests run in child processes (importable by reference)."""

from __future__ import annotations

import os
import sys
import time
from decimal import Decimal

import attrs
import trio

import trading
from trading.core.commands import Command
from trading.isolation.framing import dumps


@attrs.define
class Trader(trading.Strategy):
    """Buys ``qty`` on every compute while ``sleep`` says how long next() then sleeps."""

    interval = "1d"
    symbols = ("BTCUSDT",)
    custom_commands = {"ping": "ping NAME: answer pong"}
    qty: Decimal = Decimal("0.001")
    sleep: float = 0.0
    spin: float = 0.0
    buy: bool = True

    async def next(self, ctx: trading.Context) -> None:
        if self.buy:
            order = await ctx.buy(self.qty)
            ctx.log.info(
                "bought %s pid %d position %s",
                order.client_order_id,
                os.getpid(),
                ctx.position().quantity,
            )
        if self.spin:
            end = time.monotonic() + self.spin
            while time.monotonic() < end:  # holds the CPU: no checkpoint
                pass
        if self.sleep:
            await trio.sleep(self.sleep)

    async def on_command(self, ctx: trading.Context, command: Command) -> str:
        return f"pong qty={self.qty}"


class _System:
    """Pickles as a call of os.system: what a hostile child could send its parent."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


@attrs.define
class Garbage(trading.Strategy):
    """Writes what is not a frame, or a frame that is not plain data, on its own channel."""

    interval = "1d"
    kind: str = "huge"

    async def next(self, ctx: trading.Context) -> None:
        fd = int(sys.argv[1])  # the child's channel (trading.isolation.child FD PARENT_PID)
        if self.kind == "huge":
            os.write(fd, b"\xff\xff\xff\xffgarbage")
        elif self.kind == "code":
            os.write(fd, dumps(("done", True, _System())))
        elif self.kind == "exit":
            os._exit(3)
        else:
            os.write(fd, b"\x00\x00\x01\x00cut")
            os._exit(0)
        await trio.sleep(60)


class NotThere(ValueError):
    """A strategy's own error type, unknown to the parent."""


@attrs.define
class Probe(trading.Strategy):
    """Reports what its ctx shows, through its own commands (compared in and out of process)."""

    interval = "1d"
    compute_on_start = False
    qty: str = "0.001"
    limit: str = "10000"
    custom_commands = {
        "probe": "probe NAME: what ctx shows",
        "oops": "oops NAME: raise a ValueError subclass",
        "crash": "crash NAME: raise a KeyError",
        "now": "now NAME: ctx.now",
        "where": "where NAME: where run_in_thread and run_in_process run",
    }

    async def next(self, ctx: trading.Context) -> None:
        pass

    async def on_command(self, ctx: trading.Context, command: Command) -> str:
        if command.verb == "oops":
            raise NotThere(f"no such thing as {command.args}")
        if command.verb == "crash":
            raise KeyError("k")
        if command.verb == "now":
            return f"{ctx.now:.3f}"
        if command.verb == "where":
            here = os.getpid()
            thread = await ctx.run_in_thread(os.getpid)
            process = await ctx.run_in_process(os.getpid)
            return f"thread here {thread == here}; process here {process == here}"
        bars = await ctx.history(limit=5)
        market = await ctx.buy(self.qty)
        after = ctx.position().quantity
        limit = await ctx.buy(self.qty, price=self.limit)
        opened = [o.client_order_id for o in ctx.open_orders()]
        cancelled = await ctx.cancel(limit)
        try:
            await ctx.sell("5")
            refused = "no"
        except trading.OrderRefused as exc:
            refused = f"{type(exc).__name__}: {exc}"
        facts = [
            len(bars),
            bars[-1].close_time <= ctx.now,
            market.state.value,
            str(after),
            opened == [limit.client_order_id],
            cancelled.state.value,
            ctx.open_orders(),
            refused,
            ctx.name,
            ctx.symbols,
            str(ctx.interval),
        ]
        return repr(facts)


@attrs.define
class SlowStart(trading.Strategy):
    """on_start takes long: a stop lands in it."""

    interval = "1d"

    async def on_start(self, ctx: trading.Context) -> None:
        await trio.sleep(60)

    async def next(self, ctx: trading.Context) -> None:
        pass


@attrs.define
class LateBuyer(trading.Strategy):
    """Buys from a shielded block after the cancel reached it: the parent must refuse that."""

    interval = "1d"

    async def next(self, ctx: trading.Context) -> None:
        with trio.CancelScope(shield=True):
            ctx.log.info("shielded")
            await trio.sleep(0.3)
            try:
                await ctx.buy("0.001")
            except Exception as exc:
                ctx.log.info("refused: %s: %s", type(exc).__name__, exc)
        await trio.sleep(60)
