"""Bar files for the loader's tests, written the way their producers write them."""

from __future__ import annotations

import zipfile
from pathlib import Path

from trading.data.sample import sample_rows

# 2024-01-01 00:00:00 UTC: in the millisecond era of Binance's spot files.
T2024 = 1_704_067_200


def binance_rows(count: int, *, unit: str = "us", start: int = T2024) -> list[list[str]]:
    """``count`` one-minute rows in Binance's layout, times in ``unit`` (``ms`` or ``us``)."""
    rows = [list(row) for row in sample_rows(count, seed=11, start=start)]
    if unit == "ms":
        for row in rows:
            row[0] = str(int(row[0]) // 1000)
            row[6] = str((int(row[6]) + 1) // 1000 - 1)
    return rows


def csv_text(rows: list[list[str]], header: list[str] | None = None) -> str:
    lines = [",".join(header)] if header else []
    lines.extend(",".join(row) for row in rows)
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def plain_rows(binance: list[list[str]], *, unit: str = "s") -> list[list[str]]:
    """time,open,high,low,close,volume rows from Binance rows (µs), time in ``unit`` or ISO."""
    out = []
    for row in binance:
        micros = int(row[0])
        if unit == "iso":
            import datetime as dt

            when = dt.datetime.fromtimestamp(micros // 1_000_000, dt.UTC)
            time = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            time = str(micros // {"s": 1_000_000, "ms": 1_000, "us": 1}[unit])
        out.append([time, *row[1:6]])
    return out


PLAIN_HEADER = ["time", "open", "high", "low", "close", "volume"]


def zipped(path: Path, member: str, text: str) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, text)
    return path
