"""A parameter grid: ``--param fast=5,8,12 --param slow=20,30,50`` → every combination.

Values stay operator text (``"8"``, ``"0.01"``) until a replay applies them to a fresh strategy
instance with :func:`~trading.core.params.apply_params`, exactly as ``set NAME k=v`` does: the
grid is plain data that pickles to any worker. A name the strategy does not have is an error
before anything runs (a typo would otherwise waste a whole sweep); a value its type or its own
checks refuse (``fast=30`` with ``slow=20``) only fails that combination, which the sweep reports
with its error while the others complete.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["GridError", "combinations", "parse_param", "parse_params"]

MAX_COMBINATIONS = 100_000


class GridError(ValueError):
    """A ``--param`` that cannot be part of a grid; the message names it."""


def parse_param(text: str) -> tuple[str, tuple[str, ...]]:
    """``"fast=5,8,12"`` → ``("fast", ("5", "8", "12"))``; duplicates dropped, order kept."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise GridError(f"--param {text!r}: expected NAME=V1,V2,... (e.g. fast=5,8,12)")
    if not name.isidentifier():
        raise GridError(f"--param {text!r}: {name!r} is not a parameter name")
    items = [v.strip() for v in values.split(",")]
    if not items or any(not v for v in items):
        raise GridError(f"--param {text!r}: empty value in the list")
    return name, tuple(dict.fromkeys(items))


def parse_params(texts: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Several ``--param``; the same name twice is an error (which list was meant?)."""
    grid: dict[str, tuple[str, ...]] = {}
    for text in texts:
        name, values = parse_param(text)
        if name in grid:
            raise GridError(f"--param {name} given twice")
        grid[name] = values
    return grid


def combinations(
    grid: Mapping[str, Sequence[str]], known: Iterable[str] | None = None
) -> list[dict[str, str]]:
    """Every combination, the first parameter varying slowest; one empty combination for an
    empty grid. ``known``: the strategy's parameter names, to refuse typos up front."""
    if known is not None:
        names = set(known)
        unknown = [name for name in grid if name not in names]
        if unknown:
            choices = ", ".join(sorted(names)) or "none"
            raise GridError(
                f"unknown parameter(s) {', '.join(unknown)}; the strategy has {choices}"
            )
    size = 1
    for values in grid.values():
        size *= len(values)
    if size > MAX_COMBINATIONS:
        raise GridError(f"{size} combinations is more than {MAX_COMBINATIONS}; narrow the grid")
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]
