"""Tests for strategy parameters: text -> typed values, validation, all-or-nothing ``set``."""

from __future__ import annotations

import copy
import enum
from decimal import Decimal
from typing import Literal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.params import (
    ParamError,
    apply_params,
    param_names,
    param_values,
    validate_params,
)


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@attrs.define
class Params:
    fast: int = attrs.field(default=5, validator=attrs.validators.gt(0))
    slow: int = attrs.field(default=30, validator=attrs.validators.gt(0))
    ratio: float = 0.5
    live: bool = False
    label: str = "x"
    size: Decimal = Decimal("0.01")
    limit: int | None = None
    side: Literal["a", "b"] = "a"
    mode: Mode = Mode.SAFE
    _counter: int = attrs.field(default=0, init=False)
    post_inits: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")


PARAMS = ["fast", "slow", "ratio", "live", "label", "size", "limit", "side", "mode"]


def snapshot(obj: Params) -> dict[str, object]:
    return {a.name: copy.copy(getattr(obj, a.name)) for a in attrs.fields(Params)}


# -- names and values -----------------------------------------------------------------------------


def test_param_names_are_init_fields_in_order_without_private_ones() -> None:
    assert param_names(Params()) == PARAMS


def test_param_values() -> None:
    values = param_values(Params(fast=3, live=True))
    assert list(values) == PARAMS
    assert values["fast"] == 3
    assert values["live"] is True
    assert values["mode"] is Mode.SAFE
    assert "_counter" not in values
    assert "post_inits" not in values


def test_non_attrs_object_has_no_parameters() -> None:
    class Plain:
        fast = 1

    assert param_names(Plain()) == []
    assert param_values(Plain()) == {}
    with pytest.raises(ParamError, match="Plain has no parameters"):
        validate_params(Plain(), {"fast": "2"})


def test_init_false_fields_are_not_parameters() -> None:
    obj = Params()
    with pytest.raises(ParamError, match="unknown parameter 'post_inits'"):
        apply_params(obj, {"post_inits": "3"})
    with pytest.raises(ParamError, match="unknown parameter '_counter'"):
        apply_params(obj, {"_counter": "3"})
    assert obj.post_inits == 0


# -- conversion -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("fast", "12", 12),
        ("fast", " 7 ", 7),
        ("ratio", "0.25", 0.25),
        ("ratio", "3", 3.0),
        ("label", "hello world", "hello world"),
        ("label", "123", "123"),
        ("size", "0.1", Decimal("0.1")),
        ("limit", "7", 7),
        ("side", "b", "b"),
        ("mode", "fast", Mode.FAST),
    ],
)
def test_conversion_to_each_type(key: str, raw: str, expected: object) -> None:
    obj = Params()
    changed = apply_params(obj, {key: raw})
    value = getattr(obj, key)
    assert value == expected
    assert type(value) is type(expected)
    assert changed == {key: (getattr(Params(), key), expected)}


def test_decimal_is_exact() -> None:
    obj = Params()
    apply_params(obj, {"size": "0.1"})
    assert obj.size == Decimal("0.1")  # not Decimal(0.1) = 0.1000000000000000055...
    assert str(obj.size) == "0.1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("1", True),
        (" On ", True),
        ("false", False),
        ("False", False),
        ("no", False),
        ("off", False),
        ("0", False),
    ],
)
def test_bool_words(raw: str, expected: bool) -> None:
    obj = Params(live=not expected)
    apply_params(obj, {"live": raw})
    assert obj.live is expected


@pytest.mark.parametrize("raw", ["maybe", "2", "", "tru"])
def test_bad_bool(raw: str) -> None:
    obj = Params()
    with pytest.raises(ParamError) as info:
        apply_params(obj, {"live": raw})
    message = str(info.value)
    assert message.startswith("live:")
    assert "bool" in message
    assert "true/false" in message
    assert obj.live is False


@pytest.mark.parametrize("raw", ["none", "None", "NULL", " none "])
def test_none_for_optional(raw: str) -> None:
    obj = Params(limit=5)
    assert apply_params(obj, {"limit": raw}) == {"limit": (5, None)}
    assert obj.limit is None


