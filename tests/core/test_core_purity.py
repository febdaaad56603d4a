"""The core modules import no trio and no IO library (DESIGN.md: "a test keeps it so").

Each module is imported alone in a fresh interpreter, and then ``sys.modules`` is searched for the
forbidden names. ``trading/__init__.py`` re-exports the runtime (Runner, VirtualClock, ...) and so
imports trio itself; to test what a *core module* pulls in, the subprocess first registers a bare
``trading`` package (same ``__path__``, ``__init__`` not run) and then imports the module.
``test_the_check_catches_a_runtime_module`` proves the harness can fail.
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

FORBIDDEN = ("trio", "asyncio", "httpx", "httpx2", "websockets", "socket", "trio_parallel")

# Every module in the folder, found rather than listed: a new core module is checked the day it
# lands.
CORE = sorted(
    f"trading.core.{path.stem}"
    for path in (PACKAGE_DIR / "core").glob("*.py")
    if path.stem != "__init__"
)

_PROBE = textwrap.dedent(
    """
    import importlib, json, sys, types
    for name, path in {bare!r}:
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


def forbidden_imports(
    module: str,
    *,
    bare: tuple[str, ...] = ("trading",),
    forbidden: tuple[str, ...] = FORBIDDEN,
) -> list[str]:
    """What importing ``module`` alone, in a fresh interpreter, pulls in of ``forbidden``; the
    ``bare`` packages are made empty (their ``__init__`` is not run), so only the module's own
    imports count."""
    packages = [(name, str(PACKAGE_DIR.parent / name.replace(".", "/"))) for name in bare]
    code = _PROBE.format(bare=packages, module=module, forbidden=forbidden)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"importing {module} failed:\n{result.stderr}"
    found: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_the_folder_holds_the_core() -> None:
    assert len(CORE) >= 10, CORE


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_trio_and_no_io(module: str) -> None:
    found = forbidden_imports(module)
    assert not found, f"{module} imports {', '.join(found)} (core modules must stay sans-IO)"


def test_the_check_catches_a_runtime_module() -> None:
    # trading.runtime.clock imports trio: the probe must see it, or the test above is blind.
    assert "trio" in forbidden_imports("trading.runtime.clock")
