"""Where a sweep's replays run: here, on local worker processes, or on a Dask cluster.

All three take the same :class:`~trading.sweep.job.SweepJob`, combinations and bars and give the
same rows (a replay is deterministic), in the order of the combinations whatever order they
finish in. The rules they keep:

* **Data once per worker.** Local processes get the bars through the pool's initializer (one
  pickle per worker process, kept in the worker); a Dask cluster gets them with
  ``client.scatter(..., broadcast=True)`` (one copy per worker) and each task receives the
  future, not the bars.
* **Only configuration crosses.** Tasks carry the job and a combination; each worker builds its
  own strategy, runner and broker (DESIGN.md rule 9).
* **A failing combination is a row**, never the sweep's end; a worker that dies (killed, out of
  memory) fails the combinations it held with that error and the rest go on.
* ``on_done(done, total)`` is called in the caller's thread after each combination, for a
  progress bar.
* Dask is an existing engine, not a home-made one: ``distributed`` is imported only when a
  scheduler address or a client is given (``pip install 'trio-trade[sweep]'``).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trading.core.bars import Bar
from trading.sweep.job import Row, SweepJob, run_one

__all__ = ["OnDone", "run_dask", "run_inline", "run_processes"]

OnDone = Callable[[int, int], None]
Combos = Sequence[Mapping[str, str]]

_WORKER_BARS: Sequence[Bar] = ()


def _nothing(done: int, total: int) -> None:
    pass


def run_inline(
    job: SweepJob, combos: Combos, bars: Sequence[Bar], on_done: OnDone = _nothing
) -> list[Row]:
    """One after the other, in this process (the reference the others must equal)."""
    rows = []
    for i, params in enumerate(combos):
        rows.append(run_one(job, params, bars))
        on_done(i + 1, len(combos))
    return rows


def quiet_worker() -> None:
    """In a worker, the replays' own warnings (a refused order, a skipped bar) go nowhere: 32
    parallel replays would bury the terminal, and the table carries the outcome. Errors stay."""
    logging.getLogger("trading").setLevel(logging.ERROR)


def _keep_bars(bars: Sequence[Bar]) -> None:
    global _WORKER_BARS
    _WORKER_BARS = bars
    quiet_worker()


def _run_on_dask(job: SweepJob, params: Mapping[str, str], bars: Sequence[Bar]) -> Row:
    quiet_worker()
    return run_one(job, params, bars)


def _run_kept(job: SweepJob, params: Mapping[str, str]) -> Row:
    return run_one(job, params, _WORKER_BARS)


def run_processes(
    job: SweepJob,
    combos: Combos,
    bars: Sequence[Bar],
    on_done: OnDone = _nothing,
    *,
    workers: int | None = None,
) -> list[Row]:
    """On ``workers`` local processes (default: one per core). Started with ``spawn``: a worker
    shares nothing with this process but what is pickled to it."""
    workers = workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(combos)))
    rows: list[Row | None] = [None] * len(combos)
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_keep_bars, initargs=(bars,)
    ) as pool:
        futures = {pool.submit(_run_kept, job, params): i for i, params in enumerate(combos)}
        for done, future in enumerate(cf.as_completed(futures), start=1):
            i = futures[future]
            rows[i] = _row_of(future, combos[i])
            on_done(done, len(combos))
    return [row for row in rows if row is not None]


def _row_of(future: cf.Future[Row], params: Mapping[str, str]) -> Row:
    try:
        return future.result()
    except Exception as exc:  # the worker died under it (BrokenProcessPool), or it did not pickle
        return Row(dict(params), None, f"{type(exc).__name__}: {exc}")


def run_dask(
    job: SweepJob,
    combos: Combos,
    bars: Sequence[Bar],
    on_done: OnDone = _nothing,
    *,
    scheduler: str | None = None,
    client: Any = None,
) -> list[Row]:
    """On a Dask ``distributed`` cluster: an existing ``client``, or one connected to
    ``scheduler`` (``tcp://host:8786``) for the sweep and closed after it."""
    try:
        import distributed
    except ImportError:
        raise RuntimeError(
            "a Dask scheduler needs `distributed`: pip install 'trio-trade[sweep]'"
        ) from None
    own = client is None
    if own:
        client = distributed.Client(scheduler)  # type: ignore[no-untyped-call]
    try:
        # One object, not a list: scatter() ships each item of a list as its own piece of data.
        # hash=False: tokenising 100,000 bars to name them costs more than shipping them.
        [shipped] = client.scatter([bars], broadcast=True, hash=False)
        sweep_id = uuid.uuid4().hex  # keys unique per sweep: a cluster caches results by key
        futures = [
            client.submit(
                _run_on_dask, job, params, shipped, pure=False, key=f"sweep-{sweep_id}-{i}"
            )
            for i, params in enumerate(combos)
        ]
        index = {future.key: i for i, future in enumerate(futures)}
        rows: list[Row | None] = [None] * len(combos)
        for done, future in enumerate(distributed.as_completed(futures), start=1):  # type: ignore[no-untyped-call]
            i = index[future.key]
            try:
                rows[i] = future.result()
            except Exception as exc:  # a worker lost, a task that could not run there
                rows[i] = Row(dict(combos[i]), None, f"{type(exc).__name__}: {exc}")
            on_done(done, len(combos))
        return [row for row in rows if row is not None]
    finally:
        if own:
            client.close()
