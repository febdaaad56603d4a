"""An isolated strategy, as the parent's StrategyRunner sees it: a Strategy whose hooks run
elsewhere.

The rules this module keeps (DESIGN.md rules 1, 2, 5 and 9):

* :func:`isolate` returns an instance of a subclass of the strategy's own class whose
  ``on_start``, ``next``, ``on_stop`` and ``on_command`` are forwarded to a child process
  (:class:`~trading.isolation.process.ChildProcess`). Everything else is the in-process code:
  the same StrategyRunner, mailbox, command machine, phase scopes, restarts, replies and audit
  events. Parameters live in the parent's instance (``set`` validates and applies them there,
  ``status`` shows them) and are sent with every call.
* ``on_start`` starts the child and ``on_stop`` ends it; a failed or cancelled ``on_start``
  ends it too, so no path leaves a process running. A restart builds a fresh instance, which
  starts a fresh child.
* The parent builds the instance (the class's ``__init__`` and validators run here) but never
  runs its hooks: a segfault, a leak or a CPU hog in them stays in the child.
"""

from __future__ import annotations

import weakref
from typing import Any, ClassVar

import attrs

from trading.core.commands import Command
from trading.core.params import param_values
from trading.isolation.process import ChildProcess
from trading.isolation.reference import IsolationError, config_for, reference_of
from trading.runtime.strategy import Context, Strategy, inspect_strategy

__all__ = ["IsolatedStrategy", "is_isolated", "isolate"]

DEFAULT_CANCEL_DEADLINE = 1.0


class IsolatedStrategy(Strategy):
    """The forwarding hooks; placed first in the MRO of the per-class proxy subclass."""

    _isolation_deadline: ClassVar[float] = DEFAULT_CANCEL_DEADLINE
    _isolated_base: ClassVar[type[Strategy]]

    @property
    def child(self) -> ChildProcess | None:
        """The running child of this start, if any."""
        child: ChildProcess | None = self.__dict__.get("_child")
        return child

    async def on_start(self, ctx: Context) -> None:
        spec = inspect_strategy(self._isolated_base, name=ctx.name)
        config = config_for(spec, param_values(self), cancel_deadline=self._isolation_deadline)
        child = await ChildProcess.start(config)
        self.__dict__["_child"] = child
        try:
            await child.call("on_start", ctx, param_values(self))
        except BaseException:
            self.__dict__["_child"] = None
            await child.close()
            raise

    async def next(self, ctx: Context) -> None:
        await self._live_child().call("next", ctx, param_values(self))

    async def on_stop(self, ctx: Context) -> None:
        child = self.child
        if child is None:
            return
        try:
            if child.broken is None:
                await child.call("on_stop", ctx, param_values(self))
        finally:
            self.__dict__["_child"] = None
            await child.close(grace=0.5)

    async def on_command(self, ctx: Context, command: Command) -> str:
        reply = await self._live_child().call("on_command", ctx, param_values(self), command)
        return str(reply)

    def _live_child(self) -> ChildProcess:
        child = self.child
        if child is None:
            raise RuntimeError(f"{type(self).__name__} has no running process")
        return child


_PROXIES: weakref.WeakKeyDictionary[type[Strategy], dict[float, type[Strategy]]] = (
    weakref.WeakKeyDictionary()
)


def _proxy_class(cls: type[Strategy], cancel_deadline: float) -> type[Strategy]:
    per_class = _PROXIES.setdefault(cls, {})
    proxy = per_class.get(cancel_deadline)
    if proxy is None:
        reference_of(cls)  # refuse at once a class the child could not import
        namespace: dict[str, Any] = {
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "_isolation_deadline": cancel_deadline,
            "_isolated_base": cls,
            "name": cls.name or inspect_strategy(cls).name,
        }
        proxy = per_class[cancel_deadline] = type(cls.__name__, (IsolatedStrategy, cls), namespace)
    return proxy


def is_isolated(strategy: Strategy) -> bool:
    return isinstance(strategy, IsolatedStrategy)


def isolate(strategy: Strategy, *, cancel_deadline: float = DEFAULT_CANCEL_DEADLINE) -> Strategy:
    """``strategy`` (its class and current parameters) to run in its own process.

    Add the result to a Runner as usual. ``cancel_deadline`` is how many real seconds a pause
    or stop waits for the child's compute to yield before the child is killed (a failure,
    restarted with the usual backoff). Raises IsolationError for a class the child could not
    import by name or a parameter that does not pickle.
    """
    if is_isolated(strategy):
        return strategy
    if cancel_deadline <= 0:
        raise IsolationError(f"cancel_deadline must be above 0, not {cancel_deadline!r}")
    cls = type(strategy)
    proxy = _proxy_class(cls, cancel_deadline)
    spec = inspect_strategy(cls)
    config_for(spec, param_values(strategy), cancel_deadline=cancel_deadline)  # params pickle?
    if attrs.has(cls):
        values = {a.alias: getattr(strategy, a.name) for a in attrs.fields(cls) if a.init}
        return proxy(**values)
    return proxy()
