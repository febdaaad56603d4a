"""The parent answering its child's ``ctx`` requests with the real Context.

The rules this module keeps (DESIGN.md rules 4, 9 and 12):

* Only the Context's own data and order methods are served (:data:`METHODS`), with the
  parent's Context doing the work: the engine, its rate-limit budget, its shielded order calls
  and its recorder are the same as for a strategy in the parent's process.
* A request that is not one — an unknown method, arguments of the wrong shape — is answered
  with an error naming it; so is every error of the call itself. Nothing here raises into the
  parent's loop but cancellation.
* Every answer to a request carries a fresh snapshot of the strategy's positions and open
  orders (:func:`snapshot`), so the child's synchronous ``position()`` sees its own orders.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from trading.runtime.strategy import Context

__all__ = ["METHODS", "serve_request", "snapshot"]

log = logging.getLogger(__name__)
METHODS = frozenset({"history", "buy", "sell", "submit", "cancel"})


def snapshot(ctx: Context) -> dict[str, Any]:
    """The strategy's positions (of its symbols) and open orders, or why it has none."""
    try:
        account = ctx.account
    except RuntimeError as exc:
        return {"no_account": str(exc)}
    return {
        "positions": {symbol: account.position(symbol) for symbol in ctx.symbols},
        "open_orders": account.open_orders(None),
    }


async def serve_request(
    ctx: Context, method: str, args: object, kwargs: object
) -> tuple[bool, Any]:
    """``(True, (result, snapshot))`` or ``(False, (error class names, message))``."""
    if method not in METHODS:
        return False, ("ValueError", f"the strategy's process asked for unknown {method!r}")
    if not isinstance(args, tuple) or not isinstance(kwargs, dict):
        return False, ("TypeError", f"{method}: malformed arguments from the strategy's process")
    try:
        result: Any = await getattr(ctx, method)(*args, **kwargs)
    except trio.Cancelled:
        raise
    except Exception as exc:
        return False, ([cls.__name__ for cls in type(exc).__mro__], str(exc))
    return True, (result, snapshot(ctx))
