"""Strategies in their own processes (``isolate = true``, ``trio-trade run NAME --isolate``).

Only configuration crosses (DESIGN.md rule 9); ``ctx`` calls come back to the parent, so a run
keeps one engine, one rate-limit budget, one recorder and one set of exchange connections.
"""

from trading.isolation.process import ChildDied, ChildUnresponsive
from trading.isolation.proxy import is_isolated, isolate
from trading.isolation.reference import IsolationError

__all__ = ["ChildDied", "ChildUnresponsive", "IsolationError", "is_isolated", "isolate"]
