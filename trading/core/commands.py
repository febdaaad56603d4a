"""Operator commands: parsing text into :class:`Command` and the replies they get.

Core module: no trio, no IO. The same parser serves every front end (standard input, Telegram,
the local control socket, a notebook), so a command means the same thing wherever it is typed.
Whether a *target* exists is not known here; the Runner checks that against its strategies.

Bad input is answered, never fatal (DESIGN.md rule 12): a line longer than
:data:`MAX_COMMAND_LENGTH` is refused before it is read, and the tokenizer takes each character
once (``shlex`` grows a token one character at a time, which is quadratic in a long token), so
parsing costs time linear in the line. Error messages quote at most a short prefix of what was
typed, never a whole line.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import attrs

__all__ = [
    "BUILTIN_VERBS",
    "MAX_COMMAND_LENGTH",
    "Command",
    "CommandError",
    "CommandResult",
    "parse_command",
    "split_words",
    "usage",
]

ALL = "all"

# verb -> one line of help. The order is the order `help` prints them in.
BUILTIN_VERBS: Mapping[str, str] = {
    "status": "status [NAME|all]: state, schedule and parameters (does not interrupt anything)",
    "pause": "pause NAME|all: stop computing at once (interrupts compute or sleep) until resume",
    "resume": "resume NAME|all: back to the bar schedule (or restart a failed strategy now)",
    "wake": "wake NAME|all: run next() now instead of waiting for the bar close",
    "set": "set NAME key=value [...]: change parameters (validated, applied between phases)",
    "flatten": "flatten NAME|all: cancel open orders, close positions at market, then pause",
    "reduce-only": "reduce-only NAME|all on|off: keep computing; refuse orders adding exposure",
    "stop": "stop NAME|all: interrupt, run on_stop, cancel open orders, end the strategy",
    "help": "help: list the commands",
}
VERB_RE = re.compile(r"[a-z][a-z0-9_-]*")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
MAX_COMMAND_LENGTH = 4096  # characters; a command is a line a person types
_QUOTE_LIMIT = 40  # characters of user text an error message may quote

# One piece of a word per match, each a run the regex engine takes in one linear pass:
# unquoted text, a single-quoted string, a double-quoted string (backslash escapes " and \),
# a backslash escape, or whitespace between words. The alternatives cannot match the same
# text two ways, so a failed match does not backtrack more than linearly.
_PIECE_RE = re.compile(
    r"""(?P<space>\s+)|(?P<plain>[^\s'"\\]+)|'(?P<single>[^']*)'"""
    r"""|"(?P<double>(?:[^"\\]|\\.)*)"|\\(?P<escaped>.)""",
    re.DOTALL,
)
_DOUBLE_ESCAPE_RE = re.compile(r'\\(["\\])')


class CommandError(ValueError):
    """A command that cannot be understood; the message says what would be understood."""


@attrs.frozen(slots=True)
class Command:
    """A parsed command. ``target`` is None when the text named none (the runner decides)."""

    verb: str
    target: str | None = None
    args: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    source: str = "api"
    text: str = ""

    def for_target(self, target: str) -> Command:
        """The same command addressed to one strategy (how `all` fans out)."""
        return attrs.evolve(self, target=target)


@attrs.frozen(slots=True)
class CommandResult:
    """Every command gets one per strategy it reached: ok or not, and a sentence for a human."""

    target: str
    ok: bool
    message: str
    state: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.target}: " if self.target else ""
        return f"{prefix}{'ok' if self.ok else 'error'}: {self.message}"


def usage(custom: Mapping[str, str] | None = None) -> str:
    lines = list(BUILTIN_VERBS.values())
    for verb, text in sorted((custom or {}).items()):
        # Strategies usually write their own usage ("boost NAME X: ..."); keep it as written.
        lines.append(text if text.startswith(f"{verb} NAME") else f"{verb} NAME ...: {text}")
    return "\n".join(lines)


