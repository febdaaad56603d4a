"""A Runner as a trio guest on the kernel's asyncio loop: ``handle = await start(...)``.

The rules this module keeps (DESIGN.md rule 7):

* One guest run per host loop. A second :func:`start` on the same loop returns the running
  handle when it names the same strategies (the new instances are not started) and raises
  :class:`AlreadyRunning` otherwise; once the run is over, a new one may start.
* The host loop's thread never uses ``trio.from_thread`` (it runs no trio task, so waiting
  for one deadlocks). Cells reach the run through :meth:`Session.post`
  (``TrioToken.run_sync_soon``, which never blocks), and the reply comes back by
  ``loop.call_soon_threadsafe`` completing an asyncio Future the cell awaits.
* Plain calls (``status()``, ``orders()``...) read the run's plain data directly, and only on
  the host loop's thread: there, trio code runs only inside guest ticks, which are callbacks
  of the same loop, so a cell's code never runs while a trio task is half-way through a step.
  From any other thread they raise :class:`RunnerThreadError`.
* :meth:`NotebookRunner.stop` ends the run the normal way (``stop all``, then the Runner's
  exit) and waits for the trio run to end; it never stops or closes the host loop.
* KeyboardInterrupt belongs to the kernel, never to the runner: trio's own SIGINT handler is
  not installed, and a SIGINT that arrives while a guest tick runs is held until the tick is
  over and then handed to the handler that was in place (a Jupyter Interrupt interrupts the
  cell, as without a runner). What is left: a SIGINT at the very first instruction of an
  asyncio callback loses that callback — asyncio's own limit, for every callback of the loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import types
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import outcome
import trio

from trading.core.commands import CommandResult
from trading.notebook.session import Session, StrategyLike, not_running
from trading.notebook.tables import RunView, Snapshot, snapshot
from trading.runtime.runner import Runner, RunnerNotRunning, RunnerThreadError
from trading.runtime.strategy import Strategy, inspect_strategy

__all__ = ["AlreadyRunning", "NotebookRunner", "start"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_GUESTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, NotebookRunner] = (
    weakref.WeakKeyDictionary()
)


class AlreadyRunning(RuntimeError):
    """A different guest run already lives on this loop; stop it first."""


async def start(*strategies: StrategyLike, **options: Any) -> NotebookRunner:
    """Start ``strategies`` in a Runner that runs as a trio guest on the running asyncio loop.

    A strategy is an instance, a class, a name from ``strategies_dir`` (``"sma_cross"``), or
    a ``(name, instance)`` pair. Keywords: ``clock``, ``market``, ``exchange`` (default: the
    simulated market and paper broker, one bar of the shortest interval per second of real
    time, as ``trio-trade run``), ``seed``, ``observers``, ``strategies_dir``, ``history``
    (orders and fills kept), and any :class:`~trading.Runner` keyword.

    Returns once every strategy's ``on_start`` succeeded; if one failed, the run winds down
    and its error is raised here. Cancelling the await (interrupting the cell) does not stop
    the run: a later ``start`` with the same strategies returns its handle.
    """
    loop = asyncio.get_running_loop()
    existing = _GUESTS.get(loop)
    if existing is not None and not existing.finished:
        names = tuple(_name_of(s) for s in strategies)
        if names and names != existing.names:
            raise AlreadyRunning(
                f"a Runner already runs on this loop with {', '.join(existing.names)}: "
                "`await handle.stop()` first, or `await handle.add(strategy)` to add to it"
            )
        await asyncio.shield(existing._ready)
        return existing
    session = Session(strategies, **options)
    handle = NotebookRunner(session, loop)
    _GUESTS[loop] = handle
    handle._begin()
    try:
        await asyncio.shield(handle._ready)
    except BaseException:
        if handle._ready.done() and handle._ready.exception() is not None:
            await asyncio.shield(handle._done)  # the failed start winds down first
        raise
    return handle


class NotebookRunner(RunView):
    """The handle of a guest run: awaitable commands, plain-call tables, ``stop()``."""

    def __init__(self, session: Session, loop: asyncio.AbstractEventLoop) -> None:
        self.names = session.names
        self._session = session
        self._loop = loop
        self._thread = threading.get_ident()
        self._ready: asyncio.Future[None] = loop.create_future()
        self._done: asyncio.Future[outcome.Outcome[list[CommandResult]]] = loop.create_future()

    # -- lifetime -------------------------------------------------------------------------------

    def _begin(self) -> None:
        with _trio_leaves_sigint_alone():
            trio.lowlevel.start_guest_run(
                self._session.run,
                self._on_ready,
                run_sync_soon_threadsafe=self._soon_threadsafe,
                run_sync_soon_not_threadsafe=self._soon,
                done_callback=self._on_done,
                # The host's wakeup fd (if any) stays the host's; the run opens no signal
                # receivers, so it needs none of its own.
                host_uses_signal_set_wakeup_fd=True,
            )

    def _soon_threadsafe(self, fn: Callable[[], object]) -> None:
        self._loop.call_soon_threadsafe(_held_sigint, fn)

    def _soon(self, fn: Callable[[], object]) -> None:
        self._loop.call_soon(_held_sigint, fn)

    def _on_ready(self, error: BaseException | None) -> None:
        self._loop.call_soon_threadsafe(_settle_ready, self._ready, error)

    def _on_done(self, result: outcome.Outcome[list[CommandResult]]) -> None:
        self._loop.call_soon_threadsafe(_settle_done, self._ready, self._done, result)

    @property
    def finished(self) -> bool:
        """True once the trio run has ended."""
        return self._done.done()

    @property
    def running(self) -> bool:
        """True from a successful start until ``stop`` is asked for or the run ends."""
        return self._ready.done() and self._ready.exception() is None and not self.finished

    async def stop(self) -> list[CommandResult]:
        """Stop every strategy (on_stop, open orders cancelled), leave the Runner, and wait for
        the trio run to end. Returns the replies of that ``stop``; idempotent (later calls get
        the same replies). Raises what ended the run, if it crashed.

        Cancelling the await (interrupting the cell) does not undo the stop: it goes on, and
        a later ``stop()`` waits for it again."""
        self._session.post_stop()
        return _value(await asyncio.shield(self._done))

    # -- commands -------------------------------------------------------------------------------

    async def command(self, text: str) -> list[CommandResult]:
        """Send an operator command (``"pause sma_cross"``, ``"set sma_cross fast=3"``,
        ``"status all"``) and return the replies, one per strategy reached. Never raises for
        bad input, nor once the run is over: that is an error reply. Cancelling the await
        does not recall the command."""
        try:
            return await self.call(lambda runner: runner.send(text, source="notebook"))
        except RunnerNotRunning as exc:
            return [not_running(text, exc)]

    async def add(self, strategy: Strategy, *, name: str | None = None) -> str:
        """Start one more strategy in this run; returns its name once its on_start succeeded."""
        name = name or inspect_strategy(type(strategy)).name

        async def add(runner: Runner) -> str:
            await runner.add(strategy, name=name)
            return name

        added = await self.call(add)
        self.names = (*self.names, added)
        return added

    async def call(self, job: Callable[[Runner], Awaitable[T]]) -> T:
        """Run ``await job(runner)`` in the trio run and return its value (or raise its error).

        RunnerNotRunning once the run is stopping or over; RunnerBusy when too many calls
        wait. Cancelling the await leaves the job running; its result is dropped."""
        future: asyncio.Future[T] = self._loop.create_future()

        def settle(result: outcome.Outcome[Any]) -> None:
            try:
                self._loop.call_soon_threadsafe(_settle, future, result)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                log.debug("notebook reply dropped: the host loop is closed")

        self._session.post(job, settle)
        return await future

    # -- plain calls ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The run's state now (see the module docstring for why this is safe here)."""
        if threading.get_ident() != self._thread:
            raise RunnerThreadError(
                "read a guest run's tables from its host loop's thread (the notebook's), "
                "or `await handle.call(...)`"
            )
        runner = self._session.runner
        if runner is None:
            raise RunnerNotRunning("the notebook runner has not started yet")
        return snapshot(runner, self._session.journal)

    @property
    def leftover_tasks(self) -> list[str] | None:
        """Tasks of the run still alive when it ended, besides trio's own (None: not ended)."""
        return self._session.leftover if self.finished else None


