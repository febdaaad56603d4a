"""Moving-average cross on BTCUSDT: a signal when the fast average crosses the slow one."""

from __future__ import annotations

import attrs

import trading


def sma(values: list[float]) -> float:
    return sum(values) / len(values)


@attrs.define
class SmaCross(trading.Strategy):
    """Moving-average cross: buy signal when the fast SMA crosses above the slow one, sell below."""

    interval = "15m"
    symbols = ("BTCUSDT",)

    fast: int = attrs.field(default=5, validator=attrs.validators.gt(0))
    slow: int = attrs.field(default=20, validator=attrs.validators.gt(1))
    signals: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")

    async def next(self, ctx: trading.Context) -> None:
        bars = await ctx.history(limit=self.slow + 1)
        closes = [bar.close for bar in bars]
        fast_now, slow_now = sma(closes[-self.fast :]), sma(closes[-self.slow :])
        fast_before = sma(closes[-self.fast - 1 : -1])
        slow_before = sma(closes[-self.slow - 1 : -1])
        bar = bars[-1]
        when = f"{ctx.time:%Y-%m-%d %H:%M}"
        if fast_before <= slow_before and fast_now > slow_now:
            self.signals += 1
            ctx.log.info(
                "%s BUY  signal: %s close %.2f, fast %.2f crossed above slow %.2f",
                when,
                bar.symbol,
                bar.close,
                fast_now,
                slow_now,
            )
        elif fast_before >= slow_before and fast_now < slow_now:
            self.signals += 1
            ctx.log.info(
                "%s SELL signal: %s close %.2f, fast %.2f crossed below slow %.2f",
                when,
                bar.symbol,
                bar.close,
                fast_now,
                slow_now,
            )
        else:
            trend = "above" if fast_now > slow_now else "below"
            ctx.log.info(
                "%s %s close %.2f: fast %.2f %s slow %.2f, no cross",
                when,
                bar.symbol,
                bar.close,
                fast_now,
                trend,
                slow_now,
            )