def test_none_for_a_non_optional_is_rejected() -> None:
    obj = Params()
    with pytest.raises(ParamError, match="fast: 'none' is not a valid int"):
        apply_params(obj, {"fast": "none"})


@pytest.mark.parametrize(
    ("key", "raw", "type_name"),
    [
        ("fast", "abc", "int"),
        ("fast", "1.5", "int"),
        ("ratio", "fast", "float"),
        ("size", "lots", "Decimal"),
        ("limit", "seven", "int"),
        ("side", "c", "Literal"),
        ("mode", "turbo", "Mode"),
    ],
)
def test_invalid_value_names_field_and_type(key: str, raw: str, type_name: str) -> None:
    obj = Params()
    before = snapshot(obj)
    with pytest.raises(ParamError) as info:
        apply_params(obj, {key: raw})
    message = str(info.value)
    assert message.startswith(f"{key}: {raw!r} is not a valid ")
    assert type_name in message
    assert snapshot(obj) == before


def test_unknown_key_lists_parameters() -> None:
    obj = Params()
    with pytest.raises(ParamError) as info:
        apply_params(obj, {"fastt": "3", "fast": "3"})
    message = str(info.value)
    assert "unknown parameter 'fastt'" in message
    for name in PARAMS:
        assert name in message
    assert obj.fast == 5  # the valid key was not applied either


# -- validators, all or nothing -------------------------------------------------------------------


def test_validator_failure_changes_nothing() -> None:
    obj = Params()
    before = snapshot(obj)
    with pytest.raises(ParamError) as info:
        apply_params(obj, {"fast": "0"})
    assert "rejected" in str(info.value)
    assert "fast" in str(info.value)
    assert snapshot(obj) == before


def test_first_key_valid_second_invalid_changes_nothing() -> None:
    obj = Params()
    before = snapshot(obj)
    with pytest.raises(ParamError):
        apply_params(obj, {"ratio": "0.9", "slow": "-1"})
    assert snapshot(obj) == before
    with pytest.raises(ParamError):
        apply_params(obj, {"ratio": "0.9", "live": "perhaps"})
    assert snapshot(obj) == before


def test_cross_field_check_rejects_fast_above_slow() -> None:
    obj = Params(fast=5, slow=30)
    with pytest.raises(ParamError) as info:
        apply_params(obj, {"fast": "40"})
    assert "fast (40) must be shorter than slow (30)" in str(info.value)
    assert (obj.fast, obj.slow) == (5, 30)


def test_cross_field_change_together_is_accepted() -> None:
    obj = Params(fast=5, slow=30)
    changed = apply_params(obj, {"fast": "40", "slow": "50"})
    assert changed == {"fast": (5, 40), "slow": (30, 50)}
    assert (obj.fast, obj.slow) == (40, 50)


def test_cross_field_order_does_not_matter() -> None:
    # Lowering slow first would be invalid on its own (slow=3 < fast=5) but the end state is fine.
    obj = Params(fast=5, slow=30)
    apply_params(obj, {"slow": "3", "fast": "2"})
    assert (obj.fast, obj.slow) == (2, 3)


def test_plain_setattr_would_refuse_the_intermediate_state() -> None:
    # Documents why apply_params bypasses on_setattr: attrs.define runs validators on assignment,
    # and this class's gt(0) validator refuses a bad single assignment.
    obj = Params()
    with pytest.raises(ValueError):
        obj.fast = 0


@attrs.define
class Guarded:
    """A class whose on_setattr refuses every assignment: apply_params must not go through it."""

    a: int = attrs.field(default=1, on_setattr=attrs.setters.frozen)
    b: int = attrs.field(default=2, on_setattr=attrs.setters.frozen)


def test_apply_params_bypasses_on_setattr_hooks() -> None:
    obj = Guarded()
    with pytest.raises(attrs.exceptions.FrozenAttributeError):
        obj.a = 5
    assert apply_params(obj, {"a": "5", "b": "6"}) == {"a": (1, 5), "b": (2, 6)}
    assert (obj.a, obj.b) == (5, 6)


