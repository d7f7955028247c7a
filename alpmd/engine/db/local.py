"""The local database: what is installed, in pacman's own on-disk layout (alpm-db v9).

``<dbpath>/local/`` holds ``ALPM_DB_VERSION`` (``9``) and one directory
``name-version`` per installed package with ``desc``, ``files``, ``mtree``
(gzip, stored as the package shipped it), ``install`` (the scriptlet) and
``changelog`` (the archive's ``.CHANGELOG``). The
real pacman and we read and write the same tree, so either may be used on the
same root.

Rules taken from libalpm (``be_local.c``), and where we are stricter:

* a missing ``local/`` or an empty one without a version file is an empty
  database; the version file is written with the first entry;
* a version file with another number, or a non-empty directory without one
  (a pre-4.2 database), is refused with ``DB_VERSION``;
* a scan reads directory names only, splitting ``name-pkgver-pkgrel`` at the
  second-to-last hyphen; anything else is skipped with a warning;
* unlike libalpm (which writes in place), every write is atomic: a new entry
  is assembled in a temporary directory and renamed into place, an existing
  one is updated file by file through temporary files and renames, each
  fsynced along with its directory; a removed entry is first renamed out of
  the way, then deleted. Temporaries are named ``.alpmd.tmp.*``. Temporary
  directories live in ``<dbpath>`` itself when it is on the same file system
  (pacman reports every odd directory inside ``local/`` as an invalid entry,
  but silently skips plain files there). After a crash, leftovers are ignored
  by scans and swept by the next write.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
from collections.abc import Iterator, Sequence

from alpmd import TYPE_CHECKING
from alpmd.engine.db.backend import (
    PART_NAMES,
    DatabaseBackend,
    Entry,
    EntryKey,
    RawEntry,
    split_entry_name,
)
from alpmd.engine.db.cache import CachedDatabase, PackageCache
from alpmd.engine.durable import fsync_dir
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import _LOCAL as LOCAL_SPECS
from alpmd.engine.formats.desc import (
    VALIDATION_TYPES,
    PkgMeta,
    Reason,
    parse_local_desc,
    write_local_desc,
)
from alpmd.engine.formats.files import FileList, parse_files, write_files
from alpmd.engine.formats.sections import LIST, SINGLE, Spec, scan
from alpmd.engine.log import LogCallback, LogLevel, python_log
from alpmd.engine.package import Loaded, Origin, Package, Part
from alpmd.engine.version import vercmp
from alpmd.i18n import N_, Message

if TYPE_CHECKING:
    from typing import Any

__all__ = ["LOCAL_DB_VERSION", "LocalDatabase", "LocalFilesBackend", "TMP_PREFIX",
           "desc_fields_readable", "desc_list_fields"]


#: The alpm-db layout version pacman 4.2 to 7 use.
LOCAL_DB_VERSION = 9
VERSION_FILE = "ALPM_DB_VERSION"
#: Prefix of our temporary files and directories (never a valid ``name-ver-rel``).
TMP_PREFIX = ".alpmd.tmp."

#: The file each part lives in, inside an entry directory.
_PART_FILES = PART_NAMES


_DESC, _FILES = Part.DESC.value, Part.FILES.value
_MTREE, _SCRIPTLET, _CHANGELOG = Part.MTREE.value, Part.SCRIPTLET.value, Part.CHANGELOG.value


@functools.lru_cache(maxsize=16)
def _list_specs(fields: tuple[str, ...]) -> dict[str, Spec] | None:
    """The local desc sections holding ``fields``, when each is a list or a line of text."""
    specs = {header: spec for header, spec in LOCAL_SPECS.items() if spec[0] in fields}
    if len(specs) != len(fields) or any(kind not in (LIST, SINGLE)
                                        for _, kind in specs.values()):
        return None
    return specs


def _find_lists(text: str, specs: dict[str, Spec]) -> dict[str, Any] | None:
    """List sections found with ``str.find``, or ``None`` when :func:`scan` must decide.

    Exact for what pacman writes (each header once, after a blank line, LF
    ends): a header is taken only at the start or after a blank line (where
    scan takes it too), and any other occurrence of the header text (a value,
    a repeated section, trailing blanks, CRLF) sends the entry to the full scanner.
    """
    if "\r" in text:
        return None
    out: dict[str, Any] = {}
    size = len(text)
    end_of_text = size - 1 if text.endswith("\n") else size
    for header, (field, kind) in specs.items():
        seen = text.count(header)
        if not seen:
            out[field] = None if kind == SINGLE else []
            continue
        at = text.find(header)
        body = at + len(header) + 1
        if seen > 1 or (at and (at < 2 or text[at - 2:at] != "\n\n")) \
                or text[body - 1:body] != "\n":
            return None
        if kind == SINGLE:  # the next line, even empty
            end = text.find("\n", body)
            if body > end_of_text or (end < 0 and body == size):
                return None  # no value line: scan raises
            out[field] = text[body:end if end >= 0 else size]
        elif body < end_of_text and text[body] != "\n":
            end = text.find("\n\n", body)
            out[field] = text[body:end if end >= 0 else end_of_text].split("\n")
        else:
            out[field] = []
    return out


def desc_fields_readable(fields: Sequence[str]) -> bool:
    """Whether :func:`desc_list_fields` reads ``fields`` (lists and one-line texts)."""
    return _list_specs(tuple(fields)) is not None


def desc_list_fields(data: bytes, fields: Sequence[str]) -> dict[str, Any] | None:
    """List and one-line fields (depends, provides, desc...) of a local ``desc``, or
    ``None`` for other fields (then the caller parses the whole entry).

    Scanning only the wanted sections is about twice as fast as parsing the
    whole entry; both backends keep ``desc`` as pacman writes it.
    """
    specs = _list_specs(tuple(fields))
    if specs is None:
        return None
    text = data.decode("utf-8", "surrogateescape")
    fast = _find_lists(text, specs)
    if fast is not None:
        return fast
    got = scan(text, specs, "local desc", ErrorCode.DB_INVALID)
    return {f: got.get(f) if kind == SINGLE else got.get(f) or [] for f, kind in specs.values()}


def _names_it(data: bytes, line: bytes) -> bool:
    """Whether ``data`` has one ``line``'s header, at the start or after a blank line,
    followed by exactly ``line``'s value (then the scanner reads that value)."""
    header = line[:line.index(b"\n")]
    return data.count(header) == 1 and (data.startswith(line) or b"\n\n" + line in data)


