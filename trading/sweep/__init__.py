"""Parameter sweeps: one replay per combination, here, on every core, or on a Dask cluster."""

from trading.sweep.grid import GridError, combinations, parse_params
from trading.sweep.job import Row, SweepJob
from trading.sweep.sweep import SweepResult, sweep

__all__ = ["GridError", "Row", "SweepJob", "SweepResult", "combinations", "parse_params", "sweep"]
