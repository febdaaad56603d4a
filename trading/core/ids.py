"""Client order ids: unique, readable, accepted by Binance, and parseable back.

Sans-IO. The id is how a lost answer is reconciled (the exchange is asked "what happened to
this id?"), so it must never repeat across runs and must say which strategy placed the order.
"""

from __future__ import annotations

import re
import secrets
from typing import Final

import attrs

__all__ = [
    "CLIENT_ORDER_ID_RE",
    "ClientOrderIdParts",
    "check_run_token",
    "new_client_order_id",
    "new_run_id",
    "parse_client_order_id",
    "strategy_of",
]

#: Binance's ``newClientOrderId`` rule. Use ``fullmatch``: ``$`` alone would
#: accept a trailing newline.
CLIENT_ORDER_ID_RE: Final = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_MAX_ID_LEN: Final = 36
_SEQ_WIDTH: Final = 6
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9]{1,8}")
_UNSAFE_CHAR_RE: Final = re.compile(r"[^.A-Za-z0-9:/_-]")
_PARSE_RE: Final = re.compile(
    r"(?P<prefix>[A-Za-z0-9]{1,8})-(?P<strategy>[.A-Za-z0-9:/_-]+)"
    rf"-(?P<seq>[0-9]{{{_SEQ_WIDTH},}})-(?P<run>[A-Za-z0-9]{{1,8}})"
)


@attrs.frozen
class ClientOrderIdParts:
    """What a client order id says about where an order came from.

    Lets reconciliation after a restart tell our orders (and which run and
    strategy placed them) from ones placed by hand or by another bot.
    """

    prefix: str
    strategy: str
    seq: int
    run: str


def new_run_id() -> str:
    """A fresh run id: 8 hex digits, 32 random bits, so ids stay unique across many runs."""
    return secrets.token_hex(4)


def check_run_token(run: str) -> str:
    """Return ``run`` if it can end a client order id (1-8 ASCII letters/digits), else raise
    ValueError: a run id is checked when the run is set up, not at its first order."""
    if not _TOKEN_RE.fullmatch(run):
        raise ValueError(f"run id must be 1-8 ASCII letters/digits, got {run!r}")
    return run


def new_client_order_id(strategy: str, seq: int, run: str, *, prefix: str = "tt") -> str:
    """Build an id that is unique, names its strategy and the exchange accepts.

    Layout: ``{prefix}-{strategy}-{seq:06d}-{run}``, e.g.
    ``tt-sma_cross-000017-k3x9``.

    * ``seq`` must be unique within a run *across all strategies* (use one
      process-wide counter): the id is unique because ``(seq, run)`` is, since
      the strategy part may be sanitised or truncated into a collision.
    * ``run`` is a short per-process nonce (1-8 ASCII letters/digits, e.g.
      ``secrets.token_hex(2)``) so that a restarted process, whose ``seq``
      starts again at 0, never reuses an id -- Binance would reject the
      duplicate, or worse, reconciliation would match the wrong order.
    * ``strategy`` is sanitised (characters Binance refuses become ``_``) and
      truncated to whatever room is left; it is the only part that gives way,
      so the id always matches :data:`CLIENT_ORDER_ID_RE`.

    Raises ValueError for a negative ``seq``, a malformed ``run``/``prefix``,
    or a ``seq`` so large that no room is left for the strategy.
    """
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValueError(f"seq must be an int >= 0, got {seq!r}")
    if not _TOKEN_RE.fullmatch(run):
        raise ValueError(f"run must be 1-8 ASCII letters/digits, got {run!r}")
    if not _TOKEN_RE.fullmatch(prefix):
        raise ValueError(f"prefix must be 1-8 ASCII letters/digits, got {prefix!r}")
    seq_text = f"{seq:0{_SEQ_WIDTH}d}"
    room = _MAX_ID_LEN - len(prefix) - len(seq_text) - len(run) - 3
    if room < 1:
        raise ValueError(f"seq {seq} leaves no room for the strategy name")
    name = _UNSAFE_CHAR_RE.sub("_", strategy)[:room] or "_"
    return f"{prefix}-{name}-{seq_text}-{run}"


def parse_client_order_id(client_order_id: str) -> ClientOrderIdParts | None:
    """Split one of our ids into its parts; None for ids we did not make."""
    match = _PARSE_RE.fullmatch(client_order_id)
    if match is None:
        return None
    return ClientOrderIdParts(
        prefix=match["prefix"],
        strategy=match["strategy"],
        seq=int(match["seq"]),
        run=match["run"],
    )


def strategy_of(client_order_id: str) -> str | None:
    """Recover the (possibly sanitised/truncated) strategy name from an id."""
    parts = parse_client_order_id(client_order_id)
    return None if parts is None else parts.strategy
