"""A guest run inside a real ipykernel, driven cell by cell as a user would; Interrupt too."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.notebook.kernel import execute, running_kernel

REPO = Path(__file__).resolve().parents[2]

SET_UP = """
import asyncio, re, threading
from decimal import Decimal
import trading
from trading.notebook import start

class Sleeper(trading.Strategy):
    interval = "1h"
    symbols = ("BTCUSDT",)

    async def next(self, ctx):
        await ctx.buy(Decimal("0.01"))

before = set(threading.enumerate())
handle = await start(Sleeper(), clock=trading.VirtualClock(start=1_735_689_660.0, speed=1.0))
print(handle.running)
"""


def test_a_guest_run_in_a_kernel_survives_interrupts_and_leaves_nothing() -> None:
    with running_kernel(REPO) as (manager, client):
        assert execute(client, SET_UP).stdout.strip() == "True"
        wait_sleeping = (
            "for _ in range(500):\n"
            "    if handle.status()['state'].tolist() == ['sleeping']: break\n"
            "    await asyncio.sleep(0.01)\n"
            "print(handle.status()['state'].tolist())"
        )
        assert execute(client, wait_sleeping).stdout.strip() == "['sleeping']"
        paused = execute(client, "[r] = await handle.command('pause sleeper'); print(r.state)")
        assert paused.stdout.strip() == "paused"
        woke = execute(
            client,
            "await handle.command('resume sleeper'); await handle.command('wake sleeper')\n"
            "for _ in range(500):\n"
            "    if len(handle.fills()) == 2: break\n"
            "    await asyncio.sleep(0.01)\n"
            "print(len(handle.fills()), handle.orders()['state'].tolist())",
        )
        assert woke.stdout.strip() == "2 ['FILLED', 'FILLED']"

        # Interrupt cells that block, and one that awaits: the cell ends, the run does not.
        # (Not `await asyncio.sleep(60)`: ipykernel 7.4 misses that Interrupt with no runner
        # at all, as the loop sleeps on without a wakeup fd.)
        for cell, error in (
            ("import time\nwhile True: time.sleep(0.01)", "KeyboardInterrupt"),
            ("while True: pass", "KeyboardInterrupt"),
            ("while True: await asyncio.sleep(0)", "CancelledError"),
        ):
            timer = threading.Timer(1.0, manager.interrupt_kernel)
            timer.start()
            result = execute(client, cell)
            timer.join()
            assert (result.status, result.ename) == ("error", error), cell
            alive = execute(
                client,
                "[r] = await handle.command('status sleeper')\n"
                "print(r.ok, handle.running, handle.status()['state'].tolist())",
            )
            assert alive.stdout.strip() == "True True ['sleeping']", cell

        again = execute(client, "print((await start(Sleeper())) is handle)")
        assert again.stdout.strip() == "True"
        stopped = execute(
            client,
            "replies = await handle.stop()\n"
            "print([r.ok for r in replies], handle.leftover_tasks, handle.finished)",
        )
        assert stopped.stdout.strip() == "[True] [] True"
        threads = execute(
            client,
            "print(sorted(t.name for t in set(threading.enumerate()) - before"
            " if not re.fullmatch(r'Trio thread \\d+', t.name)))",
        )
        assert threads.stdout.strip() == "[]"
