"""The ``trio-trade.toml`` configuration: a TOML file loaded into frozen attrs classes with cattrs.

Rules it keeps:

- Every bad key, type or value is one :class:`ConfigError` whose message names the dotted key
  (``exchange.kind``), the value given and what was expected; all problems in the file are named,
  on one line. Unknown keys are errors, with a "did you mean" when a known key is close. A TOML
  syntax error names its line and column.
- Types are strict: ``seed = "7"`` or ``live = 1`` are refused, never coerced; numbers are finite.
- Secrets (``exchange.api_key``, ``exchange.api_secret``, ``telegram.token``) never appear in a
  repr or an error message; :meth:`Config.masked` and :func:`render` show them as ``"****"``.
  When the file leaves them out they come from ``BINANCE_API_KEY``, ``BINANCE_API_SECRET`` and
  ``TRIO_TRADE_TELEGRAM_TOKEN``.
- Flags given on the command line override the file; flags left at their defaults do not
  (:func:`merge_flags`; the ``run`` parser's defaults are ``None`` for that reason).
"""

from __future__ import annotations

import argparse
import decimal
import json
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NewType

import attrs
import cattrs

from trading.config_errors import Bad, Nested, dotted, problems
from trading.core.restart import RestartPolicy

__all__ = [
    "Config",
    "ConfigError",
    "StrategyEntry",
    "default_config",
    "default_socket",
    "load_config",
    "merge_flags",
    "render",
]

MASK = "****"
TELEGRAM_TOKEN_ENV = "TRIO_TRADE_TELEGRAM_TOKEN"
ParamText = NewType("ParamText", str)  # a strategy parameter as the text `set NAME k=v` takes


class ConfigError(ValueError):
    """The configuration cannot be used; the message names each bad key, its value and why."""


def _mask(value: object) -> str:
    return "None" if value is None else repr(MASK)


def _check(ok: typing.Callable[[Any], bool], expected: str) -> Any:
    def validator(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not ok(value):
            raise Bad(expected, value, attribute.name)

    return validator


def _choice(*choices: str) -> Any:
    return _check(lambda v: v in choices, " or ".join(map(repr, choices)))


_positive = _check(lambda v: v > 0, "a number greater than 0")
_not_negative = _check(lambda v: v >= 0, "a number 0 or more")
_url = _check(lambda v: v.startswith(("http://", "https://")), "an http:// or https:// URL")
_ws_url = _check(lambda v: v.startswith(("ws://", "wss://")), "a ws:// or wss:// URL")
_rate = _check(lambda v: 0 <= v < 1, "a fraction from 0 up to (not including) 1")


def _balances(
    _: object, attribute: attrs.Attribute[Any], value: dict[str, decimal.Decimal]
) -> None:
    for asset, amount in value.items():
        if amount < 0:
            raise Bad("a balance 0 or more", amount, f"{attribute.name}.{asset}")


@attrs.frozen
class StrategyEntry:
    """A strategy to run (as ``run NAME`` names it) and parameter overrides applied at start;
    ``isolate``: in its own process (trading.isolation)."""

    name: str
    params: dict[str, ParamText] = attrs.field(factory=dict)
    isolate: bool = False


@attrs.frozen
class ExchangeConfig:
    kind: str = attrs.field(default="sim", validator=_choice("sim", "binance"))
    symbols: tuple[str, ...] = ()
    live: bool = False
    base_url: str = attrs.field(default="https://api.binance.com", validator=_url)
    ws_url: str | None = attrs.field(default=None, validator=_ws_url)
    api_key: str | None = attrs.field(default=None, repr=_mask)
    api_secret: str | None = attrs.field(default=None, repr=_mask)


@attrs.frozen
class SimulatorConfig:
    seed: int = 7
    speed: float | None = attrs.field(default=None, validator=_positive)


@attrs.frozen
class PaperConfig:
    balances: dict[str, decimal.Decimal] = attrs.field(
        factory=lambda: {"USDT": decimal.Decimal(10000)}, validator=_balances
    )
    fee_rate: decimal.Decimal = attrs.field(default=decimal.Decimal("0.001"), validator=_rate)
    slippage: decimal.Decimal = attrs.field(default=decimal.Decimal("0.0005"), validator=_rate)


@attrs.frozen
class DatabaseConfig:
    path: str = "trio-trade.db"
    enabled: bool = True


@attrs.frozen
class LoggingConfig:
    level: str = attrs.field(default="INFO", validator=_choice("DEBUG", "INFO", "WARNING", "ERROR"))
    file: str | None = None
    format: str = attrs.field(default="text", validator=_choice("text", "json"))


@attrs.frozen
class TelegramConfig:
    token: str | None = attrs.field(default=None, repr=_mask)
    allowed_chats: tuple[int, ...] = ()
    allowed_users: tuple[int, ...] = ()
    topic: int | None = None
    api_base: str = attrs.field(default="https://api.telegram.org", validator=_url)
    max_command_age: float = attrs.field(default=60.0, validator=_positive)
    # Where fills, rejections and failures are sent; empty: the allowed chats. `notify = false`
    # keeps the bot for commands only.
    notify_chats: tuple[int, ...] = ()
    notify: bool = True


@attrs.frozen
class ControlConfig:
    socket: str | None = None  # None: default_socket(), filled in by load_config


_optional = attrs.validators.optional
_scheduler = _check(
    lambda v: "://" in v and not v.startswith(("http://", "https://")),
    "a Dask scheduler address such as tcp://host:8786",
)


@attrs.frozen
class SweepConfig:
    """``trio-trade sweep``: where the replays run unless its flags say otherwise."""

    scheduler: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(_scheduler)
    )
    workers: int | None = attrs.field(default=None, validator=attrs.validators.optional(_positive))


