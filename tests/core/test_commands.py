"""Tests for operator command parsing and replies (core: no event loop)."""

from __future__ import annotations

import re
import shlex
import sys
from types import FrameType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.commands import (
    BUILTIN_VERBS,
    MAX_COMMAND_LENGTH,
    Command,
    CommandError,
    CommandResult,
    parse_command,
    split_words,
    usage,
)

# Written out here, not read from the module: the verbs DESIGN.md promises.
EXPECTED_VERBS = {
    "status",
    "pause",
    "resume",
    "wake",
    "set",
    "stop",
    "help",
    "flatten",
    "reduce-only",
}


def test_builtin_verbs_are_the_documented_ones() -> None:
    assert set(BUILTIN_VERBS) == EXPECTED_VERBS


@pytest.mark.parametrize(
    "text",
    [
        "pause sma_cross",
        "/pause sma_cross",
        "/pause@mybot sma_cross",
        "PAUSE sma_cross",
        "  pause   sma_cross  ",
    ],
)
def test_pause_spellings(text: str) -> None:
    command = parse_command(text)
    assert command.verb == "pause"
    assert command.target == "sma_cross"
    assert command.args == ()
    assert command.params == ()
    assert command.text == text.strip()


@pytest.mark.parametrize("verb", sorted(EXPECTED_VERBS - {"set", "help", "reduce-only"}))
def test_each_simple_verb_with_all(verb: str) -> None:
    command = parse_command(f"{verb} all")
    assert command.verb == verb
    assert command.target == "all"


@pytest.mark.parametrize("verb", sorted(EXPECTED_VERBS - {"set", "reduce-only"}))
def test_each_simple_verb_without_target(verb: str) -> None:
    command = parse_command(verb)
    assert command.verb == verb
    assert command.target is None
    assert command.args == ()
    assert command.params == ()


def test_stop_all() -> None:
    assert parse_command("stop all") == Command(verb="stop", target="all", text="stop all")


def test_set_with_target_keeps_params_in_order() -> None:
    command = parse_command("set sma_cross slow=30 fast=12")
    assert command.verb == "set"
    assert command.target == "sma_cross"
    assert command.params == (("slow", "30"), ("fast", "12"))
    assert command.args == ()


def test_set_without_target() -> None:
    command = parse_command("set fast=12")
    assert command.target is None
    assert command.params == (("fast", "12"),)


def test_set_quoted_value_keeps_spaces() -> None:
    command = parse_command("set x name=\"a b\" other='c  d'")
    assert command.target == "x"
    assert command.params == (("name", "a b"), ("other", "c  d"))


def test_set_value_may_contain_equals_and_be_empty() -> None:
    command = parse_command("set x expr=a=b empty=")
    assert command.params == (("expr", "a=b"), ("empty", ""))


def test_status_and_help() -> None:
    assert parse_command("status").verb == "status"
    assert parse_command("status sma_cross").target == "sma_cross"
    assert parse_command("/help").verb == "help"
    assert parse_command("/help@mybot").verb == "help"


def test_custom_verb_carries_args() -> None:
    command = parse_command("boost sma_cross 2", custom_verbs={"boost"})
    assert command.verb == "boost"
    assert command.target == "sma_cross"
    assert command.args == ("2",)
    assert command.params == ()


def test_custom_verb_args_keep_quotes_and_equals() -> None:
    command = parse_command('note x "hello world" k=v', custom_verbs=["note"])
    assert command.args == ("hello world", "k=v")


def test_custom_verb_unknown_without_declaration() -> None:
    with pytest.raises(CommandError, match="boost"):
        parse_command("boost sma_cross 2")


@pytest.mark.parametrize("source", ["telegram", "stdin", "local"])
def test_source_is_carried(source: str) -> None:
    assert parse_command("pause x", source=source).source == source
    assert parse_command("set x a=1", source=source).source == source


def test_default_source_is_api() -> None:
    assert parse_command("status").source == "api"


def test_for_target_changes_only_the_target() -> None:
    command = parse_command("set all fast=3", source="telegram")
    one = command.for_target("sma_cross")
    assert one.target == "sma_cross"
    assert (one.verb, one.params, one.source, one.text) == (
        command.verb,
        command.params,
        command.source,
        command.text,
    )
    assert command.target == "all"  # the original is unchanged (frozen)


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_command(text: str) -> None:
    with pytest.raises(CommandError, match=r"empty command.*help"):
        parse_command(text)


def test_unknown_verb_lists_known_verbs() -> None:
    with pytest.raises(CommandError) as info:
        parse_command("explode sma_cross")
    message = str(info.value)
    assert "'explode'" in message
    for verb in EXPECTED_VERBS:
        assert verb in message


def test_unknown_verb_lists_custom_verbs_too() -> None:
    with pytest.raises(CommandError) as info:
        parse_command("explode x", custom_verbs={"boost"})
    assert "boost" in str(info.value)


