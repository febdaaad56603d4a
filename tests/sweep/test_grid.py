"""The grid: every combination once, typos refused before anything runs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.sweep.grid import GridError, combinations, parse_param, parse_params


def test_a_param_list_parses_with_spaces_and_duplicates() -> None:
    assert parse_param(" fast = 5, 8 ,12,8") == ("fast", ("5", "8", "12"))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("fast", "expected NAME=V1"),
        ("=5,6", "expected NAME=V1"),
        ("fast=", "empty value"),
        ("fast=5,,6", "empty value"),
        ("2fast=5", "not a parameter name"),
    ],
)
def test_bad_params_name_the_problem(text: str, says: str) -> None:
    with pytest.raises(GridError, match=says):
        parse_param(text)


def test_the_same_name_twice_is_refused() -> None:
    with pytest.raises(GridError, match="fast given twice"):
        parse_params(["fast=5", "fast=6"])


def test_unknown_names_are_refused_up_front_with_the_choices() -> None:
    with pytest.raises(GridError, match=r"unknown parameter\(s\) fsat; the strategy has fast"):
        combinations({"fsat": ("5",)}, known=["fast", "slow"])


def test_an_empty_grid_is_one_run_with_the_defaults() -> None:
    assert combinations({}) == [{}]


def test_a_grid_too_large_is_refused() -> None:
    grid = {f"p{i}": tuple(str(v) for v in range(10)) for i in range(6)}
    with pytest.raises(GridError, match="1000000 combinations"):
        combinations(grid)


@given(
    st.dictionaries(
        st.sampled_from(["fast", "slow", "quantity", "window"]),
        st.lists(st.integers(0, 99).map(str), min_size=1, max_size=4, unique=True),
        max_size=4,
    )
)
def test_every_combination_exactly_once(grid: dict[str, list[str]]) -> None:
    combos = combinations(grid)
    assert len(combos) == math.prod(len(v) for v in grid.values())
    assert len({tuple(sorted(c.items())) for c in combos}) == len(combos)
    for combo in combos:
        assert set(combo) == set(grid) and all(combo[k] in grid[k] for k in grid)
