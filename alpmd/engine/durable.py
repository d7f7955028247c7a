"""Making a finished rename or new directory entry survive a power cut.

Kept apart from the journal so that readers which only write now and then (the local
store, downloads, conversions, the repository side) can import it without the journal's
JSON and C-library machinery.
"""

from __future__ import annotations

import os

__all__ = ["fsync_dir"]


def fsync_dir(path: str) -> None:
    """Make a rename or a new entry in ``path`` durable (fsync of the directory)."""
    fd = os.open(path or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
