"""Where the view keeps typed commands: an XDG state file only its owner can read, or none."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from prompt_toolkit.history import FileHistory, InMemoryHistory

from trading.tui.history import history_path, open_history


def test_the_path_follows_xdg_state_home_or_the_home_folder(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    assert history_path({"XDG_STATE_HOME": state, "HOME": "/h"}) == Path(
        state, "trio-trade", "history"
    )
    home = Path("/h/.local/state/trio-trade/history")
    assert history_path({"HOME": "/h"}) == home
    # The spec: a relative XDG_STATE_HOME is invalid and ignored.
    assert history_path({"XDG_STATE_HOME": "relative/state", "HOME": "/h"}) == home
    assert history_path({"XDG_STATE_HOME": "", "HOME": "/h"}) == home


def test_created_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "trio-trade" / "history"
    history, why_not = open_history(path)
    assert why_not is None and isinstance(history, FileHistory)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    history.append_string("pause sma_cross")
    again, _ = open_history(path)
    assert list(again.load_history_strings()) == ["pause sma_cross"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_file_others_could_read_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "history"
    path.write_text("")
    path.chmod(0o644)
    open_history(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_history_that_cannot_be_kept_costs_the_history_not_the_run(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    history, why_not = open_history(locked / "trio-trade" / "history")
    assert isinstance(history, InMemoryHistory)
    assert why_not is not None and "command history not kept" in why_not


def test_a_folder_where_the_file_should_be_costs_the_history_not_the_run(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    history, why_not = open_history(folder)  # a folder where the file should be
    assert isinstance(history, InMemoryHistory) and why_not is not None