def _name_of(strategy: StrategyLike) -> str:
    if isinstance(strategy, tuple):
        return strategy[0]
    if isinstance(strategy, str):
        return strategy.partition(":")[0].rsplit(".", 1)[-1]
    cls = strategy if isinstance(strategy, type) else type(strategy)
    return inspect_strategy(cls).name


def _settle(future: asyncio.Future[Any], result: outcome.Outcome[Any]) -> None:
    if future.done():  # the cell was interrupted: nobody waits for this reply
        return
    if isinstance(result, outcome.Error):
        future.set_exception(result.error)
    else:
        future.set_result(result.unwrap())


def _settle_ready(ready: asyncio.Future[None], error: BaseException | None) -> None:
    if ready.done():
        return
    if error is None:
        ready.set_result(None)
    else:
        ready.set_exception(error)


def _settle_done(
    ready: asyncio.Future[None],
    done: asyncio.Future[outcome.Outcome[list[CommandResult]]],
    result: outcome.Outcome[list[CommandResult]],
) -> None:
    if not ready.done():
        error = result.error if isinstance(result, outcome.Error) else None
        ready.set_exception(error or RunnerNotRunning("the run ended before it was ready"))
    if not done.done():
        done.set_result(result)
    if isinstance(result, outcome.Error):
        log.error("the notebook runner ended with an error", exc_info=result.error)


