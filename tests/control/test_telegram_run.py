"""`trio-trade run` with a [telegram] section, as an operator sets it up: a real run in a
subprocess, commanded and notified through a Bot API server on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

from trading.testing import TelegramServer

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "987654:RUN-secret-token"
CHAT = 5151
BOUND = 30


async def test_a_run_is_commanded_and_notified_over_telegram(tmp_path: Path) -> None:
    server = TelegramServer(TOKEN)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(server.serve)
        config = tmp_path / "trio-trade.toml"
        config.write_text(
            f"""
strategies_dir = "{ROOT / "strategies"}"

[[strategies]]
name = "sma_cross"

[simulator]
speed = 60.0

[database]
enabled = false

[telegram]
api_base = "{url}"
allowed_chats = [{CHAT}]
"""
        )
        env = {**os.environ, "TRIO_TRADE_TELEGRAM_TOKEN": TOKEN, "TRIO_TRADE_PLAIN": "1"}
        log = tmp_path / "run.log"
        with log.open("wb") as err:
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "trading", "run", "--config", str(config), "--no-socket"],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env=env,
                cwd=tmp_path,
            )
            try:
                with trio.fail_after(BOUND):
                    while not any(c[0] == "getupdates" for c in server.calls):  # noqa: ASYNC110
                        await trio.sleep(0.05)
                    server.push_message(CHAT, "/pause sma_cross")
                    server.push_message(CHAT + 1, "/stop all")  # a stranger: nothing, no reply
                    while not any("paused" in t for t in server.texts(CHAT)):  # noqa: ASYNC110
                        await trio.sleep(0.05)
                    server.push_message(CHAT, "/status")
                    while not any(t.startswith("strategy") for t in server.texts(CHAT)):  # noqa: ASYNC110
                        await trio.sleep(0.05)
                proc.send_signal(signal.SIGINT)
                with trio.fail_after(BOUND):
                    assert await proc.wait() == 0
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        nursery.cancel_scope.cancel()
    texts = server.texts(CHAT)
    table = next(t for t in texts if t.startswith("strategy"))
    assert "sma_cross" in table and "paused" in table
    # The notifier told the chat the strategy paused, and (flushed at the end) that it stopped.
    assert "sma_cross: sleeping -> paused" in texts
    assert any("-> stopped" in t for t in texts)
    assert not server.texts(CHAT + 1)  # the stranger got nothing
    output = log.read_text()
    assert TOKEN not in output and TOKEN.split(":")[1] not in output
    assert "refused" in output  # the stranger's attempt is a WARNING line
