"""The heatmap of a two-parameter sweep: one cell per combination, the metric as colour and
text. A failed or undefined cell is left blank (NaN) and says so, never shown as zero."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["heatmap"]


def heatmap(records: Sequence[dict[str, Any]], x: str, y: str, metric: str) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'trio-trade[notebook]'") from None
    for name in (x, y):
        if not records or name not in records[0]:
            raise ValueError(f"{name!r} is not a parameter of this sweep")
    xs = _ordered(r[x] for r in records)
    ys = _ordered(r[y] for r in records)
    grid = [[math.nan] * len(xs) for _ in ys]
    for record in records:
        value = record.get(metric)
        if value is not None:
            grid[ys.index(record[y])][xs.index(record[x])] = float(value)
    figure = Figure(figsize=(1.2 + 0.9 * len(xs), 1.0 + 0.7 * len(ys)))
    axes = figure.add_subplot()
    image = axes.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    axes.set_xticks(range(len(xs)), labels=xs)
    axes.set_yticks(range(len(ys)), labels=ys)
    axes.set_xlabel(x)
    axes.set_ylabel(y)
    axes.set_title(metric)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            text = "n/a" if math.isnan(value) else f"{value:.3g}"
            axes.text(j, i, text, ha="center", va="center", color="white", fontsize=8)
    figure.colorbar(image, ax=axes)
    return figure


def _ordered(values: Any) -> list[str]:
    """Distinct values in numeric order when they are numbers, else as first seen."""
    distinct = list(dict.fromkeys(values))
    try:
        return sorted(distinct, key=float)
    except (TypeError, ValueError):
        return distinct
