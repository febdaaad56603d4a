"""The simulator's core modules import no trio and no IO library (they are sans-IO, like h11).

Same harness as ``tests/core/test_core_purity.py``: each module is imported alone in a fresh
interpreter with bare ``trading`` and ``trading.simulator`` packages registered (their
``__init__`` not run: the package also exports the server, which is trio), then ``sys.modules``
is searched for the forbidden names.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import trading

PACKAGE_DIR = Path(trading.__file__).resolve().parent
FORBIDDEN = ("trio", "asyncio", "httpx", "httpx2", "websockets", "socket", "trio_parallel", "h11")
CORE = ("account", "book", "engine", "market", "orders", "resting", "symbols", "validation")

_PROBE = textwrap.dedent(
    """
    import importlib, json, sys, types
    for name, path in (("trading", {package_dir!r}), ("trading.simulator", {sim_dir!r})):
        package = types.ModuleType(name)
        package.__path__ = [path]
        sys.modules[name] = package
    importlib.import_module({module!r})
    forbidden = {forbidden!r}
    found = sorted(
        name for name in sys.modules
        if name in forbidden or name.split(".")[0] in forbidden
    )
    print(json.dumps(found))
    """
)


def forbidden_imports(module: str) -> list[str]:
    code = _PROBE.format(
        package_dir=str(PACKAGE_DIR),
        sim_dir=str(PACKAGE_DIR / "simulator"),
        module=module,
        forbidden=FORBIDDEN,
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"importing {module} failed:\n{result.stderr}"
    found: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


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
