"""A Runner in a thread of its own, with blocking methods: for plain scripts and for cells
that block (a blocking cell starves a guest run, which only runs when the kernel's loop does).

The rules this module keeps (DESIGN.md rule 7):

* The run lives in one thread this module starts (``trio.run`` there), and other threads
  come in only through its token: ``trio.from_thread.run`` for calls that wait,
  ``run_sync_soon`` for a stop. Calling a blocking method from the run's own thread raises
  RunnerThreadError instead of deadlocking.
* Plain calls (``status()``, ``orders()``...) take their snapshot inside the trio run
  (``from_thread.run_sync``), so they never read data a trio task is changing.
* :meth:`ThreadedRunner.stop` is the normal wind-down (``stop all``, then the Runner's exit),
  then joins the thread: afterwards no thread of the run is left. It is bounded by the
  Runner's own wind-down bounds.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import outcome
import trio

from trading.core.commands import CommandResult
from trading.notebook.session import Session, StrategyLike, not_running
from trading.notebook.tables import RunView, Snapshot, snapshot
from trading.runtime.runner import Runner, RunnerNotRunning, RunnerThreadError
from trading.runtime.strategy import Strategy, inspect_strategy

__all__ = ["ThreadedRunner", "start_in_thread"]

T = TypeVar("T")


def start_in_thread(*strategies: StrategyLike, **options: Any) -> ThreadedRunner:
    """Start ``strategies`` in a Runner in a new thread; blocks until every ``on_start``
    succeeded (or raises the start's error once the run has wound down). Takes the same
    arguments as :func:`trading.notebook.start`."""
    handle = ThreadedRunner(Session(strategies, **options))
    handle._begin()
    return handle


class ThreadedRunner(RunView):
    """The handle of a run in its own thread: every method blocks until it is done."""

    def __init__(self, session: Session) -> None:
        self.names = session.names
        self._session = session
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._result: outcome.Outcome[list[CommandResult]] | None = None
        self._thread = threading.Thread(target=self._main, name="trio-trade notebook runner")

    def _begin(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error

    def _main(self) -> None:
        self._result = outcome.capture(trio.run, self._session.run, self._on_ready)
        self._ready.set()  # a run that ended before it was ready

    def _on_ready(self, error: BaseException | None) -> None:
        self._start_error = error
        self._ready.set()

    @property
    def finished(self) -> bool:
        return self._result is not None

    @property
    def running(self) -> bool:
        return self._ready.is_set() and self._start_error is None and not self.finished

    def stop(self) -> list[CommandResult]:
        """Stop every strategy, leave the Runner, end the thread; the ``stop`` replies.
        Idempotent; raises what ended the run if it crashed."""
        self._check_thread()
        self._session.post_stop()
        self._thread.join()
        assert self._result is not None
        return _value(self._result)

    def command(self, text: str) -> list[CommandResult]:
        """Send an operator command and wait for the replies; never raises for bad input or
        a run that is over: those are error replies (as NotebookRunner.command)."""
        try:
            return self.call(lambda runner: runner.send(text, source="notebook"))
        except RunnerNotRunning as exc:
            return [not_running(text, exc)]

    def add(self, strategy: Strategy, *, name: str | None = None) -> str:
        """Start one more strategy in this run; returns its name once on_start succeeded."""
        name = name or inspect_strategy(type(strategy)).name

        async def add(runner: Runner) -> str:
            await runner.add(strategy, name=name)
            return name

        added = self.call(add)
        self.names = (*self.names, added)
        return added

    def call(self, job: Callable[[Runner], Awaitable[T]]) -> T:
        """Run ``await job(runner)`` in the run and wait for its value (or error)."""
        self._check_thread()
        done = threading.Event()
        box: list[outcome.Outcome[Any]] = []

        def settle(result: outcome.Outcome[Any]) -> None:
            box.append(result)
            done.set()

        self._session.post(job, settle)
        done.wait()
        value: T = box[0].unwrap()
        return value

    def snapshot(self) -> Snapshot:
        """The run's state, read inside the run (or directly once it is over)."""
        runner = self._session.runner
        if runner is None:
            raise RunnerNotRunning("the notebook runner has not started yet")
        token = self._session.token
        if not self.finished and token is not None:
            self._check_thread()
            try:
                return trio.from_thread.run_sync(
                    snapshot, runner, self._session.journal, trio_token=token
                )
            except trio.RunFinishedError:
                pass
        self._thread.join()
        return snapshot(runner, self._session.journal)

    def _check_thread(self) -> None:
        if threading.current_thread() is self._thread:
            raise RunnerThreadError(
                "a ThreadedRunner's blocking methods were called from its own run: "
                "use `await runner.send(...)` there"
            )

    @property
    def leftover_tasks(self) -> list[str] | None:
        """Tasks of the run still alive when it ended, besides trio's own (None: not ended)."""
        return self._session.leftover if self.finished else None


def _value(result: outcome.Outcome[T]) -> T:
    """The outcome's value or error, as often as asked (``unwrap`` works once only)."""
    if isinstance(result, outcome.Error):
        raise result.error
    assert isinstance(result, outcome.Value)
    value: T = result.value
    return value
