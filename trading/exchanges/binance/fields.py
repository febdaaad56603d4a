"""Typed reads from decoded JSON — REST bodies and stream frames alike: each names the field and
what was wrong in a :class:`DecodeError` (``FrameError`` is its name on the stream side).

Sans-IO. Types are checked, not coerced: an integer is a JSON integer (never a bool or a string),
a decimal is a JSON string that parses to a finite number, a flag is a JSON bool. Messages quote
at most a short prefix of what was sent, never a whole frame (it may be huge, or carry a key).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "DecodeError",
    "FrameError",
    "array",
    "bool_field",
    "decimal_field",
    "field",
    "float_field",
    "int_field",
    "kind_of",
    "obj",
    "parse_json",
    "short",
    "str_field",
]


class DecodeError(ValueError):
    """A Binance payload (a REST body or a stream frame) that is malformed or unexpected; the
    message names the field and what was wrong, never the whole payload."""


#: The same error, by the name the stream decoders use.
FrameError = DecodeError

#: Integers past this are not ids or times Binance sends (and their repr is slow).
MAX_INT = 2**63


def parse_json(raw: str | bytes) -> Any:
    """The JSON value of a frame; FrameError for anything json would raise, deep nesting and
    over-long integers included."""
    if not isinstance(raw, str | bytes | bytearray):
        raise FrameError(f"a frame must be text, not {type(raw).__name__}")
    try:
        return json.loads(raw)
    except RecursionError:
        raise FrameError("frame is not JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int too long
        raise FrameError(f"frame is not JSON: {short(str(exc))}") from None


def short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def obj(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise FrameError(f"{where} must be a JSON object, not {kind_of(value)}")
    return value


def kind_of(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a bool", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "an object"
    )


def field(obj: Mapping[str, Any], key: str, where: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise FrameError(f"{where}: missing field {key!r}") from None


def array(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise FrameError(f"{where} must be a JSON array, not {kind_of(value)}")
    return value


def int_field(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = field(obj, key, where)
    if type(value) is not int:
        raise FrameError(f"{where}: field {key!r} must be an integer, not {kind_of(value)}")
    if abs(value) >= MAX_INT:
        raise FrameError(f"{where}: field {key!r} is out of range")
    return value


def str_field(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = field(obj, key, where)
    if not isinstance(value, str):
        raise FrameError(f"{where}: field {key!r} must be a string, not {kind_of(value)}")
    return value


def bool_field(obj: Mapping[str, Any], key: str, where: str) -> bool:
    value = field(obj, key, where)
    if not isinstance(value, bool):
        raise FrameError(f"{where}: field {key!r} must be a bool, not {kind_of(value)}")
    return value


def float_field(obj: Mapping[str, Any], key: str, where: str) -> float:
    text = str_field(obj, key, where)
    try:
        value = float(text)
    except ValueError:
        raise FrameError(f"{where}: field {key!r} is not a number: {short(text)!r}") from None
    if not math.isfinite(value):
        raise FrameError(f"{where}: field {key!r} must be finite, not {short(text)!r}")
    return value


def decimal_field(obj: Mapping[str, Any], key: str, where: str) -> Decimal:
    text = str_field(obj, key, where)
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        raise FrameError(f"{where}: field {key!r} is not a decimal: {short(text)!r}") from None
    if not value.is_finite():
        raise FrameError(f"{where}: field {key!r} must be finite, not {short(text)!r}")
    return value
