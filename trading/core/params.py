"""Strategy parameters: the typed attrs fields an operator may change with ``set``.

Core module: no trio, no IO. Text from a chat or a terminal is converted to each field's declared
type with cattrs, then every field validator (and ``__attrs_post_init__``, for checks that span
fields) runs on a candidate copy *before* anything changes, so a rejected ``set`` changes nothing.

Decimal and float parameters are finite numbers: ``inf``, ``Infinity``, ``-inf``, ``NaN`` and
``sNaN`` are refused with a message naming the field, whatever the field's validators say. A
quantity of infinity or a threshold of NaN (every comparison false) is never what an operator meant.
"""

from __future__ import annotations

import decimal
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, cast

import attrs
import cattrs

__all__ = ["ParamError", "apply_params", "param_names", "param_values", "validate_params"]

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_NONE = frozenset({"none", "null"})


class ParamError(ValueError):
    """A ``set`` that names an unknown field or gives a value its type or validators refuse."""


def _structure_bool(value: object, _: type) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean (use true/false, on/off, yes/no, 1/0)")


class _NotFinite(ValueError):
    """A number that is infinite or not a number."""


def _structure_decimal(value: object, _: type) -> decimal.Decimal:
    text = str(value).strip()
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise ValueError("not a decimal number") from None
    if not number.is_finite():
        raise _NotFinite("only finite numbers are accepted")
    return number


def _structure_float(value: object, _: type) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(number):
        raise _NotFinite("only finite numbers are accepted")
    return number


_converter = cattrs.Converter()
_converter.register_structure_hook(bool, _structure_bool)
_converter.register_structure_hook(decimal.Decimal, _structure_decimal)
_converter.register_structure_hook(float, _structure_float)


def _fields(obj: object) -> dict[str, attrs.Attribute[Any]]:
    cls = type(obj)
    if not attrs.has(cls):
        return {}
    attrs.resolve_types(cls)
    return {a.name: a for a in attrs.fields(cls) if a.init and not a.name.startswith("_")}


def param_names(obj: object) -> list[str]:
    return list(_fields(obj))


def param_values(obj: object) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in _fields(obj)}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _is_optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _convert(attribute: attrs.Attribute[Any], raw: str) -> Any:
    tp = attribute.type
    if tp is None:
        return raw
    if _is_optional(tp) and raw.strip().lower() in _NONE:
        return None
    try:
        value = _converter.structure(raw, tp)
    except Exception as exc:  # cattrs raises many kinds; the operator needs one sentence
        detail = _leaf_message(exc)
        raise ParamError(
            f"{attribute.name}: {raw!r} is not a valid {_type_name(tp)} ({detail})"
        ) from None
    return value


def _leaf_message(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _leaf_message(exc.exceptions[0])
    return str(exc) or type(exc).__name__


def validate_params(obj: object, changes: Mapping[str, str]) -> dict[str, Any]:
    """Convert ``changes`` to the fields' types and run every validator on a copy; change nothing.

    Returns the converted values. The copy goes through ``__init__``, so per-field validators and
    cross-field checks in ``__attrs_post_init__`` both run.
    """
    fields = _fields(obj)
    if not fields:
        raise ParamError(f"{type(obj).__name__} has no parameters")
    unknown = [key for key in changes if key not in fields]
    if unknown:
        raise ParamError(
            f"unknown parameter {', '.join(map(repr, unknown))}; parameters: {', '.join(fields)}"
        )
    new_values = {key: _convert(fields[key], raw) for key, raw in changes.items()}
    init_kwargs = {(fields[k].alias or k): v for k, v in new_values.items()}
    try:
        candidate = attrs.evolve(cast(Any, obj), **init_kwargs)
    except Exception as exc:
        raise ParamError(f"rejected: {_leaf_message(exc)}") from None
    # Read back from the candidate so field converters have been applied.
    return {key: getattr(candidate, key) for key in new_values}


def apply_params(obj: object, changes: Mapping[str, str]) -> dict[str, tuple[Any, Any]]:
    """Validate then apply ``changes``, all or nothing; return ``{name: (old, new)}``.

    Values are written bypassing per-field on_setattr hooks, which would otherwise refuse a valid
    end state reached through an invalid intermediate one (``fast`` raised above the old ``slow``).
    """
    new_values = validate_params(obj, changes)
    changed: dict[str, tuple[Any, Any]] = {}
    for key, value in new_values.items():
        changed[key] = (getattr(obj, key), value)
        object.__setattr__(obj, key, value)
    return changed
