"""``trio-trade ctl``: send one command to a running ``trio-trade run`` and print its reply.

The rules this module keeps:

* Plain text by default, the same lines the run's console prints (``NAME: ok: ...``); ``--json``
  prints the reply objects as they came, one per line, for scripts.
* Exit status: 0 every reply ok; 1 a command refused (any reply not ok), or ``health`` found
  something not healthy; 2 a usage error or
  nothing running at the socket; 3 no reply within ``--timeout`` seconds.
* ``tail`` prints events until the run ends or Ctrl-C (exit 0); ``--timeout`` bounds only the
  wait for its first answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import trio

from trading.arguments import positive_float
from trading.control.local import MAX_LINE, LineIterator, LineTooLong, default_socket_path
from trading.core.commands import CommandResult

__all__ = [
    "EXIT_NOT_RUNNING",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_TIMEOUT",
    "add_parser",
    "add_run_arguments",
    "run",
]

EXIT_OK, EXIT_REFUSED, EXIT_NOT_RUNNING, EXIT_TIMEOUT = 0, 1, 2, 3


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``ctl`` verb on ``parser.add_subparsers()``'s result."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "ctl",
        help="command a running `trio-trade run` from another shell",
        description=(
            "Send a command to a running `trio-trade run` over its control socket: status, "
            "pause|resume|wake|stop|flatten NAME|all, set NAME key=value, health, tail."
        ),
        epilog="exit status: 0 ok; 1 a command refused; 2 usage, or nothing running there; "
        "3 no reply in time",
    )
    p.add_argument(
        "--socket",
        metavar="PATH",
        help=f"the run's control socket (default {default_socket_path()})",
    )
    p.add_argument("--json", action="store_true", help="print the reply objects as JSON lines")
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=30.0,
        metavar="S",
        help="seconds to wait for the reply (default 30)",
    )
    p.add_argument("command", nargs="+", metavar="COMMAND", help="e.g. status, pause sma_cross")
    return p


def add_run_arguments(p_run: argparse.ArgumentParser) -> None:
    """``--socket PATH`` / ``--no-socket`` on ``trio-trade run``."""
    group = p_run.add_mutually_exclusive_group()
    group.add_argument(
        "--socket",
        metavar="PATH",
        help=f"serve `trio-trade ctl` on this Unix socket (default {default_socket_path()})",
    )
    group.add_argument("--no-socket", action="store_true", help="no control socket")


def run(args: argparse.Namespace) -> int:
    path = args.socket or default_socket_path()
    command = " ".join(args.command).strip()
    try:
        return trio.run(_ctl, path, command, args.json, args.timeout)
    except KeyboardInterrupt:
        return EXIT_OK


def _print_reply(reply: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(reply), flush=True)
    if "error" in reply:
        if not as_json:
            print(f"error: {reply['error']}", file=sys.stderr)
        return EXIT_REFUSED
    if not as_json:
        if "table" in reply:
            print(reply["table"])
        elif "text" in reply:
            print(reply["text"])
        else:
            for item in reply.get("replies", []):
                result = CommandResult(str(item["strategy"]), bool(item["ok"]), str(item["text"]))
                print(result)
    return EXIT_OK if reply.get("ok") else EXIT_REFUSED


async def _ctl(path: str, command: str, as_json: bool, seconds: float) -> int:
    request = json.dumps({"id": 1, "command": command}).encode() + b"\n"
    if len(request) > MAX_LINE:
        print(f"trio-trade: command too long (the limit is {MAX_LINE} bytes)", file=sys.stderr)
        return EXIT_NOT_RUNNING
    try:
        with trio.fail_after(seconds):
            stream = await trio.open_unix_socket(path)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
        print(f"trio-trade: no trio-trade run is listening on {path}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    except PermissionError:
        print(f"trio-trade: cannot open {path}: permission denied", file=sys.stderr)
        return EXIT_NOT_RUNNING
    except OSError as exc:
        print(f"trio-trade: cannot open {path}: {exc}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    except trio.TooSlowError:
        print(f"trio-trade: no answer from {path} within {seconds:g}s", file=sys.stderr)
        return EXIT_TIMEOUT
    async with stream:
        lines = LineIterator(stream, 16 * MAX_LINE)
        try:
            with trio.fail_after(seconds):
                await stream.send_all(request)
                line = await anext(lines, None)
        except trio.TooSlowError:
            print(f"trio-trade: no reply from {path} within {seconds:g}s", file=sys.stderr)
            return EXIT_TIMEOUT
        except trio.BrokenResourceError:
            line = None
        if line is None or isinstance(line, LineTooLong):
            print(f"trio-trade: the run at {path} closed without a reply", file=sys.stderr)
            return EXIT_NOT_RUNNING
        reply = json.loads(line)
        status = _print_reply(reply, as_json)
        if not reply.get("tail"):
            return status
        async for line in lines:
            if isinstance(line, LineTooLong):
                continue
            event = json.loads(line)
            print(json.dumps(event) if as_json else event["text"], flush=True)
        return EXIT_OK
