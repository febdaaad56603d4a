"""The live terminal view of ``trio-trade run``: the status table above an input line, with log
lines, notices and replies scrolling above both (prompt_toolkit in a thread the run owns, Rich
for the table). ``run`` picks it when standard input and output are terminals."""

from __future__ import annotations

from trading.tui.view import TerminalView, add_view_arguments, wants_view

__all__ = ["TerminalView", "add_view_arguments", "wants_view"]
