"""``trio-trade ctl`` over the control socket: a real Unix socket and a real Runner on the
simulated market, in real time (no autojumping clock on sockets), every wait bounded."""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trading
from tests.conftest import sim
from trading.control.client import EXIT_NOT_RUNNING, EXIT_TIMEOUT
from trading.control.client import _ctl as client_ctl
from trading.control.local import (
    MAX_LINE,
    ControlSocketInUse,
    LineIterator,
    default_socket_path,
    result_json,
    serve_control,
)
from trading.control.status_table import render_text, status_rows
from trading.loader import load
from trading.serve import SIM_START

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ROOT / "strategies"
LAUNCH = [sys.executable, "-m", "trading"]
BOUND = 10  # seconds any one wait may take before the test fails


class Client:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.lines = LineIterator(stream, 1 << 20)

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def reply(self) -> dict[str, Any]:
        with trio.fail_after(BOUND):
            line = await anext(self.lines)
        assert isinstance(line, bytes)
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def ask(self, command: str, ident: Any = 1) -> dict[str, Any]:
        await self.send_raw(json.dumps({"id": ident, "command": command}).encode() + b"\n")
        return await self.reply()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[trading.Runner, str]]:
    clock = trading.VirtualClock(start=SIM_START, speed=900)
    spec = load("sma_cross", STRATEGIES)
    path = str(tmp_path / "ctl.sock")
    async with trading.Runner(clock=clock, **sim(clock)) as runner:
        for name in ("a", "b"):
            await runner.add(spec.cls(), name=name)
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, runner, path)
            yield runner, path
            nursery.cancel_scope.cancel()
        await runner.stop_all()


async def connect(path: str) -> Client:
    with trio.fail_after(BOUND):
        return Client(await trio.open_unix_socket(path))


