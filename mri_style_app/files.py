"""Writing files so that a reader never sees half of one (no Qt, no torch)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import, while no other thread creates files: os.umask can only be read by setting it.
_UMASK = _read_umask()


def write_atomically(path, write: Callable[[str], object], suffix: str = ".tmp") -> Path:
    """Call `write(tmp)` for a temporary file beside `path`, then rename it over `path`.

    A failed or interrupted write leaves any earlier file at `path` as it was. `suffix` ends
    the temporary name, for writers that choose the format by extension (".tmp.nii.gz").
    The file gets the permissions of any new file (0666 less the umask), not mkstemp's 0600.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