def test_apply_keeps_identity_and_private_state() -> None:
    obj = Params()
    obj._counter = 41
    ident = id(obj)
    apply_params(obj, {"ratio": "0.75"})
    assert id(obj) == ident
    assert obj._counter == 41


# -- validate_params ------------------------------------------------------------------------------


def test_validate_params_converts_and_does_not_mutate() -> None:
    obj = Params()
    before = snapshot(obj)
    values = validate_params(obj, {"fast": "10", "live": "yes", "mode": "fast"})
    assert values == {"fast": 10, "live": True, "mode": Mode.FAST}
    assert snapshot(obj) == before


def test_validate_params_runs_validators_and_cross_checks() -> None:
    obj = Params()
    with pytest.raises(ParamError, match="rejected"):
        validate_params(obj, {"slow": "0"})
    with pytest.raises(ParamError, match="must be shorter"):
        validate_params(obj, {"fast": "30"})


def test_validate_empty_changes() -> None:
    assert validate_params(Params(), {}) == {}


@given(fast=st.integers(min_value=-5, max_value=60), slow=st.integers(min_value=-5, max_value=60))
def test_apply_is_all_or_nothing_property(fast: int, slow: int) -> None:
    obj = Params(fast=5, slow=30)
    valid = 0 < fast < slow
    if valid:
        apply_params(obj, {"fast": str(fast), "slow": str(slow)})
        assert (obj.fast, obj.slow) == (fast, slow)
    else:
        with pytest.raises(ParamError):
            apply_params(obj, {"fast": str(fast), "slow": str(slow)})
        assert (obj.fast, obj.slow) == (5, 30)


# -- rough edges found while writing these tests ----------------------------------------------


@attrs.define
class Converted:
    x: int = attrs.field(default=1, converter=abs)


def test_apply_params_applies_field_converters() -> None:
    obj = Converted()
    apply_params(obj, {"x": "-5"})
    assert obj.x == 5
    assert Converted(x=-5).x == 5  # what construction does


@attrs.define
class Numbers:
    price: Decimal = Decimal("1")
    ratio: float = 0.5
    cap: float | None = None
    limit: Decimal | None = None


NON_FINITE = ["inf", "Infinity", "-inf", "+Inf", "NaN", "nan", "-nan", "sNaN", " inf "]


@pytest.mark.parametrize("field", ["price", "ratio", "cap", "limit"])
@pytest.mark.parametrize("text", NON_FINITE)
def test_non_finite_numbers_are_refused_naming_the_field(field: str, text: str) -> None:
    numbers = Numbers()
    before = attrs.asdict(numbers)
    with pytest.raises(ParamError) as info:
        apply_params(numbers, {field: text})
    message = str(info.value)
    assert message.startswith(f"{field}: {text!r} is not a valid ")
    # float("sNaN") is not even parsed: refused as "not a number", which is as clear
    assert message.endswith(("(only finite numbers are accepted)", "(not a number)"))
    assert "InvalidOperation" not in message and "<class" not in message
    assert attrs.asdict(numbers) == before


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [("price", "1e5", Decimal("1E+5")), ("price", "-0.5", Decimal("-0.5")),
     ("ratio", "2.5", 2.5), ("cap", "none", None), ("limit", "0.001", Decimal("0.001"))],
)
def test_finite_numbers_still_pass(field: str, text: str, value: object) -> None:
    numbers = Numbers()
    apply_params(numbers, {field: text})
    assert getattr(numbers, field) == value


def test_a_float_that_overflows_to_infinity_is_refused() -> None:
    with pytest.raises(ParamError, match=r"^ratio: '1e999' .*only finite numbers are accepted"):
        apply_params(Numbers(), {"ratio": "1e999"})


def test_not_a_number_at_all_reads_plainly() -> None:
    with pytest.raises(ParamError, match=r"^price: 'abc' is not a valid Decimal \(not a decimal"):
        apply_params(Numbers(), {"price": "abc"})
