"""Finding strategies by name: ``sma_cross`` is ``strategies/sma_cross.py``.

A reference is ``NAME`` (a file in the strategies folder), ``NAME:Class`` (a class in that file),
or ``package.module:Class`` (anything importable). Strategy files are imported under their own
module name with the folder on ``sys.path``, so worker processes (``ctx.run_in_process``) can
import the functions they define by reference, as pickling requires.

A strategy file that does not import (a syntax error, a missing module, an exception at module
level) raises :class:`StrategyLoadError`: one line naming the file, the line and the error, which
is what the CLI prints (exit 2), without a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from types import ModuleType

import attrs

from trading.runtime.strategy import (
    Strategy,
    StrategyDefinitionError,
    StrategySpec,
    default_name,
    inspect_strategy,
)

__all__ = ["StrategyLoadError", "StrategyNotFound", "available", "load"]


class StrategyNotFound(LookupError):
    """No strategy by that name; the message lists the ones that exist."""


class StrategyLoadError(StrategyDefinitionError):
    """A strategy file raised while it was imported; the message is ``file:line: error``."""


def _import_failure(path: Path, exc: BaseException) -> StrategyLoadError:
    """``path:line: what`` for an exception raised while importing ``path``.

    A syntax error names its own file and line (possibly a module the strategy imports); any
    other error is placed at the deepest line of the strategy file in its traceback.
    """
    what = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename or path}:{exc.lineno or '?'}"
        what = f"{type(exc).__name__}: {exc.msg}"
    else:
        target = str(path.resolve())
        lines = [
            frame.lineno
            for frame in traceback.extract_tb(exc.__traceback__)
            if frame.filename and str(Path(frame.filename).resolve()) == target
        ]
        where = f"{path}:{lines[-1] if lines else '?'}"
    return StrategyLoadError(f"{where}: cannot load the strategy: {what}")


@attrs.frozen(slots=True)
class Listing:
    """One file of the strategies folder: its spec, or why it cannot be loaded."""

    name: str
    path: Path
    spec: StrategySpec | None
    error: str | None


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))


def _import_file(path: Path) -> ModuleType:
    module_name = path.stem
    existing = sys.modules.get(module_name)
    if existing is not None:
        if Path(getattr(existing, "__file__", "") or "").resolve() == path.resolve():
            return existing
        raise StrategyDefinitionError(
            f"{path}: the module name {module_name!r} is already taken by {existing!r}; "
            "rename the strategy file"
        )
    try:
        elsewhere = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        elsewhere = None
    origin = getattr(elsewhere, "origin", None)
    if elsewhere is not None and origin and Path(origin).resolve() != path.resolve():
        raise StrategyDefinitionError(
            f"{path}: a strategy file named {module_name!r} would shadow the module of that name "
            f"({origin}); rename the strategy file"
        )
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.append(folder)
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise _import_failure(path, exc) from exc
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _strategy_classes(module: ModuleType) -> list[type[Strategy]]:
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Strategy) and obj is not Strategy and obj.__module__ == module.__name__
    ]


def _pick(module: ModuleType, class_name: str | None, where: str) -> type[Strategy]:
    if class_name is not None:
        cls = getattr(module, class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            found = ", ".join(c.__name__ for c in _strategy_classes(module)) or "none"
            raise StrategyNotFound(f"{where} has no Strategy class {class_name!r}; it has: {found}")
        return cls
    classes = _strategy_classes(module)
    if len(classes) == 1:
        return classes[0]
    if not classes:
        raise StrategyDefinitionError(f"{where} defines no subclass of trading.Strategy")
    names = ", ".join(c.__name__ for c in classes)
    raise StrategyDefinitionError(
        f"{where} defines several strategies ({names}); name one as {Path(where).stem}:CLASS"
    )


def available(directory: Path) -> list[Listing]:
    """Every strategy file in ``directory``; files that fail to load are listed with the reason."""
    listings = []
    for path in _files(directory):
        try:
            cls = _pick(_import_file(path), None, str(path))
            spec: StrategySpec | None = inspect_strategy(cls, name=cls.name or path.stem)
            error = None
        except StrategyLoadError as exc:
            spec, error = None, str(exc)  # already says where and what
        except Exception as exc:
            spec, error = None, f"{type(exc).__name__}: {exc}"
        listings.append(Listing(path.stem, path, spec, error))
    return listings


def load(reference: str, directory: Path) -> StrategySpec:
    """Resolve a reference to a checked StrategySpec; errors say what exists instead."""
    module_part, _, class_name = reference.partition(":")
    path = directory / f"{module_part}.py"
    if path.is_file():
        cls = _pick(_import_file(path), class_name or None, str(path))
        # A named class is one of several in the file: name it after the class, not the file.
        return inspect_strategy(
            cls, name=cls.name or (default_name(cls) if class_name else path.stem)
        )
    if class_name and "." in module_part:
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise StrategyNotFound(f"cannot import {module_part!r}: {exc}") from None
        cls = _pick(module, class_name, module_part)
        return inspect_strategy(cls)
    names = [p.stem for p in _files(directory)]
    where = f"{directory}/" if directory.is_dir() else f"{directory}/ (no such folder)"
    known = ", ".join(names) if names else "none"
    raise StrategyNotFound(f"no strategy {reference!r} in {where}; available: {known}")
