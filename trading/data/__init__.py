"""Historical bars from files: Binance's kline CSVs (and their zips), plain OHLCV CSVs, Parquet.

``load_bars(path)`` returns a :class:`BarSeries` that is sorted, on its interval's grid and
gap-free, or raises a :class:`BarFileError` naming the file, the line and what was wrong.
``repair=True`` mends identical duplicates and gaps and lists each repair. The bundled sample
(``sample_path()``) is six days of BTCUSDT-like minutes made by :mod:`trading.data.sample`.
"""

from trading.data.load import load_bars
from trading.data.sample import sample_path, write_sample
from trading.data.series import BarFileError, BarSeries, exact

__all__ = ["BarFileError", "BarSeries", "exact", "load_bars", "sample_path", "write_sample"]