def identity_errors(data: bytes, key: EntryKey, treename: str = "local") -> list[str]:
    """libalpm's messages for a ``desc`` whose %NAME% or %VERSION% is not the entry's.

    pacman prints them whenever it reads a ``desc`` (the directory's name wins), so
    bulk readers that skip most of the parsing check them too: a byte test for
    the common case, the full parse (as :meth:`LocalFilesBackend.read`) otherwise.
    """
    name, version = key
    # pacman writes %NAME% first and %VERSION% second: one comparison for nearly all.
    head = f"%NAME%\n{name}\n\n%VERSION%\n{version}\n".encode("utf-8", "surrogateescape")
    if data.startswith(head):
        if data.count(b"%NAME%") == 1 and data.count(b"%VERSION%") == 1:
            return []
    elif _names_it(data, head[:len(name.encode("utf-8", "surrogateescape")) + 8]) \
            and _names_it(data, head[head.index(b"%VERSION%"):]):
        return []
    try:
        meta = parse_local_desc(data.decode("utf-8", "surrogateescape"), key)
    except AlpmError:
        return []  # reported when the entry itself is read
    return _mismatches(meta, key, treename)


_VALIDATION_HEAD = b"%VALIDATION%\n"
_VALIDATION_WORDS = frozenset(w.encode() for w in VALIDATION_TYPES)


def desc_notes(data: bytes, key: EntryKey) -> list[tuple[LogLevel, str]]:
    """What pacman says whenever it reads this local ``desc``: a %NAME% or %VERSION%
    that is not the entry's (errors, :func:`identity_errors`) and each %VALIDATION%
    word it does not know (warnings; the word is dropped)."""
    notes = [(LogLevel.ERROR, m) for m in identity_errors(data, key)]
    start = data.find(_VALIDATION_HEAD)  # (bytes: this runs for every entry a bulk read sees)
    if start == 0 or (start > 0 and data[start - 1] == 0x0A):
        start += len(_VALIDATION_HEAD)
        end = data.find(b"\n\n", start - 1)  # (at start - 1: an empty section)
        for word in data[start:end if end >= 0 else None].split(b"\n"):
            if word and word not in _VALIDATION_WORDS:
                notes.append((LogLevel.WARNING, f"unknown validation type for package "
                              f"{key.name}: {word.decode('utf-8', 'surrogateescape')}"))
    return notes


def _mismatches(meta: PkgMeta, key: EntryKey, treename: str = "local") -> list[str]:
    out = []
    if meta.name != key.name:
        out.append(f"{treename} database is inconsistent: name mismatch on package {key.name}")
    if meta.version != key.version:
        out.append(f"{treename} database is inconsistent: version mismatch on package "
                   f"{key.name}")
    return out


