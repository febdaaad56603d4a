"""How a configuration problem is told: cattrs' error tree (and our validators' :class:`Bad`)
turned into one sentence per problem naming the dotted key, the value given and what was expected.

Rules it keeps: a secret's value (``api_key``, ``api_secret``, ``token``) is never shown, only
its type; a long value is cut short; an unknown key gets a "did you mean" when a known key is close
or when the key belongs in one of the tables.
"""

from __future__ import annotations

import decimal
import difflib

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError

__all__ = ["Bad", "Nested", "dotted", "problems"]


class Bad(Exception):
    """One bad value: what was expected, the value, and the key under the current path if any."""

    def __init__(self, expected: str, value: object, key: str | None = None) -> None:
        super().__init__(expected)
        self.expected, self.value, self.key = expected, value, key


class Nested(Exception):
    """A problem inside the list element ``part`` (``[3]``)."""

    def __init__(self, part: str, error: BaseException) -> None:
        super().__init__(part)
        self.part, self.error = part, error


def problems(exc: BaseException, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    """Each leaf of cattrs' error tree as (dotted path parts, sentence without the key)."""
    if isinstance(exc, ForbiddenExtraKeysError):
        known = [a.name for a in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        found = []
        for key in sorted(exc.extra_fields):
            # The exact key in a section ("seed" -> "simulator.seed") beats a near top-level one.
            close = _in_a_section(exc.cl, key) or difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            found.append(((*path, key), f"unknown key{hint}"))
        return found
    if isinstance(exc, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        found = []
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            part = getattr(note, "name", None)
            if part is None:
                index = getattr(note, "index", "?")
                part = index if isinstance(index, str) else f"[{index}]"
            found += problems(sub, (*path, str(part)))
        for sub in without:
            found += problems(sub, path)
        return found
    if isinstance(exc, Nested):
        return problems(exc.error, (*path, exc.part))
    if isinstance(exc, Bad):
        where = path if exc.key is None else (*path, exc.key)
        return [(where, f"{_shown(where, exc.value)} given, expected {exc.expected}")]
    if isinstance(exc, KeyError):
        return [(path, "required")]
    if isinstance(exc, (TypeError, AttributeError)):
        return [(path, "expected a table")]
    return [(path, f"{type(exc).__name__}: {exc}")]


def _in_a_section(cl: type, key: str) -> list[str]:
    """``["simulator.seed"]`` for a ``seed`` put at the top level rather than in its table."""
    if not attrs.has(cl):
        return []
    attrs.resolve_types(cl)
    return [
        f"{field.name}.{key}"
        for field in attrs.fields(cl)
        if isinstance(field.type, type)
        and attrs.has(field.type)
        and key in attrs.fields_dict(field.type)
    ][:1]


_SECRETS = frozenset({"api_key", "api_secret", "token"})


def _shown(where: tuple[str, ...], value: object) -> str:
    if where and where[-1] in _SECRETS:
        return "a secret (hidden)" if isinstance(value, str) else f"a {type(value).__name__} value"
    text = str(value) if isinstance(value, decimal.Decimal) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def dotted(parts: tuple[str, ...]) -> str:
    return ".".join(parts).replace(".[", "[") or "(top level)"
