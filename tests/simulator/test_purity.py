"""The simulator's core modules import no trio and no IO library (they are sans-IO, like h11).

Same harness as ``tests/core/test_core_purity.py``: each module is imported alone in a fresh
interpreter with bare ``trading`` and ``trading.simulator`` packages registered (their
``__init__`` not run: the package also exports the server, which is trio), then ``sys.modules``
is searched for the forbidden names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import trading
from tests.core.test_core_purity import forbidden_imports as core_probe

PACKAGE_DIR = Path(trading.__file__).resolve().parent
FORBIDDEN = ("trio", "asyncio", "httpx", "httpx2", "websockets", "socket", "trio_parallel", "h11")
CORE = ("account", "book", "engine", "market", "orders", "resting", "symbols", "validation")

def forbidden_imports(module: str) -> list[str]:
    return core_probe(module, bare=("trading", "trading.simulator"), forbidden=FORBIDDEN)


def test_every_core_module_is_listed() -> None:
    present = {p.stem for p in (PACKAGE_DIR / "simulator").glob("*.py")}
    assert set(CORE) <= present


def test_the_simulator_core_imports_no_trio_and_no_io() -> None:
    # One interpreter for all modules keeps the suite fast; a leak names itself below.
    found = forbidden_imports("trading.simulator.engine")
    assert not found, f"the simulator core imports {', '.join(found)}"


@pytest.mark.parametrize("module", ["book", "market", "orders", "resting", "symbols", "validation"])
def test_leaf_modules_import_no_trio_and_no_io(module: str) -> None:
    found = forbidden_imports(f"trading.simulator.{module}")
    assert not found, f"trading.simulator.{module} imports {', '.join(found)}"


def test_the_check_catches_a_trio_module() -> None:
    assert "trio" in forbidden_imports("trading.runtime.clock")
