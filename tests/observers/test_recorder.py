"""Recorder: every event in the right table with exact Decimals, nothing lost, survives SIGKILL."""

from __future__ import annotations

import json
import logging
import queue
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import T0
from trading.core.events import (
    CommandHandled,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderReconciled,
    OrderRejected,
    OrderSubmitted,
    OrderUnknown,
    PositionSnapshot,
    RiskBreached,
    StrategyError,
    StrategyStateChanged,
)
from trading.observers.queries import format_table, read_fills, read_orders, read_positions
from trading.observers.recorder import SCHEMA_VERSION, Recorder, RecorderError
from trading.observers.schema import LEGACY_RUN
from trading.runtime.bus import EventBus

D = Decimal
CHILD = Path(__file__).with_name("recorder_sigkill_child.py")


def order(kind: type[OrderSubmitted], oid: str, **extra: object) -> Event:
    """An order event of ``kind`` for order ``oid``: buy 0.5000 BTCUSDT limit @ 100.10."""
    return kind(  # type: ignore[call-arg]
        T0, "sma", oid, "BTCUSDT", "buy", "limit", D("0.5000"), D("100.10"), **extra
    )


def fill(kind: type[OrderPartiallyFilled], oid: str, trade: str, qty: str, price: str,
         filled: str) -> Event:
    return kind(
        T0 + 1, "sma", oid, "BTCUSDT", "buy", "limit", D("0.5000"), D("100.10"),
        trade_id=trade, fill_quantity=D(qty), fill_price=D(price), fee=D("0.00010"),
        fee_asset="BNB", filled_quantity=D(filled),
    )


def every_kind() -> list[Event]:
    return [
        order(OrderSubmitted, "o1"),
        order(OrderAccepted, "o1", exchange_order_id="ex-1"),
        fill(OrderPartiallyFilled, "o1", "t1", "0.2", "100.10", "0.2"),
        fill(OrderFilled, "o1", "t2", "0.3000", "100.05", "0.5000"),
        order(OrderSubmitted, "o2"),
        order(OrderRejected, "o2", reason="insufficient balance", sent=True),
        order(OrderSubmitted, "o3"),
        order(OrderCancelled, "o3", filled_quantity=D("0"), reason="operator"),
        order(OrderSubmitted, "o4"),
        order(OrderUnknown, "o4", reason="submit timed out"),
        order(OrderReconciled, "o4", state="cancelled", filled_quantity=D("0")),
        PositionSnapshot(T0 + 2, "sma", "BTCUSDT", D("0.5000"), D("100.07"), D("101.00"),
                         D("0"), D("0.4650"), D("0.00020")),
        PositionSnapshot(T0 + 3, "sma", "BTCUSDT", D("0.2500"), D("100.07"), D("99.50"),
                         D("-0.1425"), D("-0.1425"), D("0.00030")),
        PositionSnapshot(T0 + 3, "other", "ETHUSDT", D("1"), D("3000"), D("3001"), D("0"),
                         D("1"), D("0")),
        CommandHandled(T0 + 4, "sma", "pause sma", "telegram", True, "paused (was sleeping)"),
        StrategyStateChanged(T0 + 4, "sma", "sleeping", "paused", "command"),
        StrategyError(T0 + 5, "sma", "next", "ValueError: x", "Traceback...", 1, 2.0),
        RiskBreached(T0 + 6, "sma", "max_position", "0.5 > 0.4", "order refused"),
    ]


