"""write_atomically: the one way the app replaces a file."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from mri_style_app.files import write_atomically


def test_the_new_file_gets_the_usual_permissions_not_mkstemps_0600(tmp_path):
    path = write_atomically(tmp_path / "model.json", lambda tmp: open(tmp, "w").write("{}"))
    assert path.read_text() == "{}"
    if sys.platform != "win32":
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("old\n")

    def half_then_fail(tmp):
        with open(tmp, "w") as fh:
            fh.write("new, half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_fail)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"]


def test_the_suffix_lets_a_writer_choose_the_format_by_extension(tmp_path):
    seen = []
    write_atomically(
        tmp_path / "out.nii.gz", lambda tmp: (seen.append(tmp), open(tmp, "wb").close()), suffix=".tmp.nii.gz"
    )
    assert seen[0].endswith(".tmp.nii.gz")
    assert (tmp_path / "out.nii.gz").exists()
