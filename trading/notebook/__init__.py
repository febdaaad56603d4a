"""A Runner inside a Jupyter kernel, or in a thread of its own for plain scripts.

``handle = await trading.notebook.start("sma_cross")`` runs the Runner in trio guest mode on
the kernel's asyncio loop, so other cells keep working while it runs::

    handle = await start("sma_cross")
    await handle.command("pause sma_cross")    # the replies
    handle.status()                            # the status table (a DataFrame with pandas)
    handle.orders(); handle.fills(); handle.positions()
    await handle.stop()                        # on_stop, orders cancelled; the kernel goes on

A cell that blocks (a long computation, ``time.sleep``) starves a guest run: use
``start_in_thread(...)`` there, whose handle has the same methods, blocking.
"""

from trading.notebook.guest import AlreadyRunning, NotebookRunner, start
from trading.notebook.session import SIM_START, RunnerBusy
from trading.notebook.thread import ThreadedRunner, start_in_thread

__all__ = [
    "SIM_START",
    "AlreadyRunning",
    "NotebookRunner",
    "RunnerBusy",
    "ThreadedRunner",
    "start",
    "start_in_thread",
]
