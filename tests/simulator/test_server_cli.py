"""``exchange-sim`` on the command line: it prints where it listens, serves, stops cleanly on
Ctrl-C, and refuses bad values with status 2 before listening."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx2
import pytest
import trio

from trading.simulator import cli


@pytest.mark.parametrize(
    "argv",
    [
        ["--balance", "USDT"], ["--balance", "USDT=-1"], ["--balance", "USDT=lots"],
        ["--symbol", "DOGEBTC"], ["--speed", "0"], ["--speed", "inf"], ["--port", "70000"],
        ["--interval", "7m"], ["--seed", "x"],
    ],
)  # fmt: skip
def test_bad_values_exit_2_naming_the_value(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["exchange-sim", *argv])
    assert exited.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_half_a_key_pair_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["exchange-sim", "--api-key", "k"]) == 2
    assert "--api-secret" in capsys.readouterr().err


async def test_serves_and_stops_cleanly_on_ctrl_c() -> None:
    command = [sys.executable, "-m", "trading.simulator.cli", "exchange-sim",
               "--balance", "USDT=123", "--symbol", "ETHUSDT", "--api-key", "my-key",
               "--api-secret", "my-secret-value"]  # fmt: skip
    with trio.fail_after(30):
        proc = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            assert proc.stdout is not None and proc.stderr is not None
            out = b""
            while b"Ctrl-C to stop." not in out:
                chunk = await proc.stdout.receive_some()
                assert chunk, out
                out += chunk
            text = out.decode()
            base = re.search(r"REST\s+(http://\S+)/api/v3", text)
            assert base is not None, text
            assert (
                "my-key" in text and "my-secret-value" not in text
            )  # a given secret is not echoed
            async with httpx2.AsyncClient(base_url=base.group(1)) as http:
                info = (await http.get("/api/v3/exchangeInfo")).json()
            assert [s["symbol"] for s in info["symbols"]] == ["ETHUSDT"]
            proc.send_signal(signal.SIGINT)
            assert await proc.wait() == 0
            err = (await proc.stderr.receive_some()).decode()
            assert "stopping" in err and "Traceback" not in err
        finally:
            proc.kill()
            await proc.wait()
