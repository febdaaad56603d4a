"""What crosses to an isolated strategy's child: its configuration, and nothing that holds a socket.

The rules this module keeps (DESIGN.md rule 9):

* :class:`ChildConfig` is plain data: the class by reference (module and qualified name), the
  import path the parent had, the strategy's name, interval, symbols and parameter values. The
  child rebuilds the strategy from it (:func:`build_strategy`); it never receives an object that
  holds a connection.
* A class that cannot be found again by reference (defined inside a function, or in a script's
  ``__main__``) is refused in the parent, with a message saying why, before any process starts.
* Parameters must pickle; one that does not is named in the error.
"""

from __future__ import annotations

import importlib
import pickle
import sys
from typing import Any

import attrs

from trading.runtime.strategy import Strategy, StrategySpec

__all__ = ["ChildConfig", "IsolationError", "build_strategy", "config_for", "reference_of"]


class IsolationError(ValueError):
    """A strategy that cannot be run in its own process as given; the message says why."""


@attrs.frozen(slots=True)
class ChildConfig:
    """Everything the child needs to build the strategy; plain, picklable data."""

    module: str
    qualname: str
    name: str
    interval: str
    symbols: tuple[str, ...]
    params: dict[str, Any]
    sys_path: tuple[str, ...]
    cancel_deadline: float


def reference_of(cls: type[Strategy]) -> tuple[str, str]:
    """``(module, qualname)`` of the first class in ``cls``'s MRO that can be imported again by
    name (a subclass made at run time, like ``--symbol``'s, is rebuilt in the child)."""
    for klass in cls.__mro__:
        if klass is Strategy or not issubclass(klass, Strategy):
            break
        module = sys.modules.get(klass.__module__)
        if klass.__module__ == "__main__" or module is None or "<locals>" in klass.__qualname__:
            continue
        found: object = module
        for part in klass.__qualname__.split("."):
            found = getattr(found, part, None)
        if found is klass:
            return klass.__module__, klass.__qualname__
    raise IsolationError(
        f"{cls.__module__}.{cls.__qualname__} cannot be isolated: its process imports the class "
        "by name, so define it at the top level of a module or strategy file"
    )


def config_for(
    spec: StrategySpec, params: dict[str, Any], *, cancel_deadline: float
) -> ChildConfig:
    """The child's configuration for ``spec`` with these parameter values; IsolationError if a
    parameter does not pickle or the class cannot be found by reference."""
    module, qualname = reference_of(spec.cls)
    for key, value in params.items():
        try:
            pickle.dumps(value)
        except Exception as exc:
            raise IsolationError(
                f"{spec.name}: parameter {key}={value!r} cannot be sent to the strategy's "
                f"process: {type(exc).__name__}: {exc}"
            ) from None
    return ChildConfig(
        module=module,
        qualname=qualname,
        name=spec.name,
        interval=spec.interval.text,
        symbols=spec.symbols,
        params=dict(params),
        sys_path=tuple(sys.path),
        cancel_deadline=cancel_deadline,
    )


def build_strategy(config: ChildConfig) -> Strategy:
    """In the child: import the class, apply the parent's symbols and interval, and construct it
    with the parent's parameter values. Raises IsolationError naming what could not be found."""
    for entry in config.sys_path:
        if entry not in sys.path:
            sys.path.append(entry)
    try:
        found: object = importlib.import_module(config.module)
    except Exception as exc:
        raise IsolationError(
            f"cannot import {config.module!r} in the strategy's process: {type(exc).__name__}: "
            f"{exc}"
        ) from None
    for part in config.qualname.split("."):
        found = getattr(found, part, None)
    if not (isinstance(found, type) and issubclass(found, Strategy)):
        raise IsolationError(f"{config.module}:{config.qualname} is not a Strategy class")
    cls: type[Strategy] = found
    if tuple(cls.symbols) != config.symbols or str(cls.interval) != config.interval:
        cls = type(
            cls.__name__,
            (cls,),
            {"symbols": config.symbols, "interval": config.interval, "__module__": cls.__module__},
        )
    return cls(**config.params)
