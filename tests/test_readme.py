"""The README's examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import trio
from trio.testing import MockClock

import trading
from tests.conftest import sim

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def block(containing: str) -> str:
    (found,) = [b for b in BLOCKS if containing in b]
    return found


async def test_strategy_example_runs_and_its_parameter_can_be_set(clock: MockClock) -> None:
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(block("class Breakout"), namespace)
    breakout = namespace["Breakout"]
    assert isinstance(breakout, type)
    vclock = trading.VirtualClock(start=1_735_689_600)
    async with trading.Runner(clock=vclock, **sim(vclock)) as runner:
        sr = await runner.add(breakout())
        await trio.sleep(48 * 3600 + 1)
        assert sr.computes == 49
        (result,) = await runner.send("set breakout lookback=48")
        assert result.ok and result.message == "lookback: 24 -> 48"


async def test_testing_example_runs(clock: MockClock) -> None:
    namespace: dict[str, object] = {}
    source = block("async def test_my_strategy").replace("autojump_clock", "_clock")
    source = "import trio, trading\nfrom strategies.sma_cross import SmaCross\n" + source
    exec(source, namespace)
    await namespace["test_my_strategy"](clock)  # type: ignore[operator]