@attrs.frozen
class Config:
    """Everything ``trio-trade run`` needs; the defaults are a run with no file and no flags."""

    strategies_dir: str = "strategies"
    stop_timeout: float = attrs.field(default=10.0, validator=_positive)
    max_restarts: int = attrs.field(default=RestartPolicy().max_restarts, validator=_not_negative)
    strategies: tuple[StrategyEntry, ...] = ()
    exchange: ExchangeConfig = ExchangeConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    paper: PaperConfig = PaperConfig()
    database: DatabaseConfig = DatabaseConfig()
    logging: LoggingConfig = LoggingConfig()
    telegram: TelegramConfig = TelegramConfig()
    control: ControlConfig = ControlConfig()
    sweep: SweepConfig = SweepConfig()

    def masked(self) -> Config:
        """This configuration with every secret that is set replaced by ``"****"``."""

        def hide(value: str | None) -> str | None:
            return None if value is None else MASK

        return attrs.evolve(
            self,
            exchange=attrs.evolve(
                self.exchange,
                api_key=hide(self.exchange.api_key),
                api_secret=hide(self.exchange.api_secret),
            ),
            telegram=attrs.evolve(self.telegram, token=hide(self.telegram.token)),
        )


# -- structuring: strict scalar hooks, so a wrong type is named rather than coerced -------------


def _strict(kinds: tuple[type, ...], expected: str) -> Any:
    def hook(value: object, _: type) -> Any:
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise Bad(expected, value)
        if isinstance(value, float) and not math.isfinite(value):
            raise Bad(expected + " (finite)", value)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    return hook


def _decimal(value: object, _: type) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Bad("a decimal number", value)
    try:
        number = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise Bad("a decimal number", value) from None
    if not number.is_finite():
        raise Bad("a finite decimal number", value)
    return number


def _param(value: object, _: type) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise Bad("a string, number or boolean", value)


def _tuple_hook(tp: Any) -> Any:
    (item,) = typing.get_args(tp)[:1]

    def hook(value: object, _: type) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise Bad(f"a list of {_name(item)}", value)
        out = []
        for index, element in enumerate(value):
            try:
                out.append(_converter.structure(element, item))
            except Exception as exc:  # named with its index by problems
                raise Nested(f"[{index}]", exc) from None
        return tuple(out)

    return hook


def _name(tp: Any) -> str:
    return {str: "strings", int: "whole numbers"}.get(tp, "entries")


def _is_tuple(tp: Any) -> bool:
    return typing.get_origin(tp) is tuple and typing.get_args(tp)[1:] == (...,)


_converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
_converter.register_structure_hook(str, _strict((str,), "a string"))
_converter.register_structure_hook(int, _strict((int,), "a whole number"))
_converter.register_structure_hook(float, _strict((int, float), "a number"))
_converter.register_structure_hook(bool, _strict((bool,), "true or false"))
_converter.register_structure_hook(decimal.Decimal, _decimal)
_converter.register_structure_hook(ParamText, _param)
_converter.register_structure_hook_factory(_is_tuple, _tuple_hook)


