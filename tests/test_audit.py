"""``trio-trade events`` and ``trio-trade commands`` read back what a run recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio.testing

import trading
from trading.cli import main
from trading.observers.recorder import Recorder


class Broken(trading.Strategy):
    """Fails at its first compute."""

    interval = "1m"
    compute_on_start = True

    async def next(self, ctx: trading.Context) -> None:
        raise RuntimeError("broken on purpose")


class Quiet(trading.Strategy):
    interval = "1m"

    async def next(self, ctx: trading.Context) -> None:
        pass


async def record_a_run(db: Path, vclock: trading.VirtualClock) -> None:
    async with trading.Runner(
        clock=vclock,
        observers=[Recorder(db, run_id="audit")],
        restart_policy=trading.RestartPolicy(max_restarts=0),
        run_id="audit",
    ) as runner:
        await runner.add(Quiet(), name="quiet")
        await runner.add(Broken(), name="broken")
        await runner.send("pause quiet", source="ctl")
        await runner.send("frobnicate quiet", source="telegram")
        await trio.sleep(1)
        await runner.flush()


async def test_events_show_a_failure_with_its_traceback_and_commands_their_source(
    clock: trio.testing.MockClock,
    vclock: trading.VirtualClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "audit.db"
    await record_a_run(db, vclock)

    assert main(["events", "--db", str(db), "--kind", "StrategyFailed"]) == 0
    out = capsys.readouterr().out
    assert "broken  StrategyFailed: phase=" in out
    assert "RuntimeError: broken on purpose" in out
    assert "    Traceback (most recent call last):" in out  # in full, indented under it
    assert "quiet" not in out  # --kind filters

    assert main(["events", "--db", str(db), "--strategy", "quiet"]) == 0
    out = capsys.readouterr().out
    assert out and all(" quiet " in line for line in out.splitlines() if line[:4].isdigit())

    assert main(["commands", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "pause quiet" in out and "ctl" in out and "ok" in out
    assert "frobnicate quiet" in out and "telegram" in out and "error" in out


def test_a_missing_or_foreign_database_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["events", "--db", str(tmp_path / "nothing.db")]) == 2
    foreign = tmp_path / "foreign.db"
    foreign.write_text("not a database")
    assert main(["commands", "--db", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert err.count("trio-trade:") == 2 and "Traceback" not in err


def test_since_accepts_a_duration_or_a_date_and_refuses_nonsense(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as bad:
        main(["events", "--since", "yesterdayish"])
    assert bad.value.code == 2
    assert "expected a duration ago" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("trio-trade ")
