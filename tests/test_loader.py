"""Tests for finding strategies by name: files in a folder, NAME:Class, package.module:Class.

The loader registers strategy files in ``sys.modules`` under their file stem and appends their
folder to ``sys.path``; every test uses unique stems and the ``isolated`` fixture undoes both.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from trading.core.bars import Interval
from trading.loader import StrategyNotFound, available, load
from trading.runtime.strategy import StrategyDefinitionError

REPO = Path(__file__).resolve().parents[1]

GOOD = '''
from __future__ import annotations
import attrs
import trading

@attrs.define
class {cls}(trading.Strategy):
    """{doc}

    More detail.
    """
    interval = "{interval}"
    symbols = ("ETHUSDT",)
    fast: int = 3

    async def next(self, ctx: trading.Context) -> None:
        pass
'''

TWO = '''
import trading

class Fast(trading.Strategy):
    """Fast one."""
    interval = "1m"
    async def next(self, ctx):
        pass

class Slow(trading.Strategy):
    """Slow one."""
    interval = "1h"
    async def next(self, ctx):
        pass
'''


def unique(stem: str) -> str:
    return f"{stem}_{uuid.uuid4().hex[:10]}"


def write(directory: Path, stem: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.py"
    path.write_text(textwrap.dedent(source))
    return path


def good(cls: str = "Thing", doc: str = "Does a thing.", interval: str = "5m") -> str:
    return GOOD.format(cls=cls, doc=doc, interval=interval)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    roots = (str(tmp_path), str(REPO / "strategies"))
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None) or ""
        if file.startswith(roots) or name.startswith("trading_testpkg"):
            del sys.modules[name]


@pytest.fixture
def strategies(tmp_path: Path) -> Path:
    directory = tmp_path / "strategies"
    directory.mkdir()
    return directory


# -- available ------------------------------------------------------------------------------------


def test_available_lists_files_with_interval_and_description(strategies: Path) -> None:
    a, b = unique("alpha"), unique("beta")
    write(strategies, a, good(cls="Alpha", doc="First strategy.", interval="5m"))
    write(strategies, b, good(cls="Beta", doc="Second strategy.", interval="4h"))
    listings = {item.name: item for item in available(strategies)}
    assert set(listings) == {a, b}
    assert listings[a].error is None
    assert listings[a].spec is not None
    assert listings[a].spec.interval == Interval.parse("5m")
    assert listings[a].spec.description == "First strategy."
    assert listings[a].spec.name == a  # the file stem names it
    assert listings[a].path == strategies / f"{a}.py"
    assert listings[b].spec is not None
    assert listings[b].spec.interval == Interval.parse("4h")
    assert listings[b].spec.description == "Second strategy."


def test_available_is_sorted_and_skips_private_and_non_python_files(strategies: Path) -> None:
    stems = sorted(unique(s) for s in ("c", "a", "b"))
    for stem in stems:
        write(strategies, stem, good())
    write(strategies, unique("_helper"), "raise RuntimeError('must not be imported')\n")
    (strategies / "notes.txt").write_text("not python")
    assert [item.name for item in available(strategies)] == stems


def test_available_lists_broken_files_with_their_error(strategies: Path) -> None:
    ok, syntax, interval, empty = (unique(s) for s in ("ok", "syntax", "interval", "empty"))
    write(strategies, ok, good())
    write(strategies, syntax, "def broken(:\n    pass\n")
    write(strategies, interval, good(interval="15x"))
    write(strategies, empty, "x = 1\n")
    listings = {item.name: item for item in available(strategies)}
    assert listings[ok].spec is not None and listings[ok].error is None

    assert listings[syntax].spec is None
    assert listings[syntax].error is not None
    assert listings[syntax].error == (
        f"{strategies / syntax}.py:1: cannot load the strategy: SyntaxError: invalid syntax"
    )
    assert syntax not in sys.modules  # a failed import is not left half-registered

    assert listings[interval].spec is None
    assert listings[interval].error is not None
    assert listings[interval].error.startswith("StrategyDefinitionError")
    assert "'15x'" in listings[interval].error

    assert listings[empty].spec is None
    assert listings[empty].error is not None
    assert "defines no subclass of trading.Strategy" in listings[empty].error


def test_available_lists_a_file_with_two_strategies_as_an_error(strategies: Path) -> None:
    stem = unique("pair")
    write(strategies, stem, TWO)
    (item,) = available(strategies)
    assert item.spec is None
    assert item.error is not None
    assert f"{stem}:CLASS" in item.error


def test_available_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert available(tmp_path / "nope") == []


# -- load -----------------------------------------------------------------------------------------


def test_load_by_name(strategies: Path) -> None:
    stem = unique("solo")
    write(strategies, stem, good(cls="Solo", doc="Alone.", interval="1h"))
    spec = load(stem, strategies)
    assert spec.cls.__name__ == "Solo"
    assert spec.cls.__module__ == stem
    assert spec.name == stem
    assert spec.interval == Interval.parse("1h")
    assert spec.symbols == ("ETHUSDT",)
    assert spec.description == "Alone."
    # registered under its stem with its folder importable, so worker processes can import it
    assert sys.modules[stem].__file__ == str(strategies / f"{stem}.py")
    assert str(strategies.resolve()) in sys.path


def test_load_twice_reuses_the_module(strategies: Path) -> None:
    stem = unique("again")
    write(strategies, stem, good())
    assert load(stem, strategies).cls is load(stem, strategies).cls


def test_name_class_attribute_wins_over_stem(strategies: Path) -> None:
    stem = unique("named")
    write(
        strategies,
        stem,
        """
        import trading

        class Named(trading.Strategy):
            name = "the_name"

            async def next(self, ctx):
                pass
        """,
    )
    assert load(stem, strategies).name == "the_name"


def test_load_name_class_picks_one_of_two(strategies: Path) -> None:
    stem = unique("pair")
    write(strategies, stem, TWO)
    fast = load(f"{stem}:Fast", strategies)
    slow = load(f"{stem}:Slow", strategies)
    assert (fast.cls.__name__, fast.interval.text, fast.description) == ("Fast", "1m", "Fast one.")
    assert (slow.cls.__name__, slow.interval.text, slow.description) == ("Slow", "1h", "Slow one.")


def test_two_classes_from_one_file_get_distinct_names(strategies: Path) -> None:
    stem = unique("pair")
    write(strategies, stem, TWO)
    assert load(f"{stem}:Fast", strategies).name != load(f"{stem}:Slow", strategies).name


def test_two_strategies_without_a_class_name_suggests_name_class(strategies: Path) -> None:
    stem = unique("pair")
    write(strategies, stem, TWO)
    with pytest.raises(StrategyDefinitionError) as info:
        load(stem, strategies)
    message = str(info.value)
    assert "Fast" in message and "Slow" in message
    assert f"{stem}:CLASS" in message


def test_unknown_class_in_a_file_lists_the_classes(strategies: Path) -> None:
    stem = unique("pair")
    write(strategies, stem, TWO)
    with pytest.raises(StrategyNotFound) as info:
        load(f"{stem}:Medium", strategies)
    message = str(info.value)
    assert "'Medium'" in message
    assert "Fast" in message and "Slow" in message


def test_load_a_bad_interval_is_a_definition_error(strategies: Path) -> None:
    stem = unique("bad")
    write(strategies, stem, good(cls="Bad", interval="15x"))
    with pytest.raises(StrategyDefinitionError) as info:
        load(stem, strategies)
    assert "Bad" in str(info.value)
    assert "'15x'" in str(info.value)


def test_imported_strategies_are_not_picked_up(strategies: Path) -> None:
    # A file that imports another strategy class only defines its own.
    base = unique("base")
    child = unique("child")
    write(strategies, base, good(cls="Base"))
    write(
        strategies,
        child,
        f"""
        from {base} import Base
        import trading

        class Child(trading.Strategy):
            async def next(self, ctx):
                pass
        """,
    )
    sys.path.append(str(strategies.resolve()))
    assert load(child, strategies).cls.__name__ == "Child"


def test_module_name_clash_is_reported(strategies: Path) -> None:
    import json  # noqa: F401  (make sure the name is taken)

    write(strategies, "json", good())
    with pytest.raises(StrategyDefinitionError) as info:
        load("json", strategies)
    assert "'json' is already taken" in str(info.value)
    assert "rename the strategy file" in str(info.value)


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    root = tmp_path / "importable"
    name = unique("trading_testpkg")
    write(root / name, "__init__", "")
    write(root / name, "mod", good(cls="Packaged", doc="From a package.", interval="1d"))
    monkeypatch.syspath_prepend(str(root))
    return name


def test_load_importable_module_reference(package: str, strategies: Path) -> None:
    spec = load(f"{package}.mod:Packaged", strategies)
    assert spec.cls.__name__ == "Packaged"
    assert spec.cls.__module__ == f"{package}.mod"
    assert spec.interval == Interval.parse("1d")
    assert spec.description == "From a package."
    assert spec.name == "packaged"


def test_importable_module_without_that_class(package: str, strategies: Path) -> None:
    with pytest.raises(StrategyNotFound) as info:
        load(f"{package}.mod:Missing", strategies)
    assert "'Missing'" in str(info.value)
    assert "Packaged" in str(info.value)


def test_unimportable_module_reference(strategies: Path) -> None:
    with pytest.raises(StrategyNotFound) as info:
        load("trading_testpkg_nope.mod:Cls", strategies)
    assert "cannot import 'trading_testpkg_nope.mod'" in str(info.value)


def test_unknown_name_lists_available(strategies: Path) -> None:
    a, b = unique("one"), unique("two")
    write(strategies, a, good())
    write(strategies, b, good())
    with pytest.raises(StrategyNotFound) as info:
        load("nonesuch", strategies)
    message = str(info.value)
    assert "'nonesuch'" in message
    assert a in message and b in message
    assert str(strategies) in message


def test_unknown_name_in_an_empty_folder(strategies: Path) -> None:
    with pytest.raises(StrategyNotFound, match="available: none"):
        load("nonesuch", strategies)


def test_nonexistent_folder_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dir"
    with pytest.raises(StrategyNotFound) as info:
        load("sma_cross", missing)
    assert "(no such folder)" in str(info.value)
    assert str(missing) in str(info.value)


# -- the repository's own strategies --------------------------------------------------------------


def test_real_sma_cross() -> None:
    spec = load("sma_cross", REPO / "strategies")
    assert spec.name == "sma_cross"
    assert spec.cls.__name__ == "SmaCross"
    assert spec.interval == Interval.parse("15m")
    assert spec.symbols == ("BTCUSDT",)
    assert spec.description.startswith("Moving-average cross")
    assert spec.custom_commands == {}
    instance = spec.cls()
    assert 0 < instance.fast < instance.slow  # type: ignore[attr-defined]


def test_real_mystrategy() -> None:
    spec = load("mystrategy", REPO / "strategies")
    assert spec.name == "mystrategy"
    assert spec.cls.__name__ == "MyStrategy"
    assert spec.interval == Interval.parse("1m")
    assert spec.symbols == ("ETHUSDT",)
    assert spec.description.startswith("Template")
    assert set(spec.custom_commands) == {"note"}


def test_real_folder_lists_without_errors() -> None:
    listings = {item.name: item for item in available(REPO / "strategies")}
    assert {"sma_cross", "mystrategy"} <= set(listings)
    for name in ("sma_cross", "mystrategy"):
        assert listings[name].error is None, f"{name}: {listings[name].error}"
        assert listings[name].spec is not None


def test_a_strategy_file_may_not_shadow_an_importable_module(tmp_path: Path) -> None:
    source = "import trading\n\nclass S(trading.Strategy):\n    async def next(self, ctx): ...\n"
    (tmp_path / "statistics.py").write_text(source)
    with pytest.raises(StrategyDefinitionError, match="would shadow the module"):
        load("statistics", tmp_path)
