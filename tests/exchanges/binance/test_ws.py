"""The reconnecting seam: backoff arithmetic, the reconnect loop's timing, what counts as
transient, rate-limited logs, and who answers the server's pings.

The loop's timing is tested through the Connector seam with a scripted in-memory connector on
trio's autojumping MockClock (no sockets there, so the clock may jump); everything that touches
a socket runs in real time under ``trio.fail_after``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidStatus, InvalidURI
from websockets.http11 import Response
from websockets.trio.server import ServerConnection

from tests.exchanges.binance.ws_servers import eventually, running
from trading.exchanges.binance import ws as ws_module
from trading.exchanges.binance.ws import (
    BINANCE_MAX_AGE,
    Connection,
    RateLimitedLog,
    ReconnectBackoff,
    StreamError,
    is_transient,
    keep_connected,
    websockets_connector,
)

# --- backoff arithmetic ------------------------------------------------------------------------


def test_default_backoff_doubles_from_half_a_second_to_thirty_and_ages_out_before_24h() -> None:
    backoff = ReconnectBackoff()
    assert [backoff.delay(n, 0.0) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(0, 0.999) == pytest.approx(0.5 * (1 - 0.5 * 0.999))
    assert BINANCE_MAX_AGE == backoff.max_age == 23 * 3600 + 50 * 60


@given(
    st.floats(min_value=1e-3, max_value=10),
    st.floats(min_value=1e-3, max_value=100),
    st.floats(min_value=1, max_value=10),
    st.floats(min_value=0, max_value=1),
    st.integers(min_value=0, max_value=10_000),
    st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_delay_is_bounded_jittered_and_never_overflows(
    initial: float, cap: float, factor: float, jitter: float, failures: int, rand: float
) -> None:
    backoff = ReconnectBackoff(initial_delay=initial, max_delay=cap, factor=factor, jitter=jitter)
    delay = backoff.delay(failures, rand)
    base = min(initial * factor ** min(failures, 64), cap)
    assert math.isfinite(delay)
    assert base * (1 - jitter) - 1e-12 <= delay <= base + 1e-12
    assert backoff.delay(failures, 0.0) <= backoff.delay(failures + 1, 0.0) or (
        backoff.delay(failures, 0.0) == cap
    )


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        ReconnectBackoff(initial_delay=0)
    with pytest.raises(ValueError):
        ReconnectBackoff(jitter=1.5)
    with pytest.raises(ValueError):
        ReconnectBackoff(factor=0.5)


# --- the loop, through a scripted connector, on the mock clock ----------------------------------


class Done(StreamError):
    """The script ran out: ends keep_connected (a StreamError is not transient)."""


class FakeConnection:
    async def recv(self) -> str:
        await trio.sleep_forever()
        raise AssertionError

    async def send(self, message: str) -> None:
        pass

    async def aclose(self) -> None:
        pass


class Script:
    """Each connect takes the next outcome: an exception (the connect fails) or
    ``(lifetime, end)``: the session lives ``lifetime`` seconds, then raises ``end`` (or returns,
    a planned reconnect, when ``end`` is None)."""

    def __init__(self, outcomes: Iterator[BaseException | tuple[float, BaseException | None]]):
        self.outcomes = outcomes
        self.connects: list[float] = []
        self.closed = 0
        self.current: tuple[float, BaseException | None] = (0.0, None)

    def connector(self, url: str) -> AbstractAsyncContextManager[Connection]:
        return self._open(url)

    @asynccontextmanager
    async def _open(self, url: str) -> AsyncIterator[Connection]:
        self.connects.append(trio.current_time())
        outcome = next(self.outcomes, Done("script over"))
        if isinstance(outcome, BaseException):
            raise outcome
        self.current = outcome
        try:
            yield FakeConnection()
        finally:
            self.closed += 1

    async def session(self, conn: Connection) -> None:
        lifetime, end = self.current
        await trio.sleep(lifetime)
        if end is not None:
            raise end

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.connects, self.connects[1:], strict=False)]

    async def run(self, backoff: ReconnectBackoff, rand: float = 0.0) -> None:
        with pytest.raises(Done):
            await keep_connected(
                "test",
                lambda: "ws://fake",
                self.session,
                connect=self.connector,
                backoff=backoff,
                rand=lambda: rand,
            )


async def test_failures_back_off_exponentially(clock: trio.testing.MockClock) -> None:
    script = Script(iter([OSError("refused")] * 8))
    await script.run(ReconnectBackoff())
    assert script.gaps() == [0.5, 1, 2, 4, 8, 16, 30, 30]


async def test_jitter_shortens_the_wait(clock: trio.testing.MockClock) -> None:
    script = Script(iter([OSError("refused")] * 3))
    await script.run(ReconnectBackoff(jitter=0.5), rand=0.5)
    assert script.gaps() == pytest.approx([0.375, 0.75, 1.5])


async def test_a_connection_that_lived_long_enough_resets_the_backoff(
    clock: trio.testing.MockClock,
) -> None:
    lost = ConnectionResetError("reset by peer")
    script = Script(iter([OSError(), OSError(), (61.0, lost), OSError(), (5.0, lost)]))
    await script.run(ReconnectBackoff(stable_after=60))
    assert script.gaps() == pytest.approx([0.5, 1.0, 61.5, 1.0, 5 + 2.0])
    assert script.closed == 2


async def test_planned_reconnects_are_immediate_only_after_a_stable_connection(
    clock: trio.testing.MockClock,
) -> None:
    script = Script(iter([(61.0, None), (61.0, None), (1.0, None), (1.0, None)]))
    await script.run(ReconnectBackoff(stable_after=60))
    assert script.gaps() == pytest.approx([61.0, 61.0, 1.5, 2.0])


async def test_a_connection_is_replaced_at_max_age(clock: trio.testing.MockClock) -> None:
    script = Script(iter([(math.inf, None), (math.inf, None)]))
    await script.run(ReconnectBackoff(stable_after=60, max_age=BINANCE_MAX_AGE))
    assert script.gaps() == [BINANCE_MAX_AGE, BINANCE_MAX_AGE]
    assert script.closed == 2


async def test_never_a_busy_loop(clock: trio.testing.MockClock) -> None:
    # A server that ends every connection at once, and a failing connect, for a long while; a
    # busy loop would run out of script (Done) at time 0 instead of hanging the test.
    for outcome in ((0.0, None), OSError("refused")):
        script = Script(iter([outcome] * 10_000))
        with trio.move_on_after(1000), contextlib.suppress(Done):
            await keep_connected(
                "test",
                lambda: "ws://fake",
                script.session,
                connect=script.connector,
                backoff=ReconnectBackoff(),
                rand=lambda: 0.0,
            )
        assert len(script.connects) <= 40  # 1000 s at a 30 s cap, after the ramp


@pytest.mark.parametrize(
    "fatal",
    [
        InvalidStatus(Response(404, "Not Found", Headers())),
        InvalidStatus(Response(401, "Unauthorized", Headers())),
        InvalidURI("http://x", "scheme isn't ws or wss"),
        StreamError("refused"),
        ValueError("a bug"),
    ],
)
async def test_errors_that_retrying_cannot_fix_end_the_loop(
    clock: trio.testing.MockClock, fatal: Exception
) -> None:
    script = Script(iter([OSError(), fatal]))
    with pytest.raises(type(fatal)):
        await keep_connected(
            "test",
            lambda: "ws://fake",
            script.session,
            connect=script.connector,
            backoff=ReconnectBackoff(),
        )
    assert len(script.connects) == 2


def test_transient_errors() -> None:
    def status(code: int) -> InvalidStatus:
        return InvalidStatus(Response(code, "x", Headers()))

    assert is_transient(OSError())
    assert is_transient(ConnectionRefusedError())
    assert is_transient(TimeoutError())
    assert is_transient(ConnectionClosedError(None, None))
    assert is_transient(trio.BrokenResourceError())
    assert is_transient(status(503)) and is_transient(status(429))
    assert not is_transient(status(404)) and not is_transient(status(403))
    assert not is_transient(StreamError()) and not is_transient(KeyError())


async def test_cancelling_closes_the_connection(clock: trio.testing.MockClock) -> None:
    script = Script(iter([(math.inf, None)]))
    with trio.move_on_after(5):
        await keep_connected(
            "test",
            lambda: "ws://fake",
            script.session,
            connect=script.connector,
            backoff=ReconnectBackoff(),
        )
    assert script.closed == 1


# --- rate-limited logs ---------------------------------------------------------------------------


def test_rate_limited_log_holds_back_repeats_and_counts_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = RateLimitedLog(logging.getLogger("test.ratelimit"), 10.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="test.ratelimit")
    for _ in range(100):
        log(logging.WARNING, "bad frame %s", "x")
    now[0] = 10.0
    log(logging.WARNING, "bad frame %s", "y")
    assert [r.getMessage() for r in caplog.records] == [
        "bad frame x",
        "bad frame y (99 similar messages suppressed)",
    ]


# --- pings, over real sockets --------------------------------------------------------------------


async def test_server_pings_are_answered_while_our_task_is_busy_elsewhere() -> None:
    """websockets' reader task answers pings while no one calls recv() (Binance pings every
    20 s and gives up after a minute without a pong)."""
    pongs: list[float] = []

    async def pinger(ws: ServerConnection) -> None:
        for _ in range(5):
            with trio.fail_after(0.5):
                await (await ws.ping()).wait()
            pongs.append(trio.current_time())
            await trio.sleep(0.05)
        await ws.send("done")

    with trio.fail_after(10):
        async with running(handler=_then_wait(pinger)) as server:
            connect = websockets_connector(ping_interval=None)
            async with connect(server.url) as conn:
                await trio.sleep(0.6)  # busy: not reading
                assert len(pongs) == 5
                assert await conn.recv() == "done"


async def test_unread_messages_past_the_queue_limit_stop_pong_answers() -> None:
    """The limit of the rule above: past ``max_queue`` (16) unread messages websockets stops
    reading the socket, pings included. So our streams read continuously."""

    answered: list[bool] = []

    async def flood_then_ping(ws: ServerConnection) -> None:
        for i in range(200):
            await ws.send(f"message {i}")
        with trio.move_on_after(0.3):
            await (await ws.ping()).wait()
            answered.append(True)
        answered.append(False)

    with trio.fail_after(10):
        async with running(handler=_then_wait(flood_then_ping)) as server:
            connect = websockets_connector(ping_interval=None)
            with trio.CancelScope() as scope:
                async with connect(server.url):
                    await eventually(lambda: bool(answered))
                    assert answered == [False]
                    scope.cancel()  # a close handshake would wait behind the unread messages


def _then_wait(
    behaviour: Callable[[ServerConnection], Awaitable[None]],
) -> Callable[[ServerConnection], Awaitable[None]]:
    async def handler(ws: ServerConnection) -> None:
        await behaviour(ws)
        await trio.sleep_forever()

    return handler


async def test_a_refused_port_is_retried_with_backoff_in_real_time() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()  # nothing listens there now: connections are refused
    attempts: list[float] = []
    real = websockets_connector(open_timeout=1)

    def counting(url: str) -> AbstractAsyncContextManager[Connection]:
        attempts.append(trio.current_time())
        return real(url)

    async def session(conn: Connection) -> None:
        raise AssertionError("never connects")

    with trio.fail_after(10), trio.move_on_after(0.5):
        await keep_connected(
            "test",
            lambda: f"ws://127.0.0.1:{port}",
            session,
            connect=counting,
            backoff=ReconnectBackoff(initial_delay=0.02, factor=2, jitter=0),
        )
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert 3 <= len(attempts) <= 6, gaps  # 0.02 + 0.04 + 0.08 + 0.16 + 0.32 > 0.5
    assert all(gap >= 0.02 * 2**i for i, gap in enumerate(gaps)), gaps


async def test_a_handshake_refused_with_404_ends_the_loop() -> None:
    def not_found(connection: ServerConnection, request: Any) -> Response:
        return connection.respond(404, "no such stream\n")

    async def session(conn: Connection) -> None:
        raise AssertionError("never connects")

    with trio.fail_after(10):
        async with running(process_request=not_found) as server:
            with pytest.raises(InvalidStatus):
                await keep_connected(
                    "test",
                    lambda: server.url + "/nope",
                    session,
                    connect=websockets_connector(),
                    backoff=ReconnectBackoff(),
                )


async def test_a_close_with_many_unread_messages_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """websockets' Trio client does not read the close frame while 16 or more messages sit
    unread, so a polite close after a planned end of session (a serverShutdown, the 24-hour
    replacement) could wait forever; keep_connected drops it after CLOSE_GRACE and reconnects."""
    monkeypatch.setattr(ws_module, "CLOSE_GRACE", 0.3)
    sessions: list[float] = []

    async def flood(ws: ServerConnection) -> None:
        for i in range(200):
            await ws.send(f'{{"n": {i}}}')

    async def session(conn: Connection) -> None:
        sessions.append(trio.current_time())
        await trio.sleep(0.1)  # the flood arrives unread; then the session ends (planned)

    with trio.fail_after(10):
        async with running(handler=_then_wait(flood)) as server:
            with trio.move_on_after(3):
                await keep_connected(
                    "flood",
                    lambda: server.url,
                    session,
                    connect=websockets_connector(ping_interval=None),
                    backoff=ReconnectBackoff(initial_delay=0.01, max_delay=0.02),
                )
    assert len(sessions) >= 3  # it went on reconnecting instead of hanging in the first close
