"""Bad input is answered, never fatal: a class the child cannot import, a parameter that does
not pickle, a frame that is not one."""

from __future__ import annotations

import pickle
import sys
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trading
from tests.isolation.helpers import Watched, isolated_children, real_time_runner
from tests.isolation.strategies import Trader
from trading.isolation import ChildDied, IsolationError, isolate
from trading.isolation.framing import MAX_FRAME, FrameError, FrameReader, dumps, loads_plain


def test_a_class_defined_in_a_function_is_refused_before_any_process_starts() -> None:
    class Local(trading.Strategy):
        async def next(self, ctx: trading.Context) -> None:
            pass

    with pytest.raises(IsolationError, match="define it at the top level of a module"):
        isolate(Local())


@attrs.define
class Locked(trading.Strategy):
    """A parameter that cannot cross to another process."""

    lock: Any = attrs.field(factory=threading.Lock)

    async def next(self, ctx: trading.Context) -> None:
        pass


def test_an_unpicklable_parameter_is_named() -> None:
    with pytest.raises(IsolationError, match=r"parameter lock=<unlocked _thread.lock"):
        isolate(Locked())


async def test_a_strategy_the_child_cannot_import_fails_its_add_and_nothing_else(
    tmp_path: Path,
) -> None:
    (tmp_path / "vanishing.py").write_text(
        "import trading\n\nclass Vanishing(trading.Strategy):\n"
        "    async def next(self, ctx):\n        pass\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import vanishing  # type: ignore[import-not-found]

        strategy = isolate(vanishing.Vanishing())
    finally:
        sys.path.remove(str(tmp_path))
    (tmp_path / "vanishing.py").unlink()
    watched = Watched()
    async with real_time_runner(watched) as runner:
        await runner.add(isolate(Trader()), name="fine")
        with pytest.raises(ChildDied) as caught:
            await runner.add(strategy, name="vanishing")
        assert str(caught.value) == (
            "IsolationError: cannot import 'vanishing' in the strategy's process: "
            "ModuleNotFoundError: No module named 'vanishing'"
        )
        assert runner["fine"].state is trading.StrategyState.SLEEPING
        assert len(isolated_children()) == 1  # only "fine"'s
    sys.modules.pop("vanishing", None)


@attrs.define
class BadStart(trading.Strategy):
    """on_start refuses with a ValueError: isolated, it must read the same."""

    interval = "1d"

    async def on_start(self, ctx: trading.Context) -> None:
        raise ValueError("no model file at /nowhere")

    async def next(self, ctx: trading.Context) -> None:
        pass


async def test_an_on_start_error_reads_as_in_process() -> None:
    errors = []
    for strategy in (BadStart(), isolate(BadStart())):
        async with real_time_runner(Watched()) as runner:
            with pytest.raises(ValueError) as caught:
                await runner.add(strategy, name="bad")
            errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1] == (ValueError, "no model file at /nowhere")
    assert not isolated_children()


# -- framing ---------------------------------------------------------------------------------

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.binary()
    | st.decimals(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(messages=st.lists(plain, min_size=1, max_size=5), cuts=st.lists(st.integers(1, 40)))
def test_frames_survive_any_chunking(messages: list[object], cuts: list[int]) -> None:
    data = b"".join(dumps(m) for m in messages)

    async def main() -> list[object]:
        send, receive = trio.testing.memory_stream_one_way_pair()
        reader = FrameReader(receive, loads_plain)
        rest, sizes = data, iter(cuts)
        while rest:
            size = next(sizes, len(rest))
            await send.send_all(rest[:size])
            rest = rest[size:]
        await send.aclose()
        got = [await reader.receive() for _ in messages]
        with pytest.raises(EOFError):
            await reader.receive()
        return got

    assert trio.run(main) == messages


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x00\x00", "channel closed in the middle of a frame header"),
        (b"\x00\x00\x00\x09abc", "channel closed in the middle of a frame body"),
        ((MAX_FRAME + 1).to_bytes(4, "big"), "over the 16777216-byte limit"),
        (b"\x00\x00\x00\x03abc", "frame does not unpickle"),
        (dumps(trio.Event)[:], "frame names trio.Event"),
    ],
)
def test_a_malformed_frame_is_a_frame_error_naming_it(data: bytes, error: str) -> None:
    async def main() -> None:
        send, receive = trio.testing.memory_stream_one_way_pair()
        await send.send_all(data)
        await send.aclose()
        with pytest.raises(FrameError, match=error):
            await FrameReader(receive, loads_plain).receive()

    trio.run(main)


def test_only_plain_data_is_unpickled_in_the_parent() -> None:
    assert loads_plain(pickle.dumps({"a": (1, 2.5, None)})) == {"a": (1, 2.5, None)}
    with pytest.raises(FrameError, match=r"frame names posix\.system"):
        loads_plain(b"cposix\nsystem\n(S'touch /tmp/pwned'\ntR.")
    with pytest.raises(FrameError, match=r"over the 10-byte frame limit"):
        dumps("x" * 100, limit=10)
