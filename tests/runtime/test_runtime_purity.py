"""The runtime picks no edges: no module of trading/runtime imports a market, a broker, an
observer or the CLI (DESIGN.md, layout: only the composition roots choose defaults).

Each module is imported alone in a fresh interpreter with bare ``trading``, ``trading.exchanges``
and ``trading.observers`` packages (same ``__path__``, ``__init__`` not run: those re-export the
edges on purpose), then ``sys.modules`` is searched. The protocols in
``trading.exchanges.base`` are allowed: the runtime is written against them.
``test_the_check_catches_an_edge_import`` proves the harness can fail.
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

RUNTIME = sorted(
    f"trading.runtime.{path.stem}"
    for path in (PACKAGE_DIR / "runtime").glob("*.py")
    if path.stem != "__init__"
)

_PROBE = textwrap.dedent(
    """
    import importlib, json, sys, types
    sys.path.insert(0, {extra_path!r})
    for name in ("trading", "trading.exchanges", "trading.observers"):
        package = types.ModuleType(name)
        package.__path__ = [{package_dir!r} + name[len("trading"):].replace(".", "/")]
        sys.modules[name] = package
    importlib.import_module({module!r})
    found = sorted(
        name for name in sys.modules
        if (name.startswith("trading.exchanges.") and name != "trading.exchanges.base")
        or name.startswith(("trading.observers.", "trading.testing"))
        or name in ("trading.cli", "trading.loader")
    )
    print(json.dumps(found))
    """
)


def edge_imports(module: str, extra_path: Path | None = None) -> list[str]:
    code = _PROBE.format(
        package_dir=str(PACKAGE_DIR), module=module, extra_path=str(extra_path or PACKAGE_DIR)
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"importing {module} failed:\n{result.stderr}"
    found: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_the_folder_holds_the_runtime() -> None:
    assert {"trading.runtime.runner", "trading.runtime.bus"} <= set(RUNTIME)


@pytest.mark.parametrize("module", RUNTIME)
def test_runtime_module_imports_no_edge(module: str) -> None:
    found = edge_imports(module)
    assert not found, f"{module} imports {', '.join(found)} (the runtime must not pick edges)"


def test_the_check_catches_an_edge_import(tmp_path: Path) -> None:
    # a module that picks edges, as the Runner used to: the probe must see them
    (tmp_path / "picks_edges.py").write_text(
        "import trading.runtime.runner\n"
        "from trading.exchanges.sim import SimulatedMarket\n"
        "from trading.observers.log import LogObserver\n"
    )
    found = edge_imports("picks_edges", tmp_path)
    assert found == ["trading.exchanges.sim", "trading.observers.log"]
