"""Health is honest: the last bar's age against the interval, restarts, and the venue's links."""

from __future__ import annotations

import attrs
import trio
from trio.testing import MockClock

import trading
from tests.conftest import EventLog
from tests.exchanges.binance.sim_helpers import live_runner, serving
from trading.control.health import health, render_health
from trading.exchanges.links import Link, links_of
from trading.testing import SimConfig

MINUTE = 60


@attrs.define
class Quiet(trading.Strategy):
    interval = "1m"

    async def next(self, ctx: trading.Context) -> None:
        pass


@attrs.define
class Hangs(trading.Strategy):
    """Its second compute never ends: the schedule stalls while the process is up."""

    interval = "1m"
    computes: int = 0

    async def next(self, ctx: trading.Context) -> None:
        self.computes += 1
        if self.computes == 2:
            await trio.sleep_forever()


@attrs.define
class FailsOnce(trading.Strategy):
    interval = "1m"

    async def next(self, ctx: trading.Context) -> None:
        if not FailsOnce.failed_once:
            FailsOnce.failed_once = True
            raise RuntimeError("first compute breaks")

    failed_once = False


def rows(runner: trading.Runner) -> dict[str, dict[str, object]]:
    return {row["strategy"]: row for row in health(runner)["strategies"]}


async def test_a_strategy_on_schedule_is_ok_and_a_paused_one_is_healthy(
    clock: MockClock, runner: trading.Runner
) -> None:
    await runner.add(Quiet(), name="q")
    await runner.add(Quiet(), name="p")
    await trio.sleep(3 * MINUTE + 1)
    await runner.send("pause p")
    report = health(runner)
    by_name = rows(runner)
    assert by_name["q"]["verdict"] == "ok" and by_name["p"]["verdict"] == "paused"
    assert by_name["q"]["bar_age"] is not None and by_name["q"]["bar_age"] <= MINUTE
    assert report["alive"] is True and report["links"] == []
    assert "links: simulated venue" in render_health(report)


async def test_a_stalled_compute_turns_late_after_two_intervals_though_the_process_is_up(
    clock: MockClock, runner: trading.Runner
) -> None:
    await runner.add(Hangs(), name="h")
    await trio.sleep(2 * MINUTE + 1)  # first compute done, the second hangs since
    assert rows(runner)["h"]["verdict"] == "ok"
    await trio.sleep(2 * MINUTE)
    row = rows(runner)["h"]
    assert row["state"] == "computing" and row["verdict"] == "late"
    assert row["bar_age"] > 2 * MINUTE
    assert health(runner)["alive"] is False
    await runner.send("stop h")


async def test_restarts_are_counted(clock: MockClock, events: EventLog) -> None:
    FailsOnce.failed_once = False
    policy = trading.RestartPolicy(max_restarts=3, initial_delay=1, max_delay=60)
    vclock = trading.VirtualClock(start=1_700_000_000.0)
    async with trading.Runner(clock=vclock, publish=events, restart_policy=policy) as runner:
        await runner.add(FailsOnce(), name="f")
        await trio.sleep(MINUTE + 5)  # failed at the first close, restarted a second later
        row = rows(runner)["f"]
        assert row["restarts"] == 1 and row["failures"] == 1
        assert row["verdict"] == "ok" and "first compute breaks" in str(row["last_error"])
        await runner.send("stop f")


async def test_link_records_ups_downs_and_silence(clock: MockClock) -> None:
    link = Link("market stream")
    assert link.snapshot()["connected"] is False and link.snapshot()["for"] is None
    link.up()
    await trio.sleep(5)
    link.heard()
    await trio.sleep(2)
    shot = link.snapshot()
    assert shot["connected"] and shot["for"] == 7 and shot["silent"] == 2 and shot["connects"] == 1
    link.down("ConnectionResetError")
    await trio.sleep(3)
    shot = link.snapshot()
    assert not shot["connected"] and shot["for"] == 3
    assert shot["last_error"] == "ConnectionResetError"
    link.answered()  # a REST answer brings a request-response link back up
    assert link.snapshot()["connected"] and link.connects == 2


def test_links_of_takes_each_link_once() -> None:
    shared = Link("rest api")

    @attrs.define
    class Part:
        own: Link

        def links(self) -> list[Link]:
            return [self.own, shared]

    a, b = Part(Link("market stream")), Part(Link("user data stream"))
    assert [link.name for link in links_of(a, b, object())] == [
        "market stream",
        "rest api",
        "user data stream",
    ]


async def test_on_exchange_sim_the_links_are_up_and_a_lost_stream_shows() -> None:
    config = SimConfig(stepped=True, ping_interval=None)
    async with serving(config) as sim, live_runner(sim) as (venue, runner):
        await runner.add(Quiet(), name="q")
        with trio.fail_after(10):
            while not all(link.connected for link in links_of(venue.market, venue.exchange)):  # noqa: ASYNC110
                await trio.sleep(0.01)
        report = health(runner)
        names = {link["link"] for link in report["links"]}
        assert names == {"market stream", "user data stream", "rest api"}
        assert report["alive"] is True, render_health(report)
        stream = venue.market.stream.link  # type: ignore[attr-defined]
        before = stream.connects
        await sim.drop_stream_connections()
        with trio.fail_after(10):
            while stream.connects == before:  # noqa: ASYNC110 (down, then back up: quick backoff)
                await trio.sleep(0.005)
        assert stream.last_error is not None
        links = links_of(venue.market, venue.exchange)
        with trio.fail_after(10):  # every stream was dropped: wait until all are back
            while not all(link.connected for link in links):  # noqa: ASYNC110
                await trio.sleep(0.005)
        assert health(runner)["alive"] is True
        await runner.send("stop q")
