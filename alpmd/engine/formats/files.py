"""The ``files`` format of alpm-db v9 entries and ``.files`` sync databases (%FILES%, %BACKUP%)."""

from __future__ import annotations

from dataclasses import dataclass, field

from alpmd.engine.formats.desc import Backup


@dataclass
class FileList:
    """A package's files (paths relative to the root, directories end in ``/``) and backups."""

    files: list[str] = field(default_factory=list)
    backup: list[Backup] = field(default_factory=list)