def parse_command(
    text: str,
    *,
    source: str = "api",
    custom_verbs: Collection[str] = (),
) -> Command:
    """Parse ``pause sma_cross``, ``/pause@mybot sma_cross``, ``set sma_cross fast=12``, ``status``.

    Telegram-style slashes and ``@botname`` suffixes are accepted so the same text works in a chat
    and in a terminal. Raises :class:`CommandError` naming the problem and the accepted forms.
    """
    if len(text) > MAX_COMMAND_LENGTH:
        raise CommandError(
            f"command too long ({len(text)} characters; the limit is {MAX_COMMAND_LENGTH})"
        )
    tokens = split_words(text)
    if not tokens:
        raise CommandError("empty command; try 'help'")
    verb = tokens[0].lstrip("/").split("@", 1)[0].lower()
    rest = tokens[1:]
    known = set(BUILTIN_VERBS) | set(custom_verbs)
    if not VERB_RE.fullmatch(verb) or verb not in known:
        raise CommandError(
            f"unknown command {_quote(tokens[0])}; known: {', '.join(sorted(known))}"
        )

    target: str | None = None
    only_switch = verb == "reduce-only" and len(rest) == 1  # `reduce-only on`: target left out
    custom = verb not in BUILTIN_VERBS
    if rest and "=" not in rest[0] and not only_switch:
        if custom and not _NAME_RE.fullmatch(rest[0]):
            pass  # `boost 2`: no target, only arguments (the runner picks the only strategy)
        else:
            target = rest.pop(0)
            if not _NAME_RE.fullmatch(target):
                raise CommandError(f"{verb}: {_quote(target)} is not a strategy name")
    # With no target the runner resolves it: `all` for status, else the only strategy running.

    params: list[tuple[str, str]] = []
    args: tuple[str, ...] = ()
    if verb == "set":
        if not rest:
            raise CommandError("set: nothing to set; use 'set NAME key=value [key=value ...]'")
        seen: set[str] = set()
        for token in rest:
            key, sep, value = token.partition("=")
            if not sep or not _KEY_RE.fullmatch(key):
                raise CommandError(
                    f"set: {_quote(token)} is not key=value; "
                    "use 'set NAME key=value [key=value ...]'"
                )
            if key in seen:
                raise CommandError(f"set: {_quote(key)} is given twice")
            seen.add(key)
            params.append((key, value))
    elif verb == "reduce-only":
        if len(rest) != 1 or rest[0].lower() not in ("on", "off"):
            raise CommandError(f"reduce-only: say on or off; usage: {BUILTIN_VERBS[verb]}")
        args = (rest[0].lower(),)
    elif verb in BUILTIN_VERBS:
        if rest:
            raise CommandError(
                f"{verb}: unexpected {_quote(' '.join(rest))}; usage: {BUILTIN_VERBS[verb]}"
            )
    else:
        args = tuple(rest)
    if verb == "help" and target is not None:
        raise CommandError("help takes no strategy name")
    return Command(
        verb=verb, target=target, args=args, params=tuple(params), source=source, text=text.strip()
    )


def split_words(text: str) -> list[str]:
    """Split like a POSIX shell (``shlex.split``, no comments), in time linear in ``text``.

    Quotes group words (``'a b'``, ``"a \\"b\\""``), a backslash escapes the next character,
    and quoted and unquoted pieces next to each other make one word. Raises
    :class:`CommandError` on an unterminated quote or a trailing backslash.
    """
    words: list[str] = []
    parts: list[str] = []
    in_word = False
    pos, end = 0, len(text)
    match = _PIECE_RE.match
    while pos < end:
        piece = match(text, pos)
        if piece is None:
            what = {"'": "unterminated single quote", '"': "unterminated double quote"}.get(
                text[pos], "nothing after the backslash"
            )
            raise CommandError(f"cannot read the command: {what} at column {pos + 1}")
        pos = piece.end()
        kind = piece.lastgroup
        if kind == "space":
            if in_word:
                words.append("".join(parts))
                parts.clear()
                in_word = False
            continue
        in_word = True
        value = piece.group(kind) if kind is not None else ""
        if kind == "double":
            value = _DOUBLE_ESCAPE_RE.sub(r"\1", value)
        parts.append(value)
    if in_word:
        words.append("".join(parts))
    return words


def _quote(text: str) -> str:
    """User text for an error message: quoted, and cut short so a reply never echoes a line."""
    if len(text) <= _QUOTE_LIMIT:
        return repr(text)
    return f"{text[:_QUOTE_LIMIT]!r}... ({len(text)} characters)"