async def record(path: Path, events: Sequence[Event], **attach: int) -> Recorder:
    bus = EventBus()
    recorder = Recorder(path)
    bus.attach(recorder, **attach)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        for event in events:
            bus.publish(event)
        await bus.flush()
        stats = bus.statistics()["recorder"]
        await bus.aclose()
    assert (stats.failed, stats.dropped, stats.delivered) == (0, 0, len(events))
    return recorder


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_every_event_lands_in_its_tables_with_exact_decimals(
    tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    db = tmp_path / "run.db"
    events = every_kind()
    await record(db, events)
    kinds = rows(db, "SELECT seq, kind FROM events ORDER BY seq")
    assert kinds == [(i, type(e).__name__) for i, e in enumerate(events, start=1)]
    payload = json.loads(rows(db, "SELECT payload FROM events WHERE seq = 4")[0][0])
    assert payload["fill_quantity"] == "0.3000" and payload["fee"] == "0.00010"

    orders = {o["client_order_id"]: o for o in read_orders(db)}
    o1 = orders["o1"]
    assert (o1["state"], o1["exchange_order_id"]) == ("filled", "ex-1")
    assert o1["filled_quantity"] == D("0.5000") and str(o1["filled_quantity"]) == "0.5000"
    assert o1["average_price"] == D("100.07")  # (0.2 * 100.10 + 0.3 * 100.05) / 0.5, exactly
    assert o1["quantity"] == D("0.5000") and o1["price"] == D("100.10")
    assert (o1["created_at"], o1["updated_at"]) == (T0, T0 + 1)
    assert (orders["o2"]["state"], orders["o2"]["reason"]) == ("rejected", "insufficient balance")
    assert (orders["o3"]["state"], orders["o3"]["reason"]) == ("cancelled", "operator")
    assert orders["o3"]["filled_quantity"] == 0
    assert (orders["o4"]["state"], orders["o4"]["reason"]) == ("cancelled", "submit timed out")

    fills = read_fills(db)
    assert [(f["trade_id"], f["quantity"], f["price"]) for f in fills] == [
        ("t1", D("0.2"), D("100.10")),
        ("t2", D("0.3000"), D("100.05")),
    ]
    assert str(fills[0]["fee"]) == "0.00010" and fills[0]["fee_asset"] == "BNB"

    latest = read_positions(db)
    assert [(p["strategy"], p["quantity"], p["realised_pnl"]) for p in latest] == [
        ("other", D("1"), D("0")),
        ("sma", D("0.2500"), D("-0.1425")),
    ]
    assert len(read_positions(db, strategy="sma", latest=False)) == 2
    assert rows(db, "SELECT strategy, command, source, ok, message FROM commands") == [
        ("sma", "pause sma", "telegram", 1, "paused (was sleeping)")
    ]
    assert rows(db, "SELECT typeof(quantity), typeof(price) FROM fills")[0] == ("text", "text")


async def test_wal_mode_reopen_and_a_second_run_appends(
    tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    db = tmp_path / "run.db"
    first = await record(db, every_kind()[:3])
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    assert rows(db, "SELECT version FROM meta") == [(SCHEMA_VERSION,)]
    again = await record(db, every_kind()[3:5])  # a second run into the same file appends
    assert first.run_id != again.run_id
    assert rows(db, "SELECT run, seq FROM events ORDER BY id") == [
        (first.run_id, 1), (first.run_id, 2), (first.run_id, 3),
        (again.run_id, 1), (again.run_id, 2),
    ]
    assert rows(db, "SELECT run FROM runs ORDER BY id") == [(first.run_id,), (again.run_id,)]
    # the second run's o1 is its own order (a fill and an order row of its own)
    assert [(o["run"], o["state"]) for o in read_orders(db)] == [
        (first.run_id, "partially_filled"), (again.run_id, "filled"), (again.run_id, "new"),
    ]


def test_refuses_foreign_and_newer_databases(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE things (x)")
    with pytest.raises(RecorderError, match="not a trio-trade database"):
        Recorder(foreign)
    newer = tmp_path / "newer.db"
    Recorder(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE meta SET version = 99")
    with pytest.raises(RecorderError, match="schema version 99"):
        Recorder(newer)


def test_replaying_a_batch_is_idempotent(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "run.db")
    batch = list(enumerate(every_kind(), start=1))
    recorder.write(batch)
    before = {t: rows(recorder.path, f"SELECT * FROM {t} ORDER BY 1")
              for t in ("events", "orders", "fills", "positions", "commands")}
    recorder.write(batch)  # the bus retried a batch that had in fact committed
    recorder.write(batch[:2])  # an old batch replayed late must not move orders back
    after = {t: rows(recorder.path, f"SELECT * FROM {t} ORDER BY 1") for t in before}
    recorder.close()
    assert after == before
    with pytest.raises(RecorderError, match="closed"):
        recorder.write(batch)


class SlowRecorder(Recorder):
    """Each batch takes a second (of trio time): the trading loop must not notice."""

    async def handle(self, batch: Sequence[tuple[int, Event]]) -> None:
        await trio.sleep(1)
        await super().handle(batch)


async def test_a_slow_recorder_still_records_every_event(
    tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    db = tmp_path / "slow.db"
    bus = EventBus()
    recorder = SlowRecorder(db)
    acks: list[int] = []
    recorder.on_commit = acks.append
    bus.attach(recorder, buffer=64, max_batch=500)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        for i in range(5_000):
            bus.publish(order(OrderSubmitted, f"o{i}"))
            if i % 250 == 0:
                await trio.sleep(0.1)  # the trading loop goes on while the recorder lags
        lag = bus.statistics()["recorder"]
        await bus.flush()
        await bus.aclose()
    assert lag.max_pending > 64  # the overflow carried it
    assert rows(db, "SELECT COUNT(*), MIN(seq), MAX(seq) FROM events") == [(5_000, 1, 5_000)]
    assert rows(db, "SELECT COUNT(*) FROM orders") == [(5_000,)]
    assert acks == sorted(acks) and acks[-1] == 5_000
    assert recorder.batches == len(acks) >= 10


class FlakyRecorder(Recorder):
    failures = 2

    def write(self, batch: Sequence[tuple[int, Event]]) -> None:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        super().write(batch)


async def test_failed_writes_are_retried_then_counted(
    tmp_path: Path, clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "flaky.db"
    bus = EventBus(retries=3)
    flaky = FlakyRecorder(db)
    broken = FlakyRecorder(tmp_path / "broken.db", name="broken")
    broken.failures = 10**6
    bus.attach(flaky)
    bus.attach(broken)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        for event in every_kind():
            bus.publish(event)
        await bus.flush()
        stats = bus.statistics()
        await bus.aclose()
    assert (stats["recorder"].errors, stats["recorder"].failed) == (2, 0)
    assert rows(db, "SELECT COUNT(*) FROM events") == [(len(every_kind()),)]
    assert stats["broken"].failed == len(every_kind())
    assert "broken failed on events" in caplog.text


async def test_commits_are_acknowledged_and_logged(
    tmp_path: Path, clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trading.observers.recorder")
    recorder = await record(tmp_path / "run.db", every_kind())
    assert recorder.last_seq == len(every_kind())
    assert f"recorded events up to #{len(every_kind())}" in caplog.text


def test_queries_read_only_and_tables(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        read_orders(missing)
    assert not missing.exists()  # read-only: never creates the file
    db = tmp_path / "run.db"
    recorder = Recorder(db)
    recorder.write(list(enumerate(every_kind(), start=1)))
    # The recorder still holds the file open (WAL): readers work alongside it.
    assert [o["client_order_id"] for o in read_orders(db, strategy="sma")] == [
        "o1", "o2", "o3", "o4"
    ]
    assert read_orders(db, strategy="ghost") == []
    recorder.close()
    assert len(read_fills(db, symbol="BTCUSDT")) == 2
    table = format_table(read_positions(db), ["strategy", "symbol", "quantity", "fees"])
    assert table.splitlines() == [
        "strategy  symbol   quantity     fees",
        "--------  -------  --------  -------",
        "other     ETHUSDT         1        0",
        "sma       BTCUSDT    0.2500  0.00030",
    ]


def test_every_acknowledged_event_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    stderr = (tmp_path / "child.err").open("w")
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(db)], stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    acked = 0
    deadline = time.monotonic() + 60
    try:
        while acked < 2_000:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or child.poll() is not None:
                pytest.fail(f"child gave {acked} acks: {(tmp_path / 'child.err').read_text()}")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line.startswith("acked "):
                acked = int(line.split()[1])
    finally:
        child.kill()  # SIGKILL: no cleanup, no final checkpoint, maybe mid-transaction
        child.wait(timeout=30)
        stderr.close()
    reader.join(timeout=10)
    while not lines.empty():  # acks printed after the last one we saw are acks too
        line = lines.get()
        if line.startswith("acked "):
            acked = max(acked, int(line.split()[1]))
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert rows(db, f"SELECT COUNT(*), MIN(seq), MAX(seq) FROM events WHERE seq <= {acked}") == [
        (acked, 1, acked)
    ]
    # orders and fills of acknowledged events are there too (the child sends them in pairs)
    assert rows(db, f"SELECT COUNT(*) FROM fills WHERE seq <= {acked}") == [(acked // 2,)]


# -- runs kept apart: repeated and concurrent runs into one file -------------------------------


def a_run(strategy: str = "sma") -> list[tuple[int, Event]]:
    """What one run records: the same client order ids, trade ids and seqs in every run."""
    events = [
        order(OrderSubmitted, "tt-sma-000001-run"),
        fill(OrderFilled, "tt-sma-000001-run", "t1", "0.5000", "100.10", "0.5000"),
        PositionSnapshot(T0 + 2, strategy, "BTCUSDT", D("0.5"), D("100.10"), D("101"), D("0"),
                         D("0.45"), D("0.0001")),
        CommandHandled(T0 + 3, strategy, "status", "stdin", True, "sleeping"),
        order(OrderSubmitted, "tt-sma-000002-run"),
    ]
    return list(enumerate(events, start=1))


TABLE_COUNTS = {"events": 5, "orders": 2, "fills": 1, "positions": 1, "commands": 1}


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.permutations([(run, i) for run in range(3) for i in range(5)]), st.data())
def test_runs_interleaved_in_any_order_keep_every_row(
    tmp_path_factory: pytest.TempPathFactory,
    order_of_writes: list[tuple[int, int]],
    data: st.DataObject,
) -> None:
    """Three runs write the same seqs, order ids and trade ids, their batches interleaved in any
    order, some replayed: every run keeps all its rows, and orders list in placement order."""
    db = tmp_path_factory.mktemp("runs") / "shared.db"
    recorders = [Recorder(db) for _ in range(3)]
    batches = a_run()
    # A run's own batches stay in its order (the bus delivers in seq order); runs interleave.
    next_of = [0, 0, 0]
    placed: list[tuple[str, str]] = []
    for run, _ in order_of_writes:
        i = next_of[run]
        next_of[run] += 1
        recorder = recorders[run]
        recorder.write([batches[i]])
        if data.draw(st.booleans()):
            recorder.write([batches[i]])  # the bus retried a batch that had committed
        event = batches[i][1]
        if isinstance(event, OrderSubmitted):
            placed.append((recorder.run_id, event.client_order_id))
    for recorder in recorders:
        recorder.close()
    for table, count in TABLE_COUNTS.items():
        assert rows(db, f"SELECT run, COUNT(*) FROM {table} GROUP BY run ORDER BY run") == sorted(
            (recorder.run_id, count) for recorder in recorders
        )
    assert [(o["run"], o["client_order_id"]) for o in read_orders(db)] == placed
    assert [o["state"] for o in read_orders(db) if o["client_order_id"].endswith("1-run")] == [
        "filled"
    ] * 3


def test_concurrent_recorders_into_one_file_keep_every_row(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    recorders = [Recorder(db) for _ in range(4)]
    runs = 50  # each recorder writes the same run 50 times over, as 50 distinct strategies' seqs
    errors: list[BaseException] = []
    start = threading.Barrier(len(recorders))

    def write(recorder: Recorder) -> None:
        try:
            start.wait()
            for block in range(runs):
                batch = [(block * 10 + seq, event) for seq, event in a_run()]
                recorder.write(batch)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(r,)) for r in recorders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for recorder in recorders:
        recorder.close()
    assert errors == []
    assert rows(db, "SELECT COUNT(DISTINCT run), COUNT(*) FROM events") == [(4, 4 * runs * 5)]
    assert rows(db, "SELECT COUNT(*) FROM fills") == [(4,)]  # one trade id per run, kept per run
    assert rows(db, "SELECT COUNT(*) FROM runs") == [(4,)]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_the_run_id_can_be_given(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r.db", run_id="my-run")
    recorder.write(a_run())
    recorder.close()
    assert {o["run"] for o in read_orders(tmp_path / "r.db")} == {"my-run"}


V1_SCHEMA = """
CREATE TABLE meta (version INTEGER NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, time REAL NOT NULL, strategy TEXT NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE orders (
    client_order_id TEXT PRIMARY KEY, strategy TEXT NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, type TEXT NOT NULL, quantity TEXT NOT NULL, price TEXT,
    state TEXT NOT NULL, filled_quantity TEXT NOT NULL, average_price TEXT,
    exchange_order_id TEXT, reason TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX orders_by_strategy ON orders (strategy, created_at);
CREATE TABLE fills (
    trade_id TEXT NOT NULL, client_order_id TEXT NOT NULL, strategy TEXT NOT NULL,
    symbol TEXT NOT NULL, side TEXT NOT NULL, quantity TEXT NOT NULL, price TEXT NOT NULL,
    fee TEXT NOT NULL, fee_asset TEXT NOT NULL, time REAL NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (symbol, trade_id)
);
CREATE INDEX fills_by_order ON fills (client_order_id);
CREATE TABLE positions (
    seq INTEGER PRIMARY KEY, time REAL NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL,
    quantity TEXT NOT NULL, average_price TEXT NOT NULL, mark_price TEXT NOT NULL,
    realised_pnl TEXT NOT NULL, unrealised_pnl TEXT NOT NULL, fees TEXT NOT NULL
);
CREATE INDEX positions_latest ON positions (strategy, symbol, seq);
CREATE TABLE commands (
    seq INTEGER PRIMARY KEY, time REAL NOT NULL, strategy TEXT NOT NULL, command TEXT NOT NULL,
    source TEXT NOT NULL, ok INTEGER NOT NULL, message TEXT NOT NULL
);
INSERT INTO meta VALUES (1);
INSERT INTO events VALUES (1, 10.0, 'sma', 'OrderSubmitted', '{}'),
    (2, 11.0, 'sma', 'OrderFilled', '{}');
INSERT INTO orders VALUES ('o-late', 'sma', 'BTCUSDT', 'buy', 'market', '1', NULL, 'filled', '1',
    '100', 'x1', NULL, 20.0, 21.0, 2), ('o-early', 'sma', 'BTCUSDT', 'buy', 'market', '1', NULL,
    'new', '0', NULL, NULL, NULL, 10.0, 10.0, 1);
INSERT INTO fills VALUES ('t1', 'o-late', 'sma', 'BTCUSDT', 'buy', '1', '100', '0.1', 'USDT',
    21.0, 2);
INSERT INTO positions VALUES (3, 21.0, 'sma', 'BTCUSDT', '1', '100', '101', '0', '1', '0.1');
INSERT INTO commands VALUES (4, 22.0, 'sma', 'status', 'stdin', 1, 'ok');
"""


def v1_database(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.close()
    return path


def test_a_schema_1_database_is_refused_by_readers_and_migrated_by_a_recorder(
    tmp_path: Path,
) -> None:
    db = v1_database(tmp_path / "old.db")
    with pytest.raises(ValueError, match=r"older trio-trade \(schema 1\).*upgrades it"):
        read_orders(db)
    recorder = Recorder(db)  # migrates in place, then records this run next to the old rows
    recorder.write(a_run())
    recorder.close()
    assert rows(db, "SELECT version FROM meta") == [(SCHEMA_VERSION,)]
    assert [(o["run"], o["client_order_id"]) for o in read_orders(db)] == [
        (LEGACY_RUN, "o-early"), (LEGACY_RUN, "o-late"),  # as version 1 listed them
        (recorder.run_id, "tt-sma-000001-run"), (recorder.run_id, "tt-sma-000002-run"),
    ]
    old = read_orders(db)[1]
    assert (old["state"], old["average_price"], old["exchange_order_id"]) == (
        "filled", D("100"), "x1"
    )
    assert [f["trade_id"] for f in read_fills(db)] == ["t1", "t1"]
    assert rows(db, "SELECT run, seq FROM events WHERE run = 'schema-1' ORDER BY id") == [
        (LEGACY_RUN, 1), (LEGACY_RUN, 2)
    ]
    assert rows(db, "SELECT COUNT(*) FROM commands") == [(2,)]
    assert len(read_positions(db, latest=False)) == 2
    assert rows(db, "SELECT run FROM runs ORDER BY id") == [(LEGACY_RUN,), (recorder.run_id,)]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_a_failed_migration_changes_nothing(tmp_path: Path) -> None:
    db = v1_database(tmp_path / "old.db")
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE runs (x)")  # in the way of the migration
    before = rows(db, "SELECT name FROM sqlite_master ORDER BY name")
    with pytest.raises(sqlite3.OperationalError, match="runs already exists"):
        Recorder(db)
    assert rows(db, "SELECT name FROM sqlite_master ORDER BY name") == before
    assert rows(db, "SELECT version FROM meta") == [(1,)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a database at all" * 100, "is not a trio-trade database"),
        (b"", "is not a trio-trade database (no meta table)"),
    ],
)
def test_readers_refuse_a_file_that_is_not_a_database(
    tmp_path: Path, content: bytes, message: str
) -> None:
    db = tmp_path / "notes.txt"
    db.write_bytes(content)
    for reader in (read_orders, read_fills, read_positions):
        with pytest.raises(ValueError, match=re.escape(f"{db} {message}")):
            reader(db)
    assert db.read_bytes() == content