# -- KeyboardInterrupt stays the kernel's ---------------------------------------------------------


def _raise_keyboard_interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _trio_leaves_sigint_alone() -> Iterator[None]:
    """While the guest run starts, SIGINT's handler is one that behaves as Python's default
    but is not it: trio installs its own handler only over the default, and with it Ctrl-C
    would cancel the runner instead of the cell."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class _Held:
    """The SIGINTs that arrived during one guest tick, for the handler that was in place."""

    def __init__(self) -> None:
        self.frames: list[types.FrameType | None] = []

    def __call__(self, signum: int, frame: types.FrameType | None) -> None:
        self.frames.append(frame)


def _held_sigint(fn: Callable[[], object]) -> None:
    """Run one of trio's guest callbacks with SIGINT held: a KeyboardInterrupt raised half-way
    through trio's run loop would corrupt the run. Afterwards the held signal goes to the
    handler that was in place, as if it had arrived just after the tick."""
    if threading.current_thread() is not threading.main_thread():
        fn()  # Python runs signal handlers in the main thread only: nothing can interrupt us
        return
    if signal.getsignal(signal.SIGINT) is None:  # set from C: cannot be put back, leave it
        fn()
        return
    held = _Held()
    previous: Any = None
    try:
        previous = signal.signal(signal.SIGINT, held)
    except KeyboardInterrupt:  # it came before the swap took effect: deliver it after the tick
        held.frames.append(None)
        previous = signal.signal(signal.SIGINT, held)
    try:
        fn()
    finally:
        signal.signal(signal.SIGINT, previous)
        if held.frames:
            _deliver(previous, held.frames[-1])


def _deliver(handler: Any, frame: types.FrameType | None) -> None:
    if callable(handler):
        handler(signal.SIGINT, frame)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signal.SIGINT)
    # SIG_IGN, or a handler set from C (None): ignored, as it would have been.


def _value(result: outcome.Outcome[T]) -> T:
    """The outcome's value or error, as often as asked (``unwrap`` works once only)."""
    if isinstance(result, outcome.Error):
        raise result.error
    assert isinstance(result, outcome.Value)
    value: T = result.value
    return value
