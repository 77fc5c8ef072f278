"""The reload generation file: every reader sees a bump once, the writer not at all."""

from __future__ import annotations

from pathlib import Path

from src.serve.reload_signal import ReloadGeneration, prepare_generation_file


def test_a_bump_is_seen_once_by_every_other_reader(tmp_path: Path) -> None:
    path = prepare_generation_file(tmp_path)
    assert prepare_generation_file(tmp_path) == path  # existing file kept
    writer, reader_a, reader_b = (ReloadGeneration(path) for _ in range(3))
    assert not reader_a.changed()
    assert writer.bump() == 1
    assert not writer.changed()  # the worker that got the request already reloaded
    assert reader_a.changed()
    assert not reader_a.changed()
    assert reader_b.changed()
    assert writer.bump() == 2
    assert reader_a.changed()
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_missing_or_garbled_file_reads_as_zero(tmp_path: Path) -> None:
    generation = ReloadGeneration(tmp_path / "absent")
    assert generation.read() == 0
    assert not generation.changed()
    (tmp_path / "absent").write_text("garbage")
    assert generation.read() == 0