#: First read of a stored part: larger than nearly every ``desc`` and ``files`` (one
#: read), small enough that the allocation stays cheap (a megabyte buffer costs more
#: than the system call on small files; -Qi reads one desc per installed package).
_CHUNK = 1 << 16


def _read_fd(fd: int) -> bytes:
    """What is left of an open file: one ``read`` for small files, more for large ones."""
    data = os.read(fd, _CHUNK)
    if len(data) < _CHUNK:
        return data
    chunks = [data]
    while data:  # a large file, or one that grew
        data = os.read(fd, 1 << 20)
        chunks.append(data)
    return b"".join(chunks)


def _slurp(path: str, dir_fd: int | None = None) -> bytes:
    """The whole file (``path`` relative to ``dir_fd`` when given)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


def _write_durably(fd: int, data: bytes, durable: bool = True) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fchmod(fd, 0o644)
    if durable:
        os.fsync(fd)


#: Temporary entry directories: our pid and a count (``tempfile.mkdtemp`` draws random
#: names, and importing it costs more than the 200 entries of a large -U).
_tmp_count = [0]


def _new_tmpdir(parent: str) -> str:
    """A new empty directory ``parent/TMP_PREFIX…`` (mode 0700), as ``tempfile.mkdtemp``."""
    while True:
        path = _tmp_name(parent)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue  # left by an earlier process with our pid
        return path


def _new_tmpfile(parent: str) -> tuple[int, str]:
    """A new empty file ``parent/TMP_PREFIX…`` (mode 0600), open, as ``tempfile.mkstemp``."""
    while True:
        path = _tmp_name(parent)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path
        except FileExistsError:
            continue


def _tmp_name(parent: str) -> str:
    _tmp_count[0] += 1
    return os.path.join(parent, f"{TMP_PREFIX}{os.getpid()}-{_tmp_count[0]}")


def _replace_file(directory: str, name: str, data: bytes, durable: bool = True) -> None:
    """Replace ``directory/name`` atomically (temporary file, fsync, rename); no dir fsync."""
    fd, tmp = _new_tmpfile(directory)
    try:
        try:
            _write_durably(fd, data, durable)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _remove_tree(path: str) -> None:
    """Delete a directory we own (symlinks inside are removed, never followed)."""
    import shutil

    shutil.rmtree(path)


def _parse_version(text: str) -> int | None:
    """The leading number of the version file, read like libalpm's ``fscanf("%zu")``."""
    text = text.lstrip()
    digits = len(text) - len(text.lstrip("0123456789"))
    return int(text[:digits]) if digits else None


def check_key(key: EntryKey) -> None:
    """Refuse names that would not come back from a scan unchanged (or escape the db)."""
    for what, value in (("name", key.name), ("version", key.version)):
        if not value or any(c in value for c in "/\0\n") or value.startswith("."):
            raise AlpmError(ErrorCode.PKG_INVALID_NAME,
                            f"invalid package {what} {value!r} for the local database")
    if split_entry_name(key.dirname) != key:
        raise AlpmError(ErrorCode.PKG_INVALID_NAME,
                        f"invalid package version {key.version!r} of {key.name}: "
                        "expected pkgver-pkgrel")


