"""A template to copy: `cp strategies/mystrategy.py strategies/mine.py`; `trio-trade run mine`."""

from __future__ import annotations

import attrs

import trading


def heavy_indicator(closes: list[float], rounds: int) -> float:
    """Stand-in for CPU-heavy maths. Module-level so a worker process can import it by name."""
    value = 0.0
    for _ in range(rounds):
        for close in closes:
            value = (value * 31 + close) % 1_000_003
    return value


# `@attrs.define` turns the annotated fields below into *parameters*: typed, validated, shown by
# `status`, and changeable while running with `set mystrategy threshold=0.02`.
@attrs.define
class MyStrategy(trading.Strategy):
    """Template: logs the last close each bar and how far it moved; edit next() to trade."""

    # Class attributes (no annotation): the bar length next() runs on, and what it trades.
    interval = "1m"
    symbols = ("ETHUSDT",)
    # Optional: verbs of your own. `note mystrategy hello` calls on_command below.
    custom_commands = {"note": "note NAME TEXT: write TEXT to the strategy's log"}

    threshold: float = attrs.field(default=0.01, validator=attrs.validators.gt(0))
    use_worker: bool = False
    # init=False fields are private state, not parameters.
    last_close: float | None = attrs.field(default=None, init=False)

    async def on_start(self, ctx: trading.Context) -> None:
        # Open what you need here (HTTP clients, DB connections): created where used, never pickled.
        ctx.log.info("starting on %s every %s", ", ".join(ctx.symbols), ctx.interval)

    async def next(self, ctx: trading.Context) -> None:
        # Every `await` is a point where stop/pause may interrupt: never hold state half-updated
        # across one. Do not sleep here; the runner wakes you at the next bar close.
        bars = await ctx.history(limit=50)
        close = bars[-1].close
        if self.use_worker:
            # CPU-bound work goes to a worker process that `stop`/`pause` kill at once.
            score = await ctx.run_in_process(heavy_indicator, [b.close for b in bars], 2_000)
            ctx.log.info("indicator %.1f", score)
        if self.last_close is not None:
            move = close / self.last_close - 1
            flag = "  <-- move above threshold" if abs(move) >= self.threshold else ""
            ctx.log.info("%s close %.2f (%+.3f%%)%s", ctx.symbols[0], close, move * 100, flag)
        self.last_close = close

    async def on_command(self, ctx: trading.Context, command: trading.Command) -> str:
        text = " ".join(command.args) or "(empty)"
        ctx.log.info("operator note: %s", text)
        return f"noted: {text}"

    async def on_stop(self, ctx: trading.Context) -> None:
        # Runs shielded with a deadline on stop: close what on_start opened.
        ctx.log.info("stopping after %d computes", ctx.computes)
