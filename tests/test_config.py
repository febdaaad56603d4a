"""The configuration file: every bad key, type or value named; flags over the file; secrets hidden;
``config init`` / ``config show`` / ``run --config`` as a user runs them."""

from __future__ import annotations

import argparse
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.cli import build_parser
from trading.config import (
    Config,
    ConfigError,
    default_config,
    default_socket,
    from_dict,
    load_config,
    merge_flags,
    render,
)
from trading.config_cli import to_run_args
from trading.config_example import EXAMPLE

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "trading"]
NO_ENV: dict[str, str] = {}
SECRET = "s3cr3t-VALUE-never-shown"


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        from_dict(data, NO_ENV)
    return str(info.value)


@pytest.mark.parametrize(
    ("data", "key", "value", "expected"),
    [
        ({"stop_timeout": "10"}, "stop_timeout", "'10'", "a number"),
        ({"stop_timeout": 0}, "stop_timeout", "0.0", "greater than 0"),
        ({"stop_timeout": float("inf")}, "stop_timeout", "inf", "finite"),
        ({"max_restarts": -1}, "max_restarts", "-1", "0 or more"),
        ({"max_restarts": 1.5}, "max_restarts", "1.5", "a whole number"),
        ({"max_restarts": True}, "max_restarts", "True", "a whole number"),
        ({"strategies_dir": 3}, "strategies_dir", "3", "a string"),
        ({"exchange": {"kind": "kraken"}}, "exchange.kind", "'kraken'", "'sim' or 'binance'"),
        ({"exchange": {"live": 1}}, "exchange.live", "1", "true or false"),
        ({"exchange": {"symbols": "BTCUSDT"}}, "exchange.symbols", "'BTCUSDT'", "a list"),
        ({"exchange": {"symbols": ["A", 2]}}, "exchange.symbols[1]", "2", "a string"),
        ({"exchange": {"base_url": "ftp://x"}}, "exchange.base_url", "'ftp://x'", "http"),
        ({"exchange": {"ws_url": "http://x"}}, "exchange.ws_url", "'http://x'", "ws://"),
        ({"simulator": {"seed": "7"}}, "simulator.seed", "'7'", "a whole number"),
        ({"simulator": {"speed": -2.0}}, "simulator.speed", "-2.0", "greater than 0"),
        ({"paper": {"fee_rate": "abc"}}, "paper.fee_rate", "'abc'", "a decimal number"),
        ({"paper": {"fee_rate": 1}}, "paper.fee_rate", "1", "fraction"),
        ({"paper": {"slippage": "NaN"}}, "paper.slippage", "'NaN'", "finite"),
        ({"paper": {"balances": {"USDT": "x"}}}, "paper.balances.USDT", "'x'", "decimal"),
        ({"paper": {"balances": {"USDT": -5}}}, "paper.balances.USDT", "-5", "0 or more"),
        ({"database": {"enabled": "no"}}, "database.enabled", "'no'", "true or false"),
        ({"logging": {"level": "LOUD"}}, "logging.level", "'LOUD'", "'DEBUG'"),
        ({"logging": {"format": "xml"}}, "logging.format", "'xml'", "'text' or 'json'"),
        ({"telegram": {"allowed_chats": [1, "x"]}}, "telegram.allowed_chats[1]", "'x'", "whole"),
        ({"telegram": {"topic": 1.5}}, "telegram.topic", "1.5", "whole number"),
        ({"telegram": {"max_command_age": 0}}, "telegram.max_command_age", "0.0", "greater"),
        ({"telegram": {"api_base": "x"}}, "telegram.api_base", "'x'", "URL"),
        ({"control": {"socket": 5}}, "control.socket", "5", "a string"),
        (
            {"strategies": [{"name": "a", "params": {"k": [1]}}]},
            "strategies[0].params.k",
            "[1]",
            "",
        ),
        ({"strategies": [{"name": 5}]}, "strategies[0].name", "5", "a string"),
        ({"strategies": "sma_cross"}, "strategies", "'sma_cross'", "a list"),
    ],
)
def test_every_bad_value_names_key_value_and_expectation(
    data: dict[str, Any], key: str, value: str, expected: str
) -> None:
    message = error_of(data)
    assert message.startswith(f"{key}: {value} given, expected "), message
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"exchange": "binance"}, "exchange"),
        ({"strategies": [{"params": {}}]}, "strategies[0].name"),
        ({"strategies": ["sma_cross"]}, "strategies[0]"),
        ({"paper": {"balances": [1]}}, "paper.balances"),
    ],
)
def test_bad_shapes_name_the_key(data: dict[str, Any], key: str) -> None:
    assert error_of(data).startswith(f"{key}: ")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"exchange": {"knd": "sim"}}, "exchange.knd: unknown key (did you mean 'kind'?)"),
        ({"telegram": {"allowed_chat": []}}, "did you mean 'allowed_chats'?"),
        ({"stop_timout": 3}, "stop_timout: unknown key (did you mean 'stop_timeout'?)"),
        ({"frobnicate": 1}, "frobnicate: unknown key"),
        ({"seed": 1}, "seed: unknown key (did you mean 'simulator.seed'?)"),
        ({"api_secret": "x"}, "api_secret: unknown key (did you mean 'exchange.api_secret'?)"),
        ({"strategies": [{"name": "a", "param": {}}]}, "strategies[0].param: unknown key"),
    ],
)
def test_unknown_keys_are_errors_with_a_suggestion(data: dict[str, Any], message: str) -> None:
    assert message in error_of(data)