class LocalFilesBackend(DatabaseBackend):
    """The pacman-compatible files layout under ``<dbpath>/local``."""

    writable = True

    def __init__(self, dbpath: str, *, log: LogCallback | None = None,
                 durable: bool = True) -> None:
        self.dbpath = dbpath
        #: ``False`` skips fsync: for throwaway fixtures only, never a real system.
        self.durable = durable
        self.path = os.path.join(dbpath, "local")
        self.label = self.path
        #: Where temporary directories go (see the module documentation); set on first write.
        self.staging = self.path
        self._log_cb = log
        #: After :meth:`open`: "missing", "empty" (no version file yet) or "valid".
        self.state = "unopened"
        self._cleaned = False
        #: Entries whose %NAME%/%VERSION% were checked (pacman reports once per read).
        self._checked: set[EntryKey] = set()

    def _log(self, level: LogLevel, message: str) -> None:
        python_log(level, message, "alpmd.engine.db")
        if self._log_cb is not None:
            self._log_cb(level, message)

    # -- validation -------------------------------------------------------------------

    def open(self) -> None:
        """Check the version file; see the module documentation for the rules.

        The version file is read first: the directory is listed only when it is
        missing (a listing of thousands of entries is what a -Qo spends most on).
        """
        verfile = os.path.join(self.path, VERSION_FILE)
        try:
            text = _slurp(verfile)[:4096].decode("utf-8", "replace")
        except (FileNotFoundError, NotADirectoryError):
            try:
                names = os.listdir(self.path)
            except FileNotFoundError:
                self.state = "missing"
                return
            except OSError as exc:
                raise AlpmError(ErrorCode.DB_OPEN, f"could not open local database "
                                f"{self.path}: {exc.strerror}", path=self.path) from exc
            if any(not n.startswith(TMP_PREFIX) for n in names):
                raise AlpmError(
                    ErrorCode.DB_VERSION,
                    f"local database {self.path} has no {VERSION_FILE} file but is not empty: "
                    "it was written by a pacman older than 4.2; upgrade it with "
                    "pacman-db-upgrade", path=self.path) from None
            self.state = "empty"
            return
        except OSError as exc:
            try:  # an unreadable directory is reported as such, before its version file
                os.listdir(self.path)
            except OSError as dir_exc:
                raise AlpmError(ErrorCode.DB_OPEN, f"could not open local database "
                                f"{self.path}: {dir_exc.strerror}", path=self.path) from exc
            raise AlpmError(ErrorCode.DB_VERSION, f"could not read {verfile}: {exc.strerror}",
                            path=self.path) from exc
        version = _parse_version(text)
        if version is None:
            raise AlpmError(ErrorCode.DB_VERSION,
                            f"{verfile} does not hold a version number ({text[:40]!r})",
                            path=self.path)
        if version != LOCAL_DB_VERSION:
            hint = ("upgrade it with pacman-db-upgrade" if version < LOCAL_DB_VERSION
                    else "it was written by a newer pacman")
            raise AlpmError(ErrorCode.DB_VERSION,
                            f"local database {self.path} is version {version}, this program "
                            f"reads version {LOCAL_DB_VERSION}: {hint}", path=self.path,
                            version=version)
        self.state = "valid"

    # -- reading --------------------------------------------------------------------------

    def scan(self) -> Iterator[EntryKey]:
        """Entry directories' names split into name and version; nothing is read."""
        if self.state == "missing":
            return
        try:
            it = os.scandir(self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise AlpmError(ErrorCode.DB_OPEN, f"could not open local database {self.path}: "
                                               f"{exc.strerror}", path=self.path) from exc
        with it:
            for ent in it:
                name = ent.name
                if name.startswith(TMP_PREFIX):
                    self._log(LogLevel.WARNING, f"ignoring {os.path.join(self.path, name)}, "
                                                "left over by an interrupted write")
                    continue
                try:
                    if not ent.is_dir(follow_symlinks=False):
                        continue
                except OSError:
                    continue
                key = split_entry_name(name)
                if key is None:
                    self._log(LogLevel.WARNING,
                              f"invalid name for database entry '{name}' in {self.path}")
                    continue
                yield key

    def unique_versions(self) -> dict[str, str] | None:
        """Name → version straight from the listing (no key objects, no generator), or
        ``None`` when something needs :meth:`scan`'s care: a name twice, a leftover
        temporary, a name that does not split (scan warns about those)."""
        if self.state == "missing":
            return {}
        try:
            it = os.scandir(self.path)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise AlpmError(ErrorCode.DB_OPEN, f"could not open local database {self.path}: "
                                               f"{exc.strerror}", path=self.path) from exc
        versions: dict[str, str] = {}
        count = 0
        with it:
            for ent in it:
                name = ent.name
                if name.startswith(TMP_PREFIX):
                    return None
                try:
                    if not ent.is_dir(follow_symlinks=False):
                        continue
                except OSError:
                    continue
                rel = name.rfind("-")
                ver = name.rfind("-", 0, rel) if rel > 0 else -1
                if ver <= 0:
                    return None
                versions[name[:ver]] = name[ver + 1:]
                count += 1
        return versions if len(versions) == count else None

    def _read(self, key: EntryKey, fname: str, *, required: bool) -> bytes | None:
        path = f"{self.path}/{key.name}-{key.version}/{fname}"
        try:
            return _slurp(path)
        except FileNotFoundError:
            if not required:
                return None
            raise AlpmError(ErrorCode.DB_INVALID, f"corrupted database entry: {path} is missing",
                            path=path) from None
        except OSError as exc:
            raise AlpmError(ErrorCode.DB_INVALID, f"could not read {path}: {exc.strerror}",
                            path=path) from exc

    def read(self, key: EntryKey, parts: Part) -> Loaded:
        # Plain ints: enum flag tests cost microseconds, and -Qi reads every desc.
        want = parts.value
        got = Loaded()
        if want & _DESC:
            got.meta = self._read_desc(key)
        if want & _FILES:
            data = self._read(key, "files", required=True)
            assert data is not None
            try:
                got.files = parse_files(data.decode("utf-8", "surrogateescape"))
            except AlpmError as exc:
                raise AlpmError(ErrorCode.DB_INVALID, f"corrupted database entry "
                                f"{key.dirname}/files in {self.path}: {exc.message}",
                                path=self.path, entry=key.dirname) from exc
        if want & _MTREE:
            got.mtree = self._read(key, "mtree", required=False)
        if want & _SCRIPTLET:
            got.scriptlet = self._read(key, "install", required=False)
            got.has_scriptlet = got.scriptlet is not None
        if want & _CHANGELOG:
            got.changelog = self._read(key, "changelog", required=False)
        return got

    def grep(self, keys: Sequence[EntryKey], part: Part, needles: Sequence[bytes] | None
             ) -> Iterator[tuple[EntryKey, bytes | None]]:
        """Each entry's part read relative to one directory descriptor (half the cost of
        a full path and an ``fstat`` per file), tested before anything is decoded."""
        suffix = "/" + PART_NAMES[part]
        desc = part is Part.DESC
        if needles is not None:
            # A needle holding another is found wherever that one is: test the shorter.
            needles = [n for n in needles if not any(m in n and m != n for m in needles)]
            needles = list(dict.fromkeys(needles))
            if not needles:
                return
        one = needles[0] if needles is not None and len(needles) == 1 else None
        try:
            dfd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            yield from ((key, None) for key in keys)
            return
        try:
            for key in keys:
                try:
                    data = _slurp(key.name + "-" + key.version + suffix, dfd)
                except OSError:
                    yield key, None
                    continue
                if desc:
                    self._check_identity(key, data)
                if one is not None:
                    if one in data:
                        yield key, data
                elif needles is None:
                    yield key, data
                else:
                    for needle in needles:
                        if needle in data:
                            yield key, data
                            break
        finally:
            os.close(dfd)

    def read_fields(self, key: EntryKey, fields: Sequence[str]) -> dict[str, Any] | None:
        """List fields (depends, provides...) from ``desc`` without building the whole entry.

        Reverse-dependency questions read every installed package's ``desc``;
        scanning only the wanted sections is about twice as fast. Anything but
        list fields reads the whole entry (``None``).
        """
        if _list_specs(tuple(fields)) is None:
            return None
        data = self._read(key, "desc", required=True)
        assert data is not None
        self._check_identity(key, data)
        return desc_list_fields(data, fields)

    def _read_desc(self, key: EntryKey) -> PkgMeta:
        data = self._read(key, "desc", required=True)
        assert data is not None
        try:
            meta = parse_local_desc(data.decode("utf-8", "surrogateescape"), key)
        except AlpmError as exc:
            raise AlpmError(ErrorCode.DB_INVALID, f"corrupted database entry "
                            f"{key.dirname}/desc in {self.path}: {exc.message}",
                            path=self.path, entry=key.dirname) from exc
        # As libalpm: the directory names the package; a differing desc is reported.
        self._check_identity(key, data)
        meta.name, meta.version = key.name, key.version
        return meta

    def _check_identity(self, key: EntryKey, data: bytes) -> None:
        """Say what pacman says of this ``desc`` (:func:`desc_notes`), once per entry."""
        if key not in self._checked:
            self._checked.add(key)
            for level, message in desc_notes(data, key):
                self._log(level, message)

    # -- writing --------------------------------------------------------------------------

    def _prepare_write(self) -> None:
        """Create the database (with its version file) if needed; sweep old temporaries."""
        if self.state == "unopened":
            self.open()
        try:
            if self.state == "missing":
                os.makedirs(self.path, mode=0o755, exist_ok=True)
                self.state = "empty"
            if self.state == "empty":
                _replace_file(self.path, VERSION_FILE, f"{LOCAL_DB_VERSION}\n".encode(),
                              self._sync)
                self._flush_dir(self.path)
                self.state = "valid"
            if not self._cleaned:
                self.staging = self.path
                with contextlib.suppress(OSError):
                    if os.stat(self.dbpath).st_dev == os.stat(self.path).st_dev:
                        self.staging = self.dbpath
                for directory in {self.path, self.staging}:
                    for name in os.listdir(directory):
                        if name.startswith(TMP_PREFIX):
                            self._discard(os.path.join(directory, name))
                self._cleaned = True
        except OSError as exc:
            raise AlpmError(ErrorCode.DB_WRITE, f"could not create local database {self.path}: "
                                                f"{exc.strerror}", path=self.path) from exc

    @property
    def _sync(self) -> bool:
        """Whether a write flushes itself (not while a commit batches the flushes)."""
        return self.durable and not self.deferred

    def _flush_dir(self, path: str) -> None:
        """Make a rename or a new entry in ``path`` durable, unless a commit flushes later."""
        if self._sync:
            fsync_dir(path)

    def _fsync_dirs(self) -> None:
        """Make renames between ``local/`` and the staging directory durable."""
        self._flush_dir(self.path)
        if self.staging != self.path:
            self._flush_dir(self.staging)

    def _discard(self, path: str) -> None:
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                _remove_tree(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._log(LogLevel.WARNING, f"could not remove {path}: {exc.strerror}")

    @staticmethod
    def _contents(entry: Entry, part: Part) -> bytes | None:
        if part is Part.DESC:
            return write_local_desc(entry.meta).encode("utf-8", "surrogateescape")
        if part is Part.FILES:
            return write_files(entry.files or FileList()).encode("utf-8", "surrogateescape")
        if part is Part.MTREE:
            return entry.mtree
        if part is Part.CHANGELOG:
            return entry.changelog
        return entry.scriptlet

    def write(self, entry: Entry, parts: Part = Part.ALL) -> None:
        """Create the entry (whole, via a renamed temporary directory) or update its parts."""
        key = entry.key
        check_key(key)
        # Render first: a bad value must fail before anything touches the disk.
        contents = {fname: self._contents(entry, part)
                    for part, fname in _PART_FILES.items() if part in parts}
        self._prepare_write()
        target = os.path.join(self.path, key.dirname)
        try:
            try:
                st = os.lstat(target)
            except FileNotFoundError:
                self._create(target, contents)
                return
            if not stat.S_ISDIR(st.st_mode):
                raise AlpmError(ErrorCode.DB_WRITE,
                                f"could not update {target}: not a directory", path=target)
            self._update(target, contents)
        except OSError as exc:
            raise AlpmError(ErrorCode.DB_WRITE, f"could not write database entry {target}: "
                                                f"{exc.strerror}", path=target) from exc

    def _create(self, target: str, contents: dict[str, bytes | None],
                mtimes: dict[str, int] | None = None) -> None:
        tmp = _new_tmpdir(self.staging)
        try:
            os.chmod(tmp, 0o755)
            for fname, data in contents.items():
                if data is None:
                    continue
                fd = os.open(os.path.join(tmp, fname),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                try:
                    _write_durably(fd, data, self._sync)
                    mtime = (mtimes or {}).get(fname)
                    if mtime is not None:
                        os.utime(fd, ns=(mtime, mtime))
                finally:
                    os.close(fd)
            self._flush_dir(tmp)
            try:
                os.rename(tmp, target)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                # Somebody made it meanwhile: update it instead.
                self._update(target, contents)
                _remove_tree(tmp)
                return
        except BaseException:
            if os.path.isdir(tmp):
                self._discard(tmp)
            raise
        self._fsync_dirs()

    def _update(self, target: str, contents: dict[str, bytes | None]) -> None:
        for name in os.listdir(target):
            if name.startswith(TMP_PREFIX):
                self._discard(os.path.join(target, name))
        for fname, data in contents.items():
            if data is not None:
                _replace_file(target, fname, data, self._sync)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(target, fname))
        self._flush_dir(target)

    def remove(self, key: EntryKey) -> None:
        """Take the entry out of the database in one rename, then delete its files."""
        check_key(key)
        target = os.path.join(self.path, key.dirname)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            raise AlpmError(ErrorCode.DB_REMOVE, f"could not remove database entry "
                            f"{key.dirname}: not in {self.path}", path=target) from None
        if not stat.S_ISDIR(st.st_mode):
            raise AlpmError(ErrorCode.DB_REMOVE, f"could not remove database entry "
                            f"{target}: not a directory", path=target)
        self._prepare_write()
        doomed = _new_tmpdir(self.staging)
        try:
            os.rename(target, doomed)  # replaces the empty placeholder directory
            self._fsync_dirs()
        except OSError as exc:
            self._discard(doomed)
            raise AlpmError(ErrorCode.DB_REMOVE, f"could not remove database entry {target}: "
                                                 f"{exc.strerror}", path=target) from exc
        self._discard(doomed)


    # -- raw access ----------------------------------------------------------------------

    def read_raw(self, key: EntryKey) -> RawEntry:
        raw = RawEntry(key, {})
        for fname in PART_NAMES.values():
            data = self._read(key, fname, required=fname == "desc")
            if data is not None:
                raw.parts[fname] = data
                with contextlib.suppress(OSError):
                    raw.mtimes[fname] = os.stat(f"{self.path}/{key.dirname}/{fname}").st_mtime_ns
        return raw

    def write_raw(self, entries: Iterator[RawEntry]) -> None:
        """Create each entry as given (one renamed directory each); the store must be empty."""
        self._prepare_write()
        for raw in entries:
            check_key(raw.key)
            target = os.path.join(self.path, raw.key.dirname)
            contents: dict[str, bytes | None] = dict(raw.parts)
            try:
                self._create(target, contents, raw.mtimes)
            except OSError as exc:
                raise AlpmError(ErrorCode.DB_WRITE, f"could not write database entry {target}: "
                                                    f"{exc.strerror}", path=target) from exc

    def check(self) -> list[Message]:
        """pacman's ``-Dk`` listing: every directory entry needs ``desc`` and ``files``."""
        try:
            names = sorted(os.listdir(self.path))
        except OSError as exc:
            return [Message(N_("could not open local database directory {path}: {error}"),
                            {"path": self.path, "error": exc.strerror})]
        msgs = []
        for name in names:
            if name == VERSION_FILE:
                continue
            if not os.path.exists(f"{self.path}/{name}/desc"):
                msgs.append(Message(N_("'{name}': description file is missing"), {"name": name}))
            if not os.path.exists(f"{self.path}/{name}/files"):
                msgs.append(Message(N_("'{name}': file list is missing"), {"name": name}))
        return msgs

    def part_file(self, key: EntryKey, part: Part) -> str | None:
        return f"{self.path}/{key.dirname}/{PART_NAMES[part]}"

    def stamp(self) -> int:
        """``local/``'s modification time: every entry created or removed renames in it."""
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return 0


class LocalDatabase(CachedDatabase):
    """The installed packages (``Origin.LOCALDB``), their groups, and the writes.

    Loaded on first use; writes go to the backend first and then update the
    caches, so the caches never show what is not stored.
    """

    origin = Origin.LOCALDB

    name = "local"

    def __init__(self, dbpath: str, *, backend: DatabaseBackend | None = None,
                 log: LogCallback | None = None, durable: bool = True) -> None:
        self.dbpath = dbpath
        self.backend = (backend if backend is not None
                        else LocalFilesBackend(dbpath, log=log, durable=durable))
        self._log_cb = log
        self._opened = False
        self._cache: PackageCache | None = None

    def __repr__(self) -> str:
        return f"<LocalDatabase {self.backend.label}>"

    @property
    def path(self) -> str:
        """Where the entries are stored (``<dbpath>/local`` for the files backend)."""
        return self.backend.label

    def _log(self, level: LogLevel, message: str) -> None:
        python_log(level if level & LogLevel.ERROR else LogLevel.WARNING, message,
                   "alpmd.engine.db")
        if self._log_cb is not None:
            self._log_cb(level, message)

    def _populate(self) -> PackageCache:
        if self._cache is None:
            if not self._opened:
                self.backend.open()
                self._opened = True
            versions = self.backend.unique_versions()
            if versions is None:
                keys = list(self.backend.scan())
                versions = dict(keys)  # C speed; duplicates are rare
                if len(versions) != len(keys):
                    versions = self._without_duplicates(keys)
            self._cache = PackageCache(versions, self._make)
        return self._cache

    def _without_duplicates(self, keys: list[EntryKey]) -> dict[str, str]:
        """Name → version when a name has two entries: the newer wins, and it is said."""
        versions: dict[str, str] = {}
        for name, version in keys:
            seen = versions.get(name)
            if seen is not None:
                # libalpm keeps whichever readdir returns first; keep the newer.
                keep = version if vercmp(version, seen) > 0 else seen
                self._log(LogLevel.ERROR, f"duplicated database entry '{name}' "
                                          f"({seen} and {version}); using {keep}")
                version = keep
            versions[name] = version
        return versions

    # -- queries: packages, get, versions, groups (CachedDatabase) -------------------------

    def close(self) -> None:
        """Release the store (an SQLite connection); the next query opens it again."""
        self.backend.close()
        self._opened = False

    def invalidate(self) -> None:
        """Forget the caches; the next query scans again (re-validating the version)."""
        self._cache = None
        self._opened = False

    # -- what checks and recovery need -------------------------------------------------------

    @property
    def durable(self) -> bool:
        """Whether writes reach stable storage before they return (the journal follows)."""
        return self.backend.durable

    @contextlib.contextmanager
    def deferred_sync(self) -> Iterator[None]:
        """Writes inside skip their own flushes: the caller (a commit) flushes the file
        system once per batch of steps and its journal redoes what a power cut loses."""
        self.backend.defer_sync(True)
        try:
            yield
        finally:
            self.backend.defer_sync(False)

    def check(self) -> list[Message]:
        """``-Dk``'s first pass over the raw store (entries missing ``desc`` or ``files``)."""
        return self.backend.check()

    def stored_versions(self, name: str) -> list[str]:
        """Every version of ``name`` the store holds, bypassing the caches.

        Normally one; a files-backend upgrade cut between writing the new entry
        and removing the old one leaves two, which recovery must see.
        """
        if not self._opened:
            self.backend.open()
            self._opened = True
        return [key.version for key in self.backend.scan() if key.name == name]

    def stamp(self) -> int:
        """Changes when the store is written, by us or behind our back (a daemon's watch)."""
        return self.backend.stamp()

    def owners(self, paths: Sequence[str]) -> dict[str, list[Package]] | None:
        """Path → installed packages listing it (name order), when the store indexes owners.

        ``None`` means "no index here: scan the file lists" (the files backend).
        """
        cache = self._populate()
        found = self.backend.owners(paths)
        if found is None:
            return None
        out: dict[str, list[Package]] = {}
        for path, keys in found.items():
            pkgs = [p for key in keys if (p := cache.get(key.name)) is not None
                    and p.version == key.version]
            if pkgs:
                out[path] = pkgs
        return out

    def grep(self, part: Part, needles: Sequence[bytes] | None
             ) -> Iterator[tuple[str, bytes | None]]:
        """Names of the installed packages (in name order, lazily) whose stored ``part``
        holds one of ``needles`` (every package for ``None``), with the stored bytes.

        A necessary condition tested in C before anything is parsed, for questions
        asked once (see :meth:`DatabaseBackend.grep`): callers parse the few entries
        returned. Bytes are ``None`` when the store cannot hand them out; then the
        package is read as usual. The store is what counts: writes reach it first.
        """
        versions = self._populate().versions
        keys = [EntryKey(name, versions[name]) for name in sorted(versions)]
        for key, data in self.backend.grep(keys, part, needles):
            yield key.name, data

    def remove_stored(self, name: str, version: str) -> None:
        """Delete one stored entry by version (a duplicate recovery found); call
        :meth:`invalidate` afterwards."""
        self.backend.remove(EntryKey(name, version))

    def part_file(self, pkg: Package, part: Part) -> str | None:
        """The file holding ``part`` of an installed package, for stores that keep files."""
        return self.backend.part_file(EntryKey(pkg.name, pkg.version), part)

    # -- writes -----------------------------------------------------------------------------

    def add(self, meta: PkgMeta, filelist: FileList | None, *, mtree: bytes | None = None,
            scriptlet: bytes | None = None, changelog: bytes | None = None) -> Package:
        """Record an installed package (replacing the entry of an older or equal version)."""
        cache = self._populate()
        files = filelist if filelist is not None else FileList()
        entry = Entry(meta, files, mtree, scriptlet, changelog)
        old = cache.versions.get(meta.name)
        if old is not None and old != meta.version:
            self.backend.replace(EntryKey(meta.name, old), entry, Part.ALL)
        else:
            self.backend.write(entry, Part.ALL)
        pkg = Package(meta.name, meta.version, Origin.LOCALDB, db=self, meta=meta, files=files,
                      loader=self._load)
        cache.add(pkg)
        return pkg

    def remove(self, name: str) -> None:
        """Delete the entry of the installed package ``name``."""
        cache = self._populate()
        version = cache.versions.get(name)
        if version is None:
            raise AlpmError(ErrorCode.PKG_NOT_FOUND, f"package {name} is not installed")
        self.backend.remove(EntryKey(name, version))
        cache.remove(name)

    def set_reason(self, name: str, reason: Reason) -> None:
        """Change the install reason (rewrites ``desc`` only), like ``alpm_pkg_set_reason``."""
        pkg = self.get(name)
        if pkg is None:
            raise AlpmError(ErrorCode.PKG_NOT_FOUND, f"package {name} is not installed")
        if pkg.reason == reason:
            return
        meta = pkg.meta
        old = meta.reason
        meta.reason = reason
        try:
            self.backend.write(Entry(meta), Part.DESC)
        except BaseException:
            meta.reason = old
            raise
