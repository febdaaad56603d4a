"""What the Telegram bot answers on its own: help, positions, orders, PnL, health, whoami.

The rules this module keeps: every view reads the runner without awaiting anything (a view
interrupts no strategy), returns plain text (the bot splits it to Telegram's limit), and says
so when there is nothing to show instead of sending an empty message (Telegram refuses those).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trading.control.health import health as full_health
from trading.control.health import render_health
from trading.control.telegram_updates import Incoming
from trading.core.commands import BUILTIN_VERBS
from trading.runtime.account import Account
from trading.runtime.runner import Runner

__all__ = ["BOT_VERBS", "help_text", "view", "whoami"]

# The bot's own verbs (answered here, audited by the bot); everything else goes to runner.send.
BOT_VERBS = {
    "positions": "positions: what each strategy holds",
    "orders": "orders: each strategy's open orders",
    "pnl": "pnl: each strategy's PnL and the total",
    "health": "health: alive or not: per strategy the last bar's age, restarts; connections",
    "whoami": "whoami: this chat's id, topic id and your user id (for the config)",
}


def help_text(runner: Runner) -> str:
    lines = ["/status: the status table (/status NAME: one strategy in detail)"]
    lines += [f"/{text}" for verb, text in BUILTIN_VERBS.items() if verb not in ("status",)]
    lines += [f"/{text}" for text in BOT_VERBS.values()]
    for verb, text in sorted(runner.custom_commands().items()):
        lines.append(f"/{text}" if text.startswith(f"{verb} ") else f"/{verb} NAME ...: {text}")
    return "\n".join(lines)


def whoami(message: Incoming) -> str:
    topic = "-" if message.thread_id is None else str(message.thread_id)
    user = "-" if message.user_id is None else str(message.user_id)
    return f"chat id: {message.chat_id}\ntopic id: {topic}\nuser id: {user}"


def _accounts(runner: Runner) -> list[tuple[str, Account]]:
    engine = runner.engine
    if engine is None:
        return []
    return [(name, engine.account(name)) for name in runner.names() if engine.has_account(name)]


def positions(runner: Runner) -> str:
    if runner.engine is None:
        return "no exchange: no positions"
    lines = []
    for name, account in _accounts(runner):
        held = sorted((s, p) for s, p in account.book.positions.items() if p.quantity)
        for symbol, p in held:
            lines.append(f"{name}: {symbol} {p.quantity.normalize():f} @ {p.average_price:.8g}")
    return "\n".join(lines) or "no positions"


def orders(runner: Runner) -> str:
    if runner.engine is None:
        return "no exchange: no orders"
    lines = []
    for name, account in _accounts(runner):
        for o in account.open_orders():
            price = "market" if o.price is None else f"{o.price.normalize():f}"
            lines.append(
                f"{name}: {o.side.value} {o.quantity.normalize():f} {o.symbol} @ {price}"
                f" {o.state.value} {o.client_order_id}"
            )
    return "\n".join(lines) or "no open orders"


def pnl(runner: Runner) -> str:
    if runner.engine is None:
        return "no exchange: no PnL"
    total = Decimal(0)
    lines = []
    for name, account in _accounts(runner):
        value: Decimal = account.pnl()
        total += value
        lines.append(f"{name}: {value:+.2f}")
    if not lines:
        return "no PnL yet"
    return "\n".join([*lines, f"total: {total:+.2f}"])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, str):
        line: str = value.strip().splitlines()[-1] if value.strip() else value
        return line if len(line) <= 80 else line[:79] + "…"
    return str(value)


def health_text(runner: Runner) -> str:
    """The same report as ``ctl health`` (see :mod:`trading.control.health`)."""
    return render_health(full_health(runner))


def view(verb: str, runner: Runner) -> str:
    """The text of one of :data:`BOT_VERBS` (but whoami) or help."""
    if verb in ("help", "start"):
        return help_text(runner)
    if verb == "positions":
        return positions(runner)
    if verb == "orders":
        return orders(runner)
    if verb == "pnl":
        return pnl(runner)
    if verb == "health":
        return health_text(runner)
    raise ValueError(f"no view {verb!r}")