def test_all_problems_are_named_on_one_line() -> None:
    message = error_of({"simulator": {"seed": "x", "sped": 2}, "exchange": {"live": "yes"}})
    assert "simulator.seed" in message and "simulator.sped" in message
    assert "exchange.live" in message and "\n" not in message


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('stop_timeout = 3\n[exchange\nkind = "sim"\n')
    with pytest.raises(ConfigError, match=r"line 2, column \d+"):
        load_config(path, NO_ENV)


toml_scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.decimals(allow_nan=True),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["name", "kind", "x", "USDT", "params"]), inner, max_size=3
        )
    ),
    max_leaves=8,
)
keys = st.sampled_from(
    ["stop_timeout", "max_restarts", "strategies", "strategies_dir", "exchange", "simulator",
     "paper", "database", "logging", "telegram", "control", "kind", "seed", "symbols", "params",
     "balances", "name", "token", "level", "bogus"]
)  # fmt: skip
toml_dicts = st.dictionaries(
    keys, toml_values | st.dictionaries(keys, toml_values, max_size=4), max_size=5
)


@settings(max_examples=300, deadline=None)
@given(toml_dicts)
def test_arbitrary_data_raises_nothing_but_config_error(data: dict[str, Any]) -> None:
    try:
        config = from_dict(data, NO_ENV)
    except ConfigError as exc:
        assert str(exc)
    else:
        assert isinstance(config, Config)
        assert load_back(config) == config


@pytest.mark.parametrize("text", ["BTC😀USDT", "del\x7fhere", "tab\tand\u2028line"])
def test_any_text_renders_as_toml_that_reads_back(text: str) -> None:
    # Found by the property above: JSON escapes astral characters as surrogate pairs, and
    # leaves DEL bare; TOML accepts neither.
    config = from_dict({"strategies_dir": text}, NO_ENV)
    assert load_back(config) == config


def load_back(config: Config) -> Config:
    import tomllib

    return from_dict(tomllib.loads(render(config)), NO_ENV)


def test_secrets_never_in_repr_or_messages() -> None:
    config = from_dict(
        {"exchange": {"api_key": SECRET, "api_secret": SECRET}, "telegram": {"token": SECRET}},
        NO_ENV,
    )
    assert config.exchange.api_secret == SECRET and config.telegram.token == SECRET
    for text in (repr(config), str(config), repr(config.exchange), repr(config.telegram)):
        assert SECRET not in text
    assert "'****'" in repr(config.exchange)
    shown = render(config)
    assert SECRET not in shown
    assert 'api_secret = "****"' in shown and 'token = "****"' in shown
    for bad in (
        {"exchange": {"api_secret": SECRET, "kind": 1}},
        {"exchange": {"api_secret": [SECRET]}},
        {"exchange": {"api_key": 5, "api_secret": SECRET, "x": 1}},
        {"telegram": {"token": {"t": SECRET}, "topic": "x"}},
    ):
        assert SECRET not in error_of(bad)


