"""The event records, public: ``from trading.events import OrderFilled``.

They live in :mod:`trading.core.events` (sans-IO, like the rest of the core); this module is the
stable public name for observers and tests.
"""

from trading.core.events import *  # noqa: F403
from trading.core.events import __all__ as __all__
