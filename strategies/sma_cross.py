"""Moving-average cross on BTCUSDT: long when the fast average crosses above the slow one."""

from __future__ import annotations

from decimal import Decimal

import attrs

import trading


def sma(values: list[float]) -> float:
    return sum(values) / len(values)


@attrs.define
class SmaCross(trading.Strategy):
    """Moving-average cross: buys when the fast SMA crosses above the slow one, sells below."""

    interval = "15m"
    symbols = ("BTCUSDT",)
    # Checked before anything is sent; breaching the daily loss pauses the strategy.
    risk = trading.RiskLimits(
        max_order_notional=Decimal("5000"), max_open_orders=2, max_daily_loss=Decimal("250")
    )

    fast: int = attrs.field(default=5, validator=attrs.validators.gt(0))
    slow: int = attrs.field(default=20, validator=attrs.validators.gt(1))
    quantity: Decimal = attrs.field(
        default=Decimal("0.01"), converter=Decimal, validator=attrs.validators.gt(Decimal(0))
    )

    def __attrs_post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")

    async def next(self, ctx: trading.Context) -> None:
        bars = await ctx.history(limit=self.slow + 1)
        closes = [bar.close for bar in bars]
        fast_now, slow_now = sma(closes[-self.fast :]), sma(closes[-self.slow :])
        fast_before = sma(closes[-self.fast - 1 : -1])
        slow_before = sma(closes[-self.slow - 1 : -1])
        bar, held = bars[-1], ctx.position().quantity
        when = f"{ctx.time:%Y-%m-%d %H:%M}"
        if fast_before <= slow_before and fast_now > slow_now:
            ctx.log.info(
                "%s BUY  signal: %s close %.2f, fast %.2f crossed above slow %.2f",
                when,
                bar.symbol,
                bar.close,
                fast_now,
                slow_now,
            )
            if held <= 0:
                order = await ctx.buy(self.quantity)
                ctx.log.info(
                    "bought %s %s @ %s", order.filled_quantity, bar.symbol, order.average_fill_price
                )
        elif fast_before >= slow_before and fast_now < slow_now:
            ctx.log.info(
                "%s SELL signal: %s close %.2f, fast %.2f crossed below slow %.2f",
                when,
                bar.symbol,
                bar.close,
                fast_now,
                slow_now,
            )
            if held > 0:
                order = await ctx.sell(held)
                ctx.log.info(
                    "sold %s %s @ %s; realised PnL %s",
                    order.filled_quantity,
                    bar.symbol,
                    order.average_fill_price,
                    ctx.position().realised_pnl,
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