def test_long_values_are_cut_short_and_unreadable_files_named(tmp_path: Path) -> None:
    message = error_of({"strategies_dir": ["x" * 500]})
    assert message.startswith("strategies_dir: ['xxx") and len(message) < 150
    path = tmp_path / "c.toml"
    path.write_bytes(b"stop_timeout = 3\n# \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"c\.toml: cannot read"):
        load_config(path, NO_ENV)
    with pytest.raises(ConfigError, match=r"cannot read"):
        load_config(tmp_path, NO_ENV)  # a directory


def test_secret_of_wrong_type_is_named_but_not_shown() -> None:
    message = error_of({"telegram": {"token": 12345678}})
    assert message.startswith("telegram.token: a int value given, expected a string")
    assert "12345678" not in message


def test_secrets_come_from_the_environment_when_the_file_leaves_them_out() -> None:
    env = {
        "BINANCE_API_KEY": "k-env",
        "BINANCE_API_SECRET": "s-env",
        "TRIO_TRADE_TELEGRAM_TOKEN": "t-env",
    }
    config = default_config(env)
    assert (config.exchange.api_key, config.exchange.api_secret) == ("k-env", "s-env")
    assert config.telegram.token == "t-env"
    from_file = from_dict({"exchange": {"api_key": "k-file"}}, env)
    assert from_file.exchange.api_key == "k-file"  # the file wins over the environment
    assert default_config(NO_ENV).exchange.api_key is None
    args = to_run_args(config)
    assert args.credentials_env == {"BINANCE_API_KEY": "k-env", "BINANCE_API_SECRET": "s-env"}


def test_control_socket_default() -> None:
    assert default_socket({"XDG_RUNTIME_DIR": "/run/user/7"}) == "/run/user/7/trio-trade.sock"
    assert default_socket(NO_ENV).startswith("/tmp/trio-trade-")
    assert default_config(NO_ENV).control.socket == default_socket(NO_ENV)
    assert from_dict({"control": {"socket": "/x.sock"}}, NO_ENV).control.socket == "/x.sock"


def run_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


FILE = {
    "strategies_dir": "mine",
    "stop_timeout": 3.0,
    "max_restarts": 2,
    "strategies": [{"name": "sma_cross", "params": {"fast": 7, "on": True, "q": 0.5}}],
    "exchange": {"kind": "binance", "symbols": ["ETHUSDT"], "base_url": "http://127.0.0.1:9"},
    "simulator": {"seed": 11, "speed": 60.0},
    "database": {"path": "x.db"},
    "logging": {"level": "DEBUG"},
}


def test_flags_left_at_their_defaults_do_not_override_the_file() -> None:
    config = from_dict(FILE, NO_ENV)
    assert merge_flags(config, run_args()) == config
    args = to_run_args(merge_flags(config, run_args()))
    assert args.strategies == ["sma_cross"]
    assert args.strategy_params == [{"fast": "7", "on": "true", "q": "0.5"}]
    assert (args.strategies_dir, args.seed, args.speed, args.exchange) == (
        Path("mine"), 11, 60.0, "binance"
    )  # fmt: skip
    assert (args.stop_timeout, args.max_restarts, args.db, args.no_db) == (3.0, 2, Path("x.db"), 0)
    assert args.symbol == ["ETHUSDT"] and args.verbose == 1  # the file's level DEBUG is -v


def test_flags_given_override_the_file() -> None:
    config = from_dict(FILE, NO_ENV)
    argv = (
        "other", "--strategies-dir", "d", "--seed", "7", "--speed", "2", "--exchange", "sim",
        "--stop-timeout", "10", "--max-restarts", "5", "--db", "y.db", "--no-db",
        "--symbol", "BTCUSDT", "--live", "--base-url", "https://a", "--ws-url", "wss://b",
    )  # fmt: skip
    merged = merge_flags(config, run_args(*argv))
    assert merged.strategies_dir == "d" and merged.simulator.seed == 7  # equal to the default
    assert merged.simulator.speed == 2.0 and merged.exchange.kind == "sim"
    assert (merged.stop_timeout, merged.max_restarts) == (10.0, 5)
    assert merged.database.path == "y.db" and merged.database.enabled is False
    assert merged.exchange.symbols == ("BTCUSDT",) and merged.exchange.live is True
    assert (merged.exchange.base_url, merged.exchange.ws_url) == ("https://a", "wss://b")
    assert [s.name for s in merged.strategies] == ["other"]
    assert merged.strategies[0].params == {}  # names on the command line bring no params


def test_no_file_and_no_flags_is_what_run_did_before() -> None:
    args = to_run_args(merge_flags(default_config(NO_ENV), run_args("sma_cross")))
    assert (args.seed, args.exchange, args.base_url, args.stop_timeout) == (
        7, "sim", "https://api.binance.com", 10.0
    )  # fmt: skip
    assert (args.db, args.no_db, args.live, args.symbol, args.verbose) == (
        Path("trio-trade.db"), False, False, None, False
    )  # fmt: skip


def test_example_loads_back_as_the_defaults_and_is_the_repository_file(tmp_path: Path) -> None:
    assert (REPO / "trio-trade.example.toml").read_text() == EXAMPLE
    path = tmp_path / "c.toml"
    path.write_text(EXAMPLE)
    assert load_config(path, NO_ENV) == default_config(NO_ENV)


def test_render_loads_back_equal() -> None:
    config = from_dict(FILE, NO_ENV)
    assert load_back(config) == config
    with_secret = attrs.evolve(config, telegram=attrs.evolve(config.telegram, topic=4))
    assert load_back(with_secret).telegram.topic == 4
    assert from_dict({"paper": {"fee_rate": "0.00075"}}, NO_ENV).paper.fee_rate == Decimal(
        "0.00075"
    )


# -- the command, in subprocesses -----------------------------------------------------------------


def cli(
    *argv: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "TRIO_"))}
    return subprocess.run(
        [*CLI, *argv],
        input="",
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        env={**environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


def test_config_init_writes_the_example_and_refuses_to_overwrite(tmp_path: Path) -> None:
    first = cli("config", "init", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "trio-trade.toml").read_text() == EXAMPLE
    (tmp_path / "trio-trade.toml").write_text("# mine\n")
    again = cli("config", "init", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    assert (tmp_path / "trio-trade.toml").read_text() == "# mine\n"
    forced = cli("config", "init", "other.toml", cwd=tmp_path)
    assert forced.returncode == 0 and (tmp_path / "other.toml").read_text() == EXAMPLE
    assert cli("config", "init", "--force", cwd=tmp_path).returncode == 0
    assert (tmp_path / "trio-trade.toml").read_text() == EXAMPLE


def test_config_show_masks_secrets_and_reads_back(tmp_path: Path) -> None:
    (tmp_path / "trio-trade.toml").write_text(f'[telegram]\ntoken = "{SECRET}"\n')
    shown = cli("config", "show", cwd=tmp_path, env={"BINANCE_API_SECRET": SECRET})
    assert shown.returncode == 0, shown.stderr
    assert SECRET not in shown.stdout + shown.stderr
    assert 'token = "****"' in shown.stdout and 'api_secret = "****"' in shown.stdout
    (tmp_path / "shown.toml").write_text(shown.stdout)
    assert load_config(tmp_path / "shown.toml", NO_ENV).telegram.token == "****"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('seed = 1\n[exchange]\nkind = "kraken"\n', "exchange.kind: 'kraken' given"),
        ("[exchange\n", "line 1, column"),
        ("[simulator]\nseed = '7'\n", "simulator.seed: '7' given, expected a whole number"),
    ],
)
def test_run_with_a_bad_config_is_exit_2_with_one_line(
    tmp_path: Path, content: str, needle: str
) -> None:
    (tmp_path / "bad.toml").write_text(content)
    result = cli("run", "--config", "bad.toml", "sma_cross", cwd=tmp_path)
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("trio-trade:")


def test_missing_explicit_config_is_exit_2(tmp_path: Path) -> None:
    result = cli("run", "--config", "nope.toml", "sma_cross", cwd=tmp_path)
    assert result.returncode == 2 and "nope.toml not found" in result.stderr
    shown = cli("config", "show", "--config", "nope.toml", cwd=tmp_path)
    assert shown.returncode == 2 and "not found" in shown.stderr


def test_run_without_names_or_strategies_says_so(tmp_path: Path) -> None:
    result = cli("run", cwd=tmp_path)
    assert result.returncode == 2 and "[[strategies]]" in result.stderr


def test_strategies_and_params_from_the_config_run(tmp_path: Path) -> None:
    (tmp_path / "trio-trade.toml").write_text(
        f'strategies_dir = "{REPO / "strategies"}"\n[database]\nenabled = false\n'
        '[[strategies]]\nname = "sma_cross"\nparams = { fast = 7, slow = 200 }\n'
    )
    result = subprocess.run(
        [*CLI, "run", "--for", "1s"],
        input="set sma_cross fast=99\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "sma_cross: ok: fast: 7 -> 99" in result.stdout  # slow=200 applied: 99 < 200


def test_bad_params_in_the_config_stop_the_run_before_it_starts(tmp_path: Path) -> None:
    (tmp_path / "trio-trade.toml").write_text(
        f'strategies_dir = "{REPO / "strategies"}"\n[database]\nenabled = false\n'
        '[[strategies]]\nname = "sma_cross"\nparams = { fast = 50, slow = 10 }\n'
    )
    result = cli("run", "--for", "1s", cwd=tmp_path)
    assert result.returncode == 2
    assert "sma_cross" in result.stderr and "must be shorter than slow" in result.stderr
    assert "Traceback" not in result.stderr


def test_paper_wallet_and_speed_from_the_config_reach_the_run(tmp_path: Path) -> None:
    (tmp_path / "trio-trade.toml").write_text(
        f'strategies_dir = "{REPO / "strategies"}"\n[database]\nenabled = false\n'
        "[simulator]\nspeed = 18000.0\n[paper]\nbalances = { USDT = 1 }\n"
        '[[strategies]]\nname = "sma_cross"\n'
    )
    result = cli("run", "--for", "2s", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # 18000 simulated seconds a second: the first buy comes within the 2 s, and 1 USDT is short.
    assert "insufficient balance" in result.stderr and "free 1.00" in result.stderr
