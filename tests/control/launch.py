"""``trio-trade`` with the ``ctl`` verb and ``run --socket`` added if the CLI lacks them yet."""

from __future__ import annotations

import sys

from trading import cli
from trading.control import client
from trading.serve import run


def main(argv: list[str]) -> int:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    choices = sub.choices  # type: ignore[attr-defined]
    if "ctl" not in choices:
        client.add_parser(sub)
    if not any("--socket" in a.option_strings for a in choices["run"]._actions):
        client.add_run_arguments(choices["run"])
    args = parser.parse_args(argv)
    if args.verb == "ctl":
        return client.run(args)
    if args.verb == "run":
        return run(args)
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
