"""The ``files`` format of alpm-db v9 entries and ``.files`` sync databases (%FILES%, %BACKUP%)."""

from __future__ import annotations

from dataclasses import dataclass, field

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import Backup
from alpmd.engine.formats.sections import LIST, Spec, check_items, scan


@dataclass
class FileList:
    """A package's files (paths relative to the root, directories end in ``/``) and backups."""

    files: list[str] = field(default_factory=list)
    backup: list[Backup] = field(default_factory=list)


_SPECS: dict[str, Spec] = {"%FILES%": ("files", LIST), "%BACKUP%": ("backup", LIST)}


def parse_files(text: str) -> FileList:
    """Read a local ``files`` entry, or the ``files`` entry of a ``.files`` sync database.

    A %BACKUP% line is ``path<TAB>md5``; a line without a tab is a path with no
    recorded hash (libalpm accepts that too). Paths come back sorted bytewise, as
    libalpm sorts them on reading (pacman writes them so; a hand-edited list may not be).
    """
    raw = scan(text, _SPECS, "files", ErrorCode.DB_INVALID)
    files = raw.get("files", [])
    lines = raw.get("backup", [])
    assert isinstance(files, list) and isinstance(lines, list)
    sort_paths(files)
    backup = []
    for line in lines:
        path, _, md5 = line.partition("\t")
        backup.append(Backup(path, md5))
    return FileList(files, backup)


def _path_bytes(path: str) -> bytes:
    """The bytes a path stands for (read ones hold only escaped bytes as surrogates)."""
    try:
        return path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogatepass")


def sort_paths(paths: list[str]) -> None:
    """Sort ``paths`` in place by their bytes (libalpm's ``strcmp``), when they are not."""
    if "".join(paths).isascii():
        if any(a > b for a, b in zip(paths, paths[1:], strict=False)):
            paths.sort()  # for ASCII the same order, without encoding each path
    else:
        keys = [_path_bytes(p) for p in paths]
        if any(a > b for a, b in zip(keys, keys[1:], strict=False)):
            paths.sort(key=_path_bytes)


def _check(fl: FileList) -> None:
    check_items(fl.files, "files")
    for entry in fl.backup:
        if not entry.path or "\t" in entry.path or "\n" in entry.path or "\n" in entry.md5:
            raise AlpmError(ErrorCode.WRONG_ARGS, f"backup entry cannot be written: {entry!r}")


def write_files(fl: FileList) -> str:
    """The local ``files`` entry as pacman writes it: %FILES% then %BACKUP%, each ending blank.

    Paths are written in the given order (pacman keeps them sorted bytewise);
    an empty list leaves its section out, so an empty FileList gives ``""``.
    """
    _check(fl)
    out = []
    if fl.files:
        out.append("%FILES%\n" + "\n".join(fl.files) + "\n\n")
    if fl.backup:
        out.append("%BACKUP%\n" + "".join(f"{b.path}\t{b.md5}\n" for b in fl.backup) + "\n")
    return "".join(out)


def write_sync_files(fl: FileList) -> str:
    """The ``files`` entry repo-add puts in a ``.files`` database: %FILES% and paths, no blank.

    repo-add lists the archive sorted bytewise (``LC_ALL=C sort -u``); pass
    the paths in that order for an identical file.  Backups are not recorded.
    """
    check_items(fl.files, "files")
    return "%FILES%\n" + "".join(path + "\n" for path in fl.files)
