"""Ctrl-C while `trio-trade run` is still starting strategies (issue 6, point 21): the ones
started are wound down, the one starting is cancelled, and none after it is started."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "trading"]

STRATEGIES = textwrap.dedent(
    """
    import sys
    import trio
    import trading


    def mark(text):
        print("MARK " + text, file=sys.stderr, flush=True)


    class Quick(trading.Strategy):
        async def on_start(self, ctx):
            mark("quick started")

        async def next(self, ctx):
            pass

        async def on_stop(self, ctx):
            mark("quick on_stop")


    class Hangs(trading.Strategy):
        async def on_start(self, ctx):
            mark("hangs starting")
            await trio.sleep_forever()  # a start-up that waits for something that never comes

        async def next(self, ctx):
            pass


    class Later(trading.Strategy):
        async def on_start(self, ctx):
            mark("later started")

        async def next(self, ctx):
            pass
    """
)


def test_ctrl_c_during_start_up_stops_the_started_and_starts_no_more(tmp_path: Path) -> None:
    (tmp_path / "slowstart.py").write_text(STRATEGIES)
    refs = ["slowstart:Quick", "slowstart:Hangs", "slowstart:Later"]
    proc = subprocess.Popen(
        [*CLI, "run", *refs, "--strategies-dir", str(tmp_path), "--no-db"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        for line in proc.stderr:  # the child's own progress, not a sleep: no timing guess
            seen.append(line)
            if "MARK hangs starting" in line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(seen) + err
    assert "MARK quick started" in err and "MARK quick on_stop" in err
    assert "MARK later started" not in err
    assert "forced exit" not in err  # one Ctrl-C was enough
    assert "quick: ok: stopped" in out
