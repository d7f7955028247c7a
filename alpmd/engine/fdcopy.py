"""Copying the first bytes of a descriptor another may still write to.

Root copies files that users can change while it reads them (a download user's finished
download, a packager's staged release). It copies only as far as a size it decided before
starting, never "until the end": a writer appending as fast as root copies, or a sparse
file grown past the disk, would never let that end come.
"""

from __future__ import annotations

import errno
import os

__all__ = ["copy_prefix"]

#: copy_file_range's refusals that mean "not between these files": read and write instead
_NO_KERNEL_COPY = (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)


def copy_prefix(src: int, dst: int, size: int) -> int:
    """At most ``size`` bytes from the start of ``src`` written to ``dst`` at its offset
    (fewer if ``src`` ends first); how many. The kernel copies where it can (sharing
    extents), else the bytes are read and written."""
    done = 0
    try:
        while done < size and (n := os.copy_file_range(
                src, dst, min(1 << 30, size - done), done)):
            done += n
    except OSError as exc:
        if exc.errno not in _NO_KERNEL_COPY:
            raise
        while done < size and (chunk := os.pread(src, min(1 << 20, size - done), done)):
            os.write(dst, chunk)  # (regular files: a write is whole)
            done += len(chunk)
    return done