def test_set_with_nothing_to_set() -> None:
    with pytest.raises(CommandError) as info:
        parse_command("set sma_cross")
    assert "nothing to set" in str(info.value)
    assert "key=value" in str(info.value)


def test_set_alone() -> None:
    with pytest.raises(CommandError, match="nothing to set"):
        parse_command("set")


def test_set_token_without_equals() -> None:
    with pytest.raises(CommandError) as info:
        parse_command("set sma_cross fast")
    assert "'fast' is not key=value" in str(info.value)


@pytest.mark.parametrize("token", ["=12", "1fast=2", "fa-st=2", "fa.st=3"])
def test_set_bad_keys(token: str) -> None:
    with pytest.raises(CommandError, match="not key=value"):
        parse_command(f"set x {token}")


def test_set_duplicate_key() -> None:
    with pytest.raises(CommandError) as info:
        parse_command("set sma_cross fast=1 slow=5 fast=2")
    assert "'fast' is given twice" in str(info.value)


@pytest.mark.parametrize("verb", sorted(EXPECTED_VERBS - {"set", "help", "reduce-only"}))
def test_extra_words_are_rejected_with_usage(verb: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(f"{verb} a b")
    message = str(info.value)
    assert "'b'" in message
    assert BUILTIN_VERBS[verb] in message


def test_params_on_a_non_set_verb_are_rejected() -> None:
    with pytest.raises(CommandError, match="unexpected"):
        parse_command("pause x fast=1")


def test_help_takes_no_name() -> None:
    with pytest.raises(CommandError, match="help takes no strategy name"):
        parse_command("help x")


@pytest.mark.parametrize(
    ("text", "column"), [('set x name="a b', 12), ("pause 'x", 7), ('pause x"', 8), ("x \\", 3)]
)
def test_unbalanced_quotes(text: str, column: int) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(text)
    assert str(info.value).startswith("cannot read the command: ")
    assert str(info.value).endswith(f" at column {column}")


@pytest.mark.parametrize("target", ["1abc", "a b", "x/y", "-x", "sma$", "é!"])
def test_illegal_target(target: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(f"pause {target!r}" if " " in target else f"pause {target}")
    assert "is not a strategy name" in str(info.value)


def test_target_with_trailing_newline_is_illegal() -> None:
    with pytest.raises(CommandError, match="is not a strategy name"):
        parse_command('pause "sma_cross\n"')


def test_key_with_trailing_newline_is_illegal() -> None:
    with pytest.raises(CommandError, match="not key=value"):
        parse_command('set x "fast\n=1"')


@pytest.mark.parametrize("target", ["sma_cross", "_x", "A.b", "pkg.mod:Cls", "a-b", "all"])
def test_legal_targets(target: str) -> None:
    assert parse_command(f"wake {target}").target == target


# -- CommandResult and usage ----------------------------------------------------------------------


def test_command_result_str_ok() -> None:
    assert str(CommandResult("sma_cross", True, "paused")) == "sma_cross: ok: paused"


def test_command_result_str_error() -> None:
    result = CommandResult("sma_cross", False, "no such parameter", state="sleeping")
    assert str(result) == "sma_cross: error: no such parameter"


def test_command_result_str_without_target() -> None:
    assert str(CommandResult("", False, "empty command")) == "error: empty command"
    assert str(CommandResult("", True, "done")) == "ok: done"


def test_usage_lists_every_builtin_verb() -> None:
    text = usage()
    lines = text.splitlines()
    for verb in EXPECTED_VERBS:
        assert any(line.startswith(f"{verb}") for line in lines), verb
    assert len(lines) == len(EXPECTED_VERBS)


@pytest.mark.parametrize(
    ("text", "target", "args"),
    [
        ("reduce-only sma_cross on", "sma_cross", ("on",)),
        ("reduce-only all OFF", "all", ("off",)),
        ("reduce-only on", None, ("on",)),
    ],
)
def test_reduce_only_takes_on_or_off(text: str, target: str | None, args: tuple[str, ...]) -> None:
    command = parse_command(text)
    assert (command.verb, command.target, command.args) == ("reduce-only", target, args)


@pytest.mark.parametrize(
    "text", ["reduce-only sma_cross", "reduce-only sma_cross maybe", "reduce-only"]
)
def test_reduce_only_without_on_or_off_is_refused(text: str) -> None:
    with pytest.raises(CommandError, match="reduce-only: say on or off"):
        parse_command(text)


def test_usage_lists_custom_verbs_sorted() -> None:
    text = usage({"zap": "zap it", "boost": "double size"})
    lines = text.splitlines()
    assert lines[-2] == "boost NAME ...: double size"
    assert lines[-1] == "zap NAME ...: zap it"
    for verb in EXPECTED_VERBS:
        assert any(line.startswith(verb) for line in lines), verb


# -- property: only CommandError escapes ----------------------------------------------------------


@given(text=st.text(max_size=60))
def test_arbitrary_text_parses_or_raises_command_error(text: str) -> None:
    try:
        command = parse_command(text, custom_verbs={"boost", "note"})
    except CommandError:
        return
    assert isinstance(command, Command)
    assert command.verb in EXPECTED_VERBS | {"boost", "note"}


verbish = st.sampled_from([*sorted(EXPECTED_VERBS), "boost", "/pause", "/set@bot", "explode"])
tokenish = st.text(alphabet=st.sampled_from("abAB_09=.:-\"' \\@/é\n"), min_size=0, max_size=12)


@given(verb=verbish, rest=st.lists(tokenish, max_size=4))
def test_commandlike_text_parses_or_raises_command_error(verb: str, rest: list[str]) -> None:
    text = " ".join([verb, *rest])
    try:
        command = parse_command(text, custom_verbs={"boost"})
    except CommandError as exc:
        assert str(exc)
        return
    assert command.verb in EXPECTED_VERBS | {"boost"}
    if command.verb == "set":
        assert command.params
        keys = [key for key, _ in command.params]
        assert len(keys) == len(set(keys))
    elif command.verb != "boost":
        assert command.args == ()
        assert command.params == ()


def test_custom_verb_with_only_arguments_has_no_target() -> None:
    command = parse_command("boost 2", custom_verbs={"boost"})
    assert (command.target, command.args) == (None, ("2",))
    named = parse_command("boost sma_cross 2", custom_verbs={"boost"})
    assert (named.target, named.args) == ("sma_cross", ("2",))


# -- linear parsing, bounded lines ---------------------------------------------------------------

_SHELL_ALPHABET = st.sampled_from([" ", "\t", "'", '"', "\\", "a", "b", "=", "@", "/", "é"])


@given(st.lists(_SHELL_ALPHABET, max_size=30).map("".join))
def test_split_words_splits_as_shlex_does(text: str) -> None:
    try:
        expected: list[str] | None = shlex.split(text)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(CommandError, match=r"^cannot read the command: "):
            split_words(text)
    else:
        assert split_words(text) == expected


def _pathological(n: int) -> dict[str, str]:
    """Lines of about ``n`` characters that make naive tokenizers quadratic or backtrack."""
    return {
        "spaces": "status" + " " * n,
        "one long word": "set x k=" + "a" * n,
        "quoted pieces": "set x k=" + "'a'" * (n // 3),
        "empty quotes": '""' * (n // 2),
        "escapes in quotes": '"' + "\\a" * (n // 2) + '"',
        "backslashes": "\\\\" * (n // 2),
        "k=v pairs": "set x " + "k=v " * (n // 4),
        "prefixes": "/@" * (n // 2),
        "unterminated quote": '"' + 'a\\"' * (n // 3),
        "unterminated single": "a'" + "b" * n,
    }


def _operations(text: str) -> int:
    """Python-level calls and C calls made while splitting ``text``: a count, not a time."""
    count = 0

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal count
        count += 1

    sys.setprofile(profile)
    try:
        split_words(text)
    except CommandError:
        pass
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize("kind", sorted(_pathological(8)))
def test_splitting_does_work_linear_in_the_line(kind: str) -> None:
    small = _operations(_pathological(20_000)[kind])
    large = _operations(_pathological(80_000)[kind])
    assert large <= 4.4 * small + 100, (small, large)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", sorted(_pathological(8)))
def test_a_megabyte_line_is_split_or_refused_at_once(kind: str) -> None:
    # 2 MB: a quadratic tokenizer (shlex grows each word a character at a time) needs minutes.
    line = _pathological(2_000_000)[kind]
    try:
        words = split_words(line)
    except CommandError as exc:
        assert len(str(exc)) < 80
    else:
        assert sum(map(len, words)) <= len(line)
    with pytest.raises(CommandError) as info:
        parse_command(line)
    message = str(info.value)
    assert message == f"command too long ({len(line)} characters; the limit is 4096)"


def test_the_bound_is_4096_characters() -> None:
    assert MAX_COMMAND_LENGTH == 4096
    assert parse_command("status" + " " * (4096 - 6)).verb == "status"
    with pytest.raises(CommandError, match="command too long"):
        parse_command("status" + " " * (4097 - 6))


@pytest.mark.parametrize(
    "text",
    [
        "frobnicate" + "x" * 4000,
        "pause " + "y" * 4000 + " now",
        "pause sma " + "z" * 4000,
        "set sma " + "k" * 4000,
        "set sma " + "k" * 2000 + "=1 " + "k" * 2000 + "=2",
        "pause " + "%" * 4000,
    ],
)
def test_errors_quote_a_short_prefix_never_the_line(text: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(text)
    message = str(info.value)
    assert len(message) < 300, message
    assert max(len(run) for run in re.findall(r"(.)\1*", message)) <= 40