def from_dict(data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Config:
    """Structure parsed TOML into a :class:`Config`; ``environ`` fills secrets and the socket."""
    try:
        config = _converter.structure(dict(data), Config)
    except Exception as exc:  # cattrs raises groups of many kinds; one sentence per problem
        messages = [f"{dotted(p)}: {m}" for p, m in problems(exc, ())]
        raise ConfigError("; ".join(messages) or "invalid configuration") from None
    return _with_environment(config, os.environ if environ is None else environ)


def _with_environment(config: Config, environ: Mapping[str, str]) -> Config:
    ex, tg, ctl = config.exchange, config.telegram, config.control
    return attrs.evolve(
        config,
        exchange=attrs.evolve(
            ex,
            api_key=ex.api_key or environ.get("BINANCE_API_KEY") or None,
            api_secret=ex.api_secret or environ.get("BINANCE_API_SECRET") or None,
        ),
        telegram=attrs.evolve(tg, token=tg.token or environ.get(TELEGRAM_TOKEN_ENV) or None),
        control=ControlConfig(socket=ctl.socket or default_socket(environ)),
    )


def default_socket(environ: Mapping[str, str] | None = None) -> str:
    """``$XDG_RUNTIME_DIR/trio-trade.sock`` (a per-user 0700 directory), else per uid in /tmp."""
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        return str(Path(runtime) / "trio-trade.sock")
    return f"/tmp/trio-trade-{os.getuid()}.sock"


def default_config(environ: Mapping[str, str] | None = None) -> Config:
    """The configuration of a run with no file (secrets and socket from ``environ``)."""
    return from_dict({}, environ)


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """Read and check ``path``. Raises :class:`ConfigError` (also for an unreadable file)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        return from_dict(data, environ)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def merge_flags(config: Config, args: argparse.Namespace) -> Config:
    """``config`` with every flag given on the command line (``args`` values not None/False)."""

    def given(name: str) -> Any:
        return getattr(args, name, None)

    top: dict[str, Any] = {}
    if given("strategies_dir") is not None:
        top["strategies_dir"] = str(args.strategies_dir)
    for name in ("stop_timeout", "max_restarts"):
        if given(name) is not None:
            top[name] = given(name)
    if given("strategies"):
        top["strategies"] = tuple(StrategyEntry(name=n) for n in args.strategies)
    if given("isolate"):  # --isolate: every strategy of the run in its own process
        entries = top.get("strategies", config.strategies)
        top["strategies"] = tuple(attrs.evolve(e, isolate=True) for e in entries)
    ex: dict[str, Any] = {}
    for flag, key in (("exchange", "kind"), ("base_url", "base_url"), ("ws_url", "ws_url")):
        if given(flag) is not None:
            ex[key] = given(flag)
    if given("symbol"):
        ex["symbols"] = tuple(args.symbol)
    if given("live"):
        ex["live"] = True
    sim = {k: given(k) for k in ("seed", "speed") if given(k) is not None}
    db: dict[str, Any] = {"enabled": False} if given("no_db") else {}
    if given("db") is not None:
        db["path"] = str(args.db)
    log: dict[str, Any] = {"level": "DEBUG"} if given("verbose") else {}
    if given("logfile") is not None:
        log["file"] = str(args.logfile)
    if given("log_format") is not None:
        log["format"] = args.log_format
    return attrs.evolve(
        config,
        **top,
        exchange=attrs.evolve(config.exchange, **ex),
        simulator=attrs.evolve(config.simulator, **sim),
        database=attrs.evolve(config.database, **db),
        logging=attrs.evolve(config.logging, **log),
    )


# -- rendering ------------------------------------------------------------------------------------


def _string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, but characters past the BMP stay as they
    are (JSON's surrogate-pair escapes are not TOML) and DEL is escaped (TOML requires it)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot render {type(value).__name__}")


def _table(obj: attrs.AttrsInstance) -> list[str]:
    return [
        f"{a.name} = {_value(getattr(obj, a.name))}"
        for a in attrs.fields(type(obj))
        if getattr(obj, a.name) is not None
    ]


def render(config: Config) -> str:
    """``config`` as TOML that :func:`load_config` reads back, secrets masked."""
    shown = config.masked()
    lines = [
        f"{key} = {_value(getattr(shown, key))}"
        for key in ("strategies_dir", "stop_timeout", "max_restarts")
    ]
    for section in (
        "exchange", "simulator", "paper", "database", "logging", "telegram", "control", "sweep"
    ):  # fmt: skip
        lines += ["", f"[{section}]", *_table(getattr(shown, section))]
    for entry in shown.strategies:
        lines += ["", "[[strategies]]", f"name = {_value(entry.name)}"]
        if entry.params:
            lines.append(f"params = {_value(dict(entry.params))}")
        if entry.isolate:
            lines.append("isolate = true")
    return "\n".join(lines) + "\n"
