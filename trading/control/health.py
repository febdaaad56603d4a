"""Health: an honest "is it alive", per strategy and per connection, not just "process up".

``ctl health`` and Telegram's ``/health`` answer from here. A strategy is judged by the age of the
last bar it processed against its interval (strategy clock), its restarts, and whether the run
can still hear the market and its orders (the :class:`~trading.exchanges.links.Link` of each
stream and of the REST API, real time). The verdicts, in the order they win:

* ``stopped`` / ``failed`` (gave up) / ``restarting`` / ``paused``: the state says it all;
* ``disconnected``: a running strategy while a link of the venue is down — its bars or its order
  updates cannot arrive;
* ``late``: running, and the last processed bar is more than two intervals old (a bar was missed:
  a stalled feed or a compute longer than a bar), or no bar was processed yet and the first
  close is more than one interval overdue;
* ``ok`` otherwise (``starting`` while it starts).

``alive`` is True when every strategy is ``ok``, ``paused`` or ``starting`` and every link is up.
Reading health interrupts nothing: it only reads what the runner and the links hold.
"""

from __future__ import annotations

from typing import Any

from trading.exchanges.links import links_of
from trading.runtime.runner import Runner

__all__ = ["HEALTHY", "health", "link_rows", "render_health", "strategy_health"]

HEALTHY = frozenset({"ok", "paused", "starting"})
_STATE_VERDICTS = {"stopped": "stopped", "stopping": "stopped", "restarting": "restarting"}
_RUNNING = frozenset({"computing", "sleeping"})


def link_rows(runner: Runner) -> list[dict[str, Any]]:
    """Each connection of the runner's market and exchange (none for simulated venues)."""
    return [link.snapshot() for link in links_of(runner.market, runner.exchange)]


def strategy_health(runner: Runner, *, links_up: bool = True) -> list[dict[str, Any]]:
    """One row per strategy; times are seconds of strategy clock."""
    now = runner.clock.now()
    rows = []
    for name in runner.names():
        sr = runner[name]
        status = sr.status()
        interval = sr.spec.interval.seconds
        due = status["next_close"]
        last_bar = sr.last_bar
        age = None if last_bar is None else max(0.0, now - last_bar)
        overdue = None if due is None else max(0.0, now - float(due))
        rows.append(
            {
                "strategy": name,
                "verdict": _verdict(status["state"], sr.given_up, age, overdue, interval, links_up),
                "state": status["state"],
                "interval": status["interval"],
                "last_bar": last_bar,
                "bar_age": age,
                "computes": status["computes"],
                "failures": status["failures"],
                "restarts": sr.restarts,
                "given_up": sr.given_up,
                "last_error": status["last_error"],
                "next_close": due,
                "overdue": overdue,
            }
        )
    return rows


def _verdict(
    state: str,
    given_up: bool,
    age: float | None,
    overdue: float | None,
    interval: float,
    links_up: bool,
) -> str:
    if state == "failed":
        return "failed" if given_up else "restarting"
    if state in _STATE_VERDICTS:
        return _STATE_VERDICTS[state]
    if state in ("paused", "created", "starting"):
        return "paused" if state == "paused" else "starting"
    if not links_up:
        return "disconnected"
    if age is not None and age > 2 * interval:
        return "late"
    if age is None and overdue is not None and overdue > interval:
        return "late"
    return "ok"


def health(runner: Runner) -> dict[str, Any]:
    """The whole report: ``alive``, ``strategies`` (rows) and ``links`` (rows)."""
    links = link_rows(runner)
    links_up = all(link["connected"] for link in links)
    rows = strategy_health(runner, links_up=links_up)
    alive = links_up and all(row["verdict"] in HEALTHY for row in rows)
    return {"alive": alive, "strategies": rows, "links": links}


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.0f}s"
    if value < 7200:
        return f"{value / 60:.0f}m"
    return f"{value / 3600:.1f}h"


def render_health(report: dict[str, Any]) -> str:
    """Plain lines for a terminal or a chat: the verdict first, then one line per strategy and
    per link."""
    lines = ["alive" if report["alive"] else "NOT HEALTHY"]
    for row in report["strategies"]:
        line = (
            f"{row['strategy']}: {row['verdict']} ({row['state']}), last bar "
            f"{_seconds(row['bar_age'])} ago, every {row['interval']}, "
            f"{row['computes']} computes, {row['restarts']} restarts, {row['failures']} failures"
        )
        if row.get("last_error"):
            line += f"; last error: {row['last_error']}"
        lines.append(line)
    if not report["links"]:
        lines.append("links: simulated venue, in process")
    for link in report["links"]:
        if link["connected"]:
            state = f"up {_seconds(link['for'])}, last message {_seconds(link['silent'])} ago"
        else:
            state = f"DOWN {_seconds(link['for'])}"
            if link.get("last_error"):
                state += f" ({link['last_error']})"
        lines.append(f"{link['link']}: {state}, {link['connects']} connects")
    return "\n".join(lines)
