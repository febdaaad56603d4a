"""When to restart a failing strategy: exponential backoff under an OTP-style restart intensity.

Core module: no trio, no IO. Like Erlang/OTP supervisors, more than ``max_restarts`` failures inside
``window`` seconds means restarting is not helping, so the strategy is left ``failed`` and
reported instead of flapping forever. Between restarts the delay doubles from ``initial_delay`` up
to ``max_delay``, and resets once the strategy has run ``window`` seconds without failing.
"""

from __future__ import annotations

import math

import attrs

__all__ = ["Backoff", "RestartPolicy"]


@attrs.frozen(slots=True)
class RestartPolicy:
    max_restarts: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    window: float = attrs.field(default=3600.0, validator=attrs.validators.gt(0))
    initial_delay: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    max_delay: float = attrs.field(default=300.0, validator=attrs.validators.gt(0))
    factor: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))

    def __attrs_post_init__(self) -> None:
        if self.max_delay < self.initial_delay:
            raise ValueError(
                f"max_delay ({self.max_delay}) must not be below "
                f"initial_delay ({self.initial_delay})"
            )


@attrs.define
class Backoff:
    """The failure history of one strategy under a :class:`RestartPolicy`."""

    policy: RestartPolicy
    # A list, not a deque: it holds a handful of times, and an empty deque costs 760 bytes.
    _failures: list[float] = attrs.field(factory=list, init=False)

    @property
    def failures(self) -> int:
        return len(self._failures)

    def failed(self, now: float) -> float | None:
        """Record a failure at ``now``; return the delay before restarting, or None to give up."""
        window_start = now - self.policy.window
        self._failures = [t for t in self._failures if t >= window_start]
        self._failures.append(now)
        restarts = len(self._failures) - 1  # the first failure in a window is not a restart yet
        if restarts >= self.policy.max_restarts:
            return None
        policy = self.policy
        if policy.factor > 1:
            # Past this many doublings the delay is capped anyway; stop before the float overflows.
            cap = math.ceil(math.log(policy.max_delay / policy.initial_delay, policy.factor)) + 1
            restarts = min(restarts, max(cap, 0))
        delay = policy.initial_delay * policy.factor**restarts
        return float(min(delay, policy.max_delay))

    def reset(self) -> None:
        """An operator's resume: start again with a full budget."""
        self._failures.clear()
