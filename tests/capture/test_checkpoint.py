"""The crash checkpoint: atomic saves, and a disk that refuses one stops the connector
as loudly as the journal does (JournalError naming the path, exit 4 in the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssmd.capture import checkpoint
from ssmd.capture.journal_format import JournalError

MARKS = checkpoint.Checkpoint(links={0: checkpoint.Mark(open_key="raw/a", open_line=3)})


def test_save_then_load_round_trips_and_clear_removes(tmp_path: Path) -> None:
    path = checkpoint.checkpoint_path(tmp_path, "dev", "sim", 0)
    checkpoint.save(path, MARKS)
    assert checkpoint.load(path) == MARKS
    assert not path.with_suffix(".tmp").exists()
    checkpoint.clear(path)
    assert checkpoint.load(path) is None


def test_an_unwritable_place_is_a_journal_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where the state directory should be")
    path = checkpoint.checkpoint_path(tmp_path, "dev", "sim", 0)
    with pytest.raises(JournalError) as err:
        checkpoint.save(path, MARKS)
    assert "cannot write the checkpoint" in str(err.value)
    assert str(tmp_path / "state") in str(err.value)
