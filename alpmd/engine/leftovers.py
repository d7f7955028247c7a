"""Configuration files pacman left beside the backup files of installed packages
(``.pacnew``, ``.pacsave``, ``.pacorig``: what ``pacdiff`` looks for).

The daemon asks; the ``alpm`` command never does, so a query does not import this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from alpmd import TYPE_CHECKING

if TYPE_CHECKING:
    from alpmd.engine.handle import Handle

__all__ = ["LEFTOVER_KINDS", "ConfigLeftover", "config_leftovers"]


@dataclass(frozen=True)
class ConfigLeftover:
    """A ``.pacnew``/``.pacsave``/``.pacorig`` beside a backup file of an installed package.

    ``path`` is absolute inside the root ("/etc/foo.conf.pacnew"); ``original`` is the
    file it belongs beside; ``kind`` is "pacnew", "pacsave" or "pacorig".
    """

    path: str
    original: str
    package: str
    kind: str


LEFTOVER_KINDS = ("pacnew", "pacsave", "pacorig")


def config_leftovers(handle: Handle) -> list[ConfigLeftover]:
    """Every configuration file pacman left for someone to merge (what ``pacdiff`` looks
    for), found beside the backup files of the installed packages."""
    root = handle.options.root
    out: list[ConfigLeftover] = []
    for pkg in handle.localdb.packages:
        for bk in pkg.backup:
            for kind in LEFTOVER_KINDS:
                if os.path.lexists(f"{root}{bk.path}.{kind}"):
                    out.append(ConfigLeftover(f"/{bk.path}.{kind}", f"/{bk.path}", pkg.name,
                                              kind))
    return out
