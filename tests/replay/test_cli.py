"""``trio-trade backtest``: a file in Binance's kline layout through a strategy, a summary out."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tests.replay.helpers import walk
from trading.replay import cli

pytest.importorskip("trading.data", reason="trading.data (load_bars) lands by merge")

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"


def binance_csv(path: Path, n: int = 400) -> Path:
    """Binance's public kline CSV: no header, millisecond times, twelve columns."""
    rows = []
    for bar in walk(n):
        open_ms = int(bar.open_time * 1000)
        rows.append(
            f"{open_ms},{bar.open:.2f},{bar.high:.2f},{bar.low:.2f},{bar.close:.2f},"
            f"{bar.volume},{open_ms + 59_999},0,1,0,0,0"
        )
    path.write_text("\n".join(rows) + "\n")
    return path


def backtest(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="trio-trade")
    cli.add_parser(parser.add_subparsers(dest="verb"))
    return cli.run(parser.parse_args(["backtest", *argv]))


def test_a_backtest_prints_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = binance_csv(tmp_path / "BTCUSDT-1m-2025-01-01.csv")
    status = backtest(
        "sma_cross",
        "--data",
        str(data),
        "--strategies-dir",
        str(STRATEGIES),
        "--set",
        "fast=4",
        "--at",
        "200 pause sma_cross",
        "--at",
        "2025-01-01T05:00 resume sma_cross",
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "sma_cross on BTCUSDT 1m" in out
    assert "300 replayed (100 history only)" in out
    assert "'pause sma_cross': ok: paused" in out
    assert "'resume sma_cross': ok" in out
    # The statistics follow, each once (the summary's own lines are not repeated).
    names = [line.split("  ")[0] for line in out.splitlines()]
    for name in ("total return", "max drawdown", "sharpe", "sortino", "win rate", "exposure"):
        assert names.count(name) == 1, out
    assert names.count("bars") == 1 and names.count("equity") == 1
    assert err == ""  # no progress bar off a terminal


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--at", "soon pause sma_cross"], "'soon' is not a bar index"),
        (["--at", "120"], "expected 'WHEN COMMAND'"),
        (["--set", "fast"], "expected KEY=VALUE"),
        (["--set", "fast=many"], "fast"),
        (["--cash", "lots"], "--cash 'lots' is not a number"),
        (["--warmup", "5000"], "warmup must be in"),
    ],
)
def test_usage_errors_exit_2_and_say_what(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    data = binance_csv(tmp_path / "BTCUSDT-1m-2025-01-01.csv")
    status = backtest("sma_cross", "--data", str(data), "--strategies-dir", str(STRATEGIES), *argv)
    assert status == 2
    assert message in capsys.readouterr().err


def test_a_bad_row_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = binance_csv(tmp_path / "BTCUSDT-1m-2025-01-01.csv", n=50)
    lines = data.read_text().splitlines()
    lines[6] = lines[6].replace(",", ",x", 1)
    data.write_text("\n".join(lines) + "\n")
    status = backtest("sma_cross", "--data", str(data), "--strategies-dir", str(STRATEGIES))
    assert status == 2
    assert "line 7" in capsys.readouterr().err


def test_unknown_strategy_and_missing_file_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert backtest("nope", "--data", "x.csv", "--strategies-dir", str(STRATEGIES)) == 2
    assert "no strategy 'nope'" in capsys.readouterr().err
    missing = str(tmp_path / "BTCUSDT-1m-2025-01-01.csv")
    assert backtest("sma_cross", "--data", missing, "--strategies-dir", str(STRATEGIES)) == 2
    assert "BTCUSDT-1m-2025-01-01.csv" in capsys.readouterr().err


def test_a_failing_strategy_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "broken.py").write_text(
        "import trading\n\n\n"
        "class Broken(trading.Strategy):\n"
        "    interval = '1m'\n\n"
        "    async def next(self, ctx):\n"
        "        raise RuntimeError('no luck')\n"
    )
    data = binance_csv(tmp_path / "BTCUSDT-1m-2025-01-01.csv", n=150)
    assert backtest("broken", "--data", str(data), "--strategies-dir", str(folder)) == 1
    assert "FAILED        next: RuntimeError: no luck" in capsys.readouterr().out