def swap(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The replies with strategy b's name where a's was (a and b are twins)."""
    text = json.dumps(replies).replace('"a"', '"B"').replace("a:", "B:")
    return list(json.loads(text.replace('"b"', '"a"').replace("b:", "a:").replace("B", "b")))


async def test_commands_reply_what_runner_send_returns(
    served: tuple[trading.Runner, str],
) -> None:
    runner, path = served
    client = await connect(path)
    for verb in ("pause", "status", "resume", "wake", "set {} fast=8", "stop"):
        command = verb.format("a") if "{}" in verb else f"{verb} a"
        twin = verb.format("b") if "{}" in verb else f"{verb} b"
        reply = await client.ask(command, ident=verb)
        expected = [result_json(r) for r in await runner.send(twin, source="test")]
        assert reply["id"] == verb
        assert reply["ok"] is all(r["ok"] for r in expected)
        if verb != "status":  # a status reply carries schedules that move on
            assert reply["replies"] == swap(expected), command
    refused = await client.ask("pause nosuch")
    assert refused["ok"] is False and "nosuch" in refused["replies"][0]["text"]
    assert runner["a"].finished.is_set()


async def test_bad_input_is_answered_and_the_connection_goes_on(
    served: tuple[trading.Runner, str],
) -> None:
    _, path = served
    client = await connect(path)
    bad: list[tuple[bytes, str]] = [
        (b"{not json\n", "not JSON"),
        (b"[1, 2]\n", "JSON object"),
        (b'{"id": 7, "command": "status", "sudo": true}\n', "'sudo'"),
        (b'{"id": 8, "command": 42}\n', "'command'"),
        (b"\xff\xfe\n", "not JSON"),
        (b"x" * (4 * MAX_LINE) + b"\n", "longer than"),
    ]
    for data, error in bad:
        await client.send_raw(data)
        reply = await client.reply()
        assert reply["ok"] is False and error in reply["error"], (data[:40], reply)
    assert (await client.ask('status "a')).get("ok") is False  # a command the parser refuses
    status = await client.ask("status", ident="still here")
    assert status["id"] == "still here" and status["ok"] is True
    assert {r["strategy"] for r in status["replies"]} == {"a", "b"}


async def test_socket_is_owner_only(served: tuple[trading.Runner, str]) -> None:
    _, path = served
    info = os.stat(path)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()


@pytest.mark.skipif(
    os.getuid() != 0 or not os.path.exists("/usr/bin/python3"),
    reason="needs root (to try as another user) and a system python",
)
async def test_another_user_cannot_connect(served: tuple[trading.Runner, str]) -> None:
    runner, _ = served
    folder = tempfile.mkdtemp(prefix="ctl-")
    os.chmod(folder, 0o755)  # only the socket's own mode keeps others out
    path = os.path.join(folder, "ctl.sock")
    probe = f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({path!r})"

    async def connect_as_nobody() -> subprocess.CompletedProcess[bytes]:
        with trio.fail_after(BOUND):
            return await trio.run_process(
                ["/usr/bin/python3", "-c", probe], user=65534, capture_stderr=True, check=False
            )

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, runner, path)
            refused = await connect_as_nobody()
            assert refused.returncode != 0 and b"PermissionError" in refused.stderr
            os.chmod(path, 0o666)  # the probe can tell: with the mode opened it connects
            assert (await connect_as_nobody()).returncode == 0
            nursery.cancel_scope.cancel()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def test_a_second_server_refuses_and_a_stale_socket_is_replaced(
    served: tuple[trading.Runner, str], tmp_path: Path
) -> None:
    runner, path = served
    with pytest.raises(ControlSocketInUse, match="already listening"):
        await serve_control(runner, path)
    assert (await (await connect(path)).ask("status"))["ok"] is True  # the first still serves
    stale = str(tmp_path / "stale.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(stale)
    dead.close()  # a killed run leaves its socket file behind
    not_a_socket = tmp_path / "file.sock"
    not_a_socket.write_text("mine")
    with pytest.raises(ControlSocketInUse, match="not a socket"):
        await serve_control(runner, str(not_a_socket))
    assert not_a_socket.read_text() == "mine"
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_control, runner, stale)
        assert (await (await connect(stale)).ask("status"))["ok"] is True
        nursery.cancel_scope.cancel()
    assert not await trio.Path(stale).exists()  # cancelling removed it


async def test_tail_streams_a_state_change_after_pause(
    served: tuple[trading.Runner, str],
) -> None:
    runner, path = served
    tail = await connect(path)
    ack = await tail.ask("tail", ident="t")
    assert ack == {"id": "t", "ok": True, "tail": True}
    await runner.send("pause a", source="test")
    with trio.fail_after(BOUND):
        while True:
            event = await tail.reply()
            kind, who, text = event["kind"], event["strategy"], event["text"]
            if kind == "StrategyStateChanged" and who == "a" and "-> paused" in text:
                break
    taps = [n for n in runner.bus.statistics() if n.startswith("ctl-tail")]
    assert taps
    await tail.stream.aclose()
    with trio.fail_after(BOUND):
        # The hang-up detaches the tap; nothing signals that, so poll (bounded).
        while any(n.startswith("ctl-tail") for n in runner.bus.statistics()):  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_health_reports_each_strategy(served: tuple[trading.Runner, str]) -> None:
    runner, path = served
    reply = await (await connect(path)).ask("health")
    assert reply["ok"] is True
    rows = {row["strategy"]: row for row in reply["health"]}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["state"] == runner["a"].state.value
    assert rows["a"]["given_up"] is False and rows["a"]["interval"] == "15m"
    assert all(row["overdue"] is None or row["overdue"] >= 0 for row in rows.values())
    assert reply["alive"] is True and reply["links"] == []  # a simulated venue has no links
    assert all(row["verdict"] in ("ok", "starting") for row in rows.values())
    assert reply["text"].splitlines()[0] == "alive"


async def test_status_answers_with_the_table_and_is_audited(
    served: tuple[trading.Runner, str],
) -> None:
    runner, path = served
    client = await connect(path)
    reply = await client.ask("status")
    assert reply["ok"] is True and [row["strategy"] for row in reply["status"]] == ["a", "b"]
    assert reply["table"] == render_text(status_rows(runner))
    assert len(reply["replies"]) == 2  # the command went through the runner: answered, audited
    one = await client.ask("status a")  # one strategy: its line, no table
    assert "table" not in one and one["replies"][0]["strategy"] == "a"


def _ctl(path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LAUNCH, "ctl", "--socket", str(path), *command],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )


def _wait_for_line(proc: subprocess.Popen[str], text: str) -> bool:
    """Whether ``proc`` prints a line containing ``text`` within BOUND seconds."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + BOUND
    while (left := deadline - time.monotonic()) > 0:
        try:
            if text in lines.get(timeout=left):
                return True
        except queue.Empty:
            break
    return False


def test_ctl_against_a_run_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    missing = _ctl(path, "status")
    assert missing.returncode == 2
    assert f"no trio-trade run is listening on {path}" in missing.stderr
    procs: list[subprocess.Popen[str]] = []
    run = subprocess.Popen(
        [*LAUNCH, "run", "sma_cross", "--no-db",
         "--socket", str(path), "--strategies-dir", str(STRATEGIES)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT,
    )  # fmt: skip
    procs.append(run)
    try:
        assert run.stderr is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if f"control socket: {path}" in run.stderr.readline():
                break
        else:
            raise AssertionError("trio-trade run did not start its control socket")
        second = subprocess.run(
            [*LAUNCH, "run", "sma_cross", "--no-db", "--socket", str(path),
             "--strategies-dir", str(STRATEGIES)],
            capture_output=True, text=True, timeout=30, cwd=ROOT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert second.returncode == 2 and "already listening" in second.stderr, second
        tail = subprocess.Popen(
            [*LAUNCH, "ctl", "--socket", str(path), "tail"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        procs.append(tail)
        status = _ctl(path, "status")  # the status table, as the terminal and /status show it
        assert status.returncode == 0, status
        header, row = status.stdout.splitlines()
        assert header.split()[:3] == ["strategy", "state", "next"], status
        assert row.split()[0] == "sma_cross" and row.split()[1] in ("sleeping", "computing")
        paused = _ctl(path, "--json", "pause", "sma_cross")
        assert paused.returncode == 0, paused
        assert json.loads(paused.stdout)["replies"][0]["state"] == "paused"
        assert _wait_for_line(tail, "-> paused")
        refused = _ctl(path, "pause", "nosuch")
        assert refused.returncode == 1 and "nosuch" in refused.stdout
        health = _ctl(path, "health")
        assert health.returncode == 0, health
        assert health.stdout.splitlines()[:2] == ["alive", health.stdout.splitlines()[1]]
        assert health.stdout.splitlines()[1].startswith("sma_cross: paused (paused), last bar")
        stopped = _ctl(path, "stop", "all")
        assert stopped.returncode == 0 and "sma_cross: ok: stopped" in stopped.stdout
        assert run.wait(timeout=20) == 0
        assert tail.wait(timeout=20) == 0  # the run ended: its tail ends too
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate()
    assert not path.exists()


async def test_many_clients_at_once_are_all_answered(served: tuple[trading.Runner, str]) -> None:
    _, path = served
    answered: list[str] = []

    async def one(k: int) -> None:
        client = await connect(path)
        for i in range(10):
            command = ("pause a", "resume a", "status b", "wake nosuch")[(k + i) % 4]
            reply = await client.ask(command, ident=f"{k}.{i}")
            assert reply["id"] == f"{k}.{i}" and reply["replies"]
            answered.append(reply["id"])
        await client.stream.aclose()

    with trio.fail_after(BOUND * 3):
        async with trio.open_nursery() as nursery:
            for k in range(20):
                nursery.start_soon(one, k)
    assert len(set(answered)) == 200
    assert (await (await connect(path)).ask("status"))["ok"] is True


@given(
    lines=st.lists(
        st.one_of(st.binary(max_size=10), st.binary(min_size=25, max_size=90)).map(
            lambda b: b.replace(b"\n", b"")
        ),
        max_size=8,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20),
)
def test_lines_survive_any_chunking(lines: list[bytes], cuts: list[int]) -> None:
    data = b"".join(line + b"\n" for line in lines)

    async def read_all() -> list[bytes | str]:
        sender, receiver = trio.testing.memory_stream_pair()
        got: list[bytes | str] = []
        async with trio.open_nursery() as nursery:

            async def feed() -> None:
                rest, i = data, 0
                while rest:
                    size = cuts[i % len(cuts)]
                    await sender.send_all(rest[:size])
                    await trio.testing.wait_all_tasks_blocked()  # read as its own chunk
                    rest, i = rest[size:], i + 1
                await sender.aclose()

            nursery.start_soon(feed)
            async for line in LineIterator(receiver, 30):
                got.append(line if isinstance(line, bytes) else "too long")
        return got

    expected = [line if len(line) <= 30 else "too long" for line in lines]
    assert trio.run(read_all) == expected


async def test_ctl_exit_statuses_for_no_server_and_a_silent_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "silent.sock")
    assert await client_ctl(path, "status", False, 1.0) == EXIT_NOT_RUNNING
    assert f"no trio-trade run is listening on {path}" in capsys.readouterr().err
    silent = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await silent.bind(path)
    silent.listen(1)  # accepts (the kernel does) and never answers
    with trio.fail_after(BOUND):
        assert await client_ctl(path, "status", False, 0.2) == EXIT_TIMEOUT
    assert "no reply" in capsys.readouterr().err
    silent.close()


def test_default_socket_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_socket_path() == str(tmp_path / "trio-trade.sock")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_socket_path() == f"/tmp/trio-trade-{os.getuid()}.sock"


async def test_cancelling_closes_every_connection_and_removes_the_socket(
    served: tuple[trading.Runner, str], tmp_path: Path
) -> None:
    runner, _ = served
    path = str(tmp_path / "own.sock")
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_control, runner, path)
        idle, tailing = await connect(path), await connect(path)
        assert (await tailing.ask("tail"))["tail"] is True
        nursery.cancel_scope.cancel()
    with trio.fail_after(BOUND):
        for client in (idle, tailing):
            while await client.stream.receive_some():
                pass  # events already sent; then the end of the stream
    assert not await trio.Path(path).exists()
    assert not [n for n in runner.bus.statistics() if n.startswith("ctl-tail")]
