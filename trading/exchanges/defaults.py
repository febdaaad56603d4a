"""The usual simulated set-up, for composition roots and embedding code.

The Runner picks no edges (DESIGN.md, layout); whoever builds it does. This is the one-liner
for the common case: a seeded :class:`SimulatedMarket` for bars and a :class:`PaperBroker`
filling against it, on the Runner's clock.
"""

from __future__ import annotations

from trading.exchanges.paper import PaperBroker
from trading.exchanges.sim import SimulatedMarket
from trading.runtime.clock import Clock

__all__ = ["simulated"]


def simulated(clock: Clock, *, seed: int = 7) -> tuple[SimulatedMarket, PaperBroker]:
    """A seeded market and a paper broker on ``clock`` (pass the Runner's clock too)::

    market, exchange = trading.simulated(clock)
    async with trading.Runner(clock=clock, market=market, exchange=exchange) as runner: ...
    """
    market = SimulatedMarket(seed=seed)
    return market, PaperBroker(market, clock)
