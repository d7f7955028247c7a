"""pacman.conf, read the way pacman reads it (``src/common/ini.c`` and ``src/pacman/conf.c``).

libalpm never parses a configuration file: pacman does, and hands the library
plain options.  We do the same, so this module produces a plain :class:`Config`
object and nothing else depends on the file format.

The behaviour follows pacman 6.0.2 (Debian's, our oracle) byte for byte, so that
:func:`render_pacman_conf` prints what ``pacman-conf`` prints; the keys pacman 7
added (``DownloadUser``, ``DisableSandbox*``, ``CacheServer``) are accepted too.

Two stages, as in pacman: :func:`parse_config` records what the files say,
:func:`derive_config` fills in the defaults (pacman's ``setdefaults``) after
command-line overrides; :func:`load_config` does both.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.sections import wordsplit

__all__ = [
    "DEFAULT_CACHEDIR",
    "DEFAULT_DBPATH",
    "DEFAULT_GPGDIR",
    "DEFAULT_HOOKDIR",
    "DEFAULT_LOGFILE",
    "DEFAULT_ROOTDIR",
    "DEFAULT_SIGLEVEL",
    "MAX_INCLUDE_DEPTH",
    "CleanMethod",
    "Config",
    "ConfigWarning",
    "ParsedConfig",
    "Repo",
    "RepoSection",
    "SigCheck",
    "SigLevel",
    "SigLevelSpec",
    "SigPolicy",
    "SigTrust",
    "Usage",
    "derive_config",
    "load_config",
    "parse_config",
    "parse_siglevel",
    "render_pacman_conf",
    "render_repo_list",
    "split_xfer_command",
]

DEFAULT_ROOTDIR = "/"
DEFAULT_DBPATH = "/var/lib/pacman/"
DEFAULT_LOGFILE = "/var/log/pacman.log"
DEFAULT_CACHEDIR = "/var/cache/pacman/pkg/"
DEFAULT_HOOKDIR = "/etc/pacman.d/hooks/"
DEFAULT_GPGDIR = "/etc/pacman.d/gnupg/"

#: pacman refuses to follow ``Include`` deeper than this (a file including itself).
MAX_INCLUDE_DEPTH = 10

# ini.c reads with fgets into a PATH_MAX buffer: longer lines arrive in pieces,
# each counted as a line of its own.
_LINE_BYTES = 4096 - 1
# C's isspace() in the C locale; Python's str.strip() would strip far more.
_CSPACE = " \t\n\v\f\r"
_CSPACE_BYTES = _CSPACE.encode()
_LONG_MIN, _LONG_MAX, _INT_MAX = -(2**63), 2**63 - 1, 2**31 - 1


# --------------------------------------------------------------------------- values


class Usage(enum.Flag):
    """What a sync repository may be used for (``alpm_db_usage_t``)."""

    SYNC = 1
    SEARCH = 2
    INSTALL = 4
    UPGRADE = 8
    ALL = SYNC | SEARCH | INSTALL | UPGRADE


class CleanMethod(enum.Flag):
    """What ``-Sc`` keeps in the cache."""

    KEEP_INSTALLED = 1
    KEEP_CURRENT = 2


class SigCheck(enum.Enum):
    """Whether a signature is checked at all, and whether its absence is fatal."""

    NEVER = "Never"
    OPTIONAL = "Optional"
    REQUIRED = "Required"


class SigTrust(enum.Enum):
    """Whether signatures from keys of unknown or marginal trust are accepted."""

    TRUSTED_ONLY = "TrustedOnly"
    TRUST_ALL = "TrustAll"


@dataclass(frozen=True)
class SigPolicy:
    """The signature policy for one kind of file (packages or databases)."""

    check: SigCheck = SigCheck.OPTIONAL
    trust: SigTrust = SigTrust.TRUSTED_ONLY


@dataclass(frozen=True)
class SigLevel:
    """A resolved signature level (``alpm_siglevel_t``): one policy per kind of file.

    pacman's bit mask has separate "marginal ok" and "unknown ok" bits, but the
    configuration only ever sets or clears them together, so one trust mode says
    it all.
    """

    package: SigPolicy = SigPolicy()
    database: SigPolicy = SigPolicy()

    def render(self, package_only: bool = False) -> list[str]:
        """The words ``pacman-conf`` prints for this level (``PackageRequired``, ...)."""
        words = _render_policy("Package", self.package)
        if not package_only:
            words += _render_policy("Database", self.database)
        return words


def _render_policy(prefix: str, policy: SigPolicy) -> list[str]:
    if policy.check is SigCheck.NEVER:
        return [prefix + "Never"]
    return [prefix + policy.check.value, prefix + policy.trust.value]


#: The compiled-in default of a pacman built with signature support.
DEFAULT_SIGLEVEL = SigLevel()


@dataclass(frozen=True)
class SigLevelSpec:
    """What ``SigLevel`` lines said, field by field; ``None`` means "inherit".

    This is pacman's level together with its mask: a repository's level is its
    own spec laid over the global level once the whole file is read.
    """

    package_check: SigCheck | None = None
    package_trust: SigTrust | None = None
    database_check: SigCheck | None = None
    database_trust: SigTrust | None = None

    def is_empty(self) -> bool:
        """True when no valid word was ever given (pacman's ``ALPM_SIG_USE_DEFAULT``)."""
        return self == SigLevelSpec()

    def over(self, base: SigLevel) -> SigLevel:
        """The level that results from laying this spec over ``base``."""
        return SigLevel(
            SigPolicy(
                self.package_check or base.package.check,
                self.package_trust or base.package.trust,
            ),
            SigPolicy(
                self.database_check or base.database.check,
                self.database_trust or base.database.trust,
            ),
        )

    def extended(self, words: Sequence[str]) -> tuple[SigLevelSpec, list[str]]:
        """This spec updated by ``words`` in order, and the words that were invalid."""
        pkg_check, pkg_trust = self.package_check, self.package_trust
        db_check, db_trust = self.database_check, self.database_trust
        bad: list[str] = []
        for word in words:
            # A "Package"/"Database" prefix limits the word to one kind of file.
            pkg, db, rest = True, True, word
            if word.startswith("Package"):
                db, rest = False, word[len("Package") :]
            elif word.startswith("Database"):
                pkg, rest = False, word[len("Database") :]
            check, trust = _CHECK_WORDS.get(rest), _TRUST_WORDS.get(rest)
            if check is None and trust is None:
                bad.append(word)
                continue
            if pkg:
                pkg_check, pkg_trust = check or pkg_check, trust or pkg_trust
            if db:
                db_check, db_trust = check or db_check, trust or db_trust
        return SigLevelSpec(pkg_check, pkg_trust, db_check, db_trust), bad


_CHECK_WORDS = {c.value: c for c in SigCheck}
_TRUST_WORDS = {t.value: t for t in SigTrust}


def parse_siglevel(value: str, base: SigLevel = DEFAULT_SIGLEVEL) -> SigLevel:
    """Parse a ``SigLevel`` value (space-separated words) laid over ``base``."""
    spec, bad = SigLevelSpec().extended(_words(value))
    if bad:
        raise AlpmError(ErrorCode.CONFIG_INVALID, f"invalid value for 'SigLevel' : '{bad[0]}'")
    return spec.over(base)


@dataclass(frozen=True)
class ConfigWarning:
    """A line pacman would warn about (and then ignore): an unknown directive."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"config file {self.file}, line {self.line}: {self.message}"


# --------------------------------------------------------------------------- results


@dataclass(repr=False)
class Repo:
    """A sync repository, ready to register: servers expanded, level resolved."""

    name: str
    servers: list[str] = field(default_factory=list)
    cache_servers: list[str] = field(default_factory=list)
    siglevel: SigLevel = DEFAULT_SIGLEVEL
    #: whether the section itself set ``SigLevel`` (pacman-conf prints it only then)
    siglevel_set: bool = False
    usage: Usage = Usage.ALL


@dataclass(repr=False)
class Config:
    """The effective options, every default filled in as pacman fills them."""

    root_dir: str = DEFAULT_ROOTDIR
    db_path: str = DEFAULT_DBPATH
    cache_dirs: list[str] = field(default_factory=lambda: [DEFAULT_CACHEDIR])
    hook_dirs: list[str] = field(default_factory=lambda: [DEFAULT_HOOKDIR])
    gpg_dir: str = DEFAULT_GPGDIR
    log_file: str = DEFAULT_LOGFILE
    hold_pkg: list[str] = field(default_factory=list)
    ignore_pkg: list[str] = field(default_factory=list)
    ignore_group: list[str] = field(default_factory=list)
    no_upgrade: list[str] = field(default_factory=list)
    no_extract: list[str] = field(default_factory=list)
    architectures: list[str] = field(default_factory=list)
    xfer_command: str | None = None
    clean_method: CleanMethod = CleanMethod.KEEP_INSTALLED
    siglevel: SigLevel = DEFAULT_SIGLEVEL
    local_file_siglevel: SigLevel = DEFAULT_SIGLEVEL
    remote_file_siglevel: SigLevel = DEFAULT_SIGLEVEL
    #: whether ``LocalFileSigLevel`` was given (otherwise it is ``siglevel``)
    local_file_siglevel_set: bool = False
    remote_file_siglevel_set: bool = False
    use_syslog: bool = False
    color: bool = False
    check_space: bool = False
    verbose_pkg_lists: bool = False
    parallel_downloads: int = 1
    disable_download_timeout: bool = False
    no_progress_bar: bool = False
    i_love_candy: bool = False
    # pacman 7
    download_user: str | None = None
    disable_sandbox: bool = False
    disable_sandbox_filesystem: bool = False
    disable_sandbox_syscalls: bool = False
    repos: list[Repo] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list)
    #: every file read, main file first, for callers that watch them for changes
    files: list[str] = field(default_factory=list)

    def repo(self, name: str) -> Repo | None:
        """The first repository of that name (pacman-conf's ``-r``), if any."""
        return next((r for r in self.repos if r.name == name), None)


@dataclass(repr=False)
class RepoSection:
    """A repository section as written: servers unexpanded, level not yet resolved."""

    name: str
    servers: list[str] = field(default_factory=list)
    cache_servers: list[str] = field(default_factory=list)
    siglevel: SigLevelSpec = SigLevelSpec()
    usage: Usage = Usage(0)


@dataclass(eq=False, repr=False)
class ParsedConfig:
    """What the files said, before defaults; ``None`` and empty mean "not given"."""

    root_dir: str | None = None
    db_path: str | None = None
    gpg_dir: str | None = None
    log_file: str | None = None
    cache_dirs: list[str] = field(default_factory=list)
    hook_dirs: list[str] = field(default_factory=list)
    hold_pkg: list[str] = field(default_factory=list)
    ignore_pkg: list[str] = field(default_factory=list)
    ignore_group: list[str] = field(default_factory=list)
    no_upgrade: list[str] = field(default_factory=list)
    no_extract: list[str] = field(default_factory=list)
    architectures: list[str] = field(default_factory=list)
    xfer_command: str | None = None
    clean_method: CleanMethod = CleanMethod(0)
    siglevel: SigLevel = DEFAULT_SIGLEVEL
    local_file_siglevel: SigLevelSpec = SigLevelSpec()
    remote_file_siglevel: SigLevelSpec = SigLevelSpec()
    use_syslog: bool = False
    color: bool = False
    check_space: bool = False
    verbose_pkg_lists: bool = False
    parallel_downloads: int = 1
    disable_download_timeout: bool = False
    no_progress_bar: bool = False
    i_love_candy: bool = False
    download_user: str | None = None
    disable_sandbox: bool = False
    disable_sandbox_filesystem: bool = False
    disable_sandbox_syscalls: bool = False
    repos: list[RepoSection] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers


def _words(value: str) -> list[str]:
    """pacman's list values: split on spaces only (a tab stays inside a word)."""
    return [w for w in value.split(" ") if w]


def _machine() -> str:
    return os.uname().machine


def _resolve_arch(word: str) -> str:
    return _machine() if word == "auto" else word


def split_xfer_command(command: str) -> list[str]:
    """Split an ``XferCommand`` into argv as pacman does (``ValueError`` on an unbalanced quote)."""
    return wordsplit(command)


# glibc's fnmatch knows these classes; in the C locale they are ASCII only.
_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": re.escape(_CSPACE),
    "blank": " \\t",
    "xdigit": "0-9a-fA-F",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "cntrl": "\\x00-\\x1f\\x7f",
    "graph": "!-~",
    "print": " -~",
}


def _has_magic(part: str) -> bool:
    """Whether a pattern component has an unescaped ``*``, ``?`` or ``[``."""
    i = 0
    while i < len(part):
        if part[i] == "\\":
            i += 2
            continue
        if part[i] in "*?[":
            return True
        i += 1
    return False


def _unescape(part: str) -> str:
    return re.sub(r"\\(.)", r"\1", part, flags=re.DOTALL)


def _bracket(part: str, i: int) -> tuple[str, int] | None:
    """Translate the bracket expression opening at ``part[i]``; None when unclosed."""
    j = i + 1
    negate = j < len(part) and part[j] in "!^"
    j += negate
    items: list[str] = []
    first, valid = True, True
    while j < len(part):
        ch = part[j]
        if ch == "]" and not first:
            if not valid:  # glibc fails the whole match on an unknown class
                return "(?!)", j + 1
            if not items:  # only empty ranges
                return ("." if negate else "(?!)"), j + 1
            return ("[^" if negate else "[") + "".join(items) + "]", j + 1
        first = False
        if part.startswith("[:", j):
            close = part.find(":]", j + 2)
            if close >= 0:
                name = part[j + 2 : close]
                valid = valid and name in _CLASSES
                items.append(_CLASSES.get(name, ""))
                j = close + 2
                continue
        if ch == "\\" and j + 1 < len(part):
            j += 1
            ch = part[j]
        j += 1
        if j + 1 < len(part) and part[j] == "-" and part[j + 1] != "]":
            high = part[j + 1]
            j += 2
            if high == "\\" and j < len(part):
                high, j = part[j], j + 1
            if ch <= high:
                items.append(re.escape(ch) + "-" + re.escape(high))
        else:
            items.append(re.escape(ch))
    return None


def _fnmatch_regex(part: str) -> re.Pattern[str]:
    """glibc ``fnmatch`` (backslash escapes, ``[!...]``/``[^...]``, classes) as a regex."""
    out: list[str] = []
    i = 0
    while i < len(part):
        ch = part[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i + 1 < len(part):
            i += 1
            out.append(re.escape(part[i]))
        elif ch == "[" and (bracket := _bracket(part, i)) is not None:
            out.append(bracket[0])
            i = bracket[1]
            continue
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _glob(pattern: str) -> list[str]:
    """glibc ``glob(pattern, GLOB_NOCHECK)``: sorted matches, else the pattern itself.

    Written out rather than using :mod:`glob` because glibc honours backslash
    escapes, ``[^...]`` and character classes, lets ``.*`` match ``.`` and ``..``
    and sorts the whole list bytewise.
    """
    found = [""]
    for index, part in enumerate(pattern.split("/")):
        prefix = "" if index == 0 else "/"
        if _has_magic(part):
            regex = _fnmatch_regex(part)
            found = [m for p in found for m in _match_dir(p + prefix, part, regex)]
        else:
            found = [p + prefix + _unescape(part) for p in found]
    matches = sorted({p for p in found if os.path.lexists(p)}, key=os.fsencode)
    return matches or [pattern]


def _match_dir(prefix: str, part: str, regex: re.Pattern[str]) -> list[str]:
    try:
        names = [entry.name for entry in os.scandir(prefix or ".")]
    except (OSError, ValueError):
        return []
    # FNM_PERIOD: only a literal leading dot matches a leading dot.
    dots = part.startswith((".", "\\."))
    if dots:
        names += [".", ".."]
    return [
        prefix + name
        for name in names
        if (dots or not name.startswith(".")) and regex.fullmatch(name)
    ]


def _read_lines(path: str) -> Iterator[tuple[int, str]]:
    """The lines of a file as ini.c sees them: numbered, trimmed, cut at NUL and 4095 bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        # fopen() succeeds on a directory and fgets() then fails: pacman sees no lines.
        return
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise AlpmError(
            ErrorCode.NOT_A_FILE, f"config file {path} could not be read: {reason}", file=path
        ) from e
    pos, lineno, size = 0, 0, len(data)
    while pos < size:
        newline = data.find(b"\n", pos, pos + _LINE_BYTES)
        end = newline + 1 if newline >= 0 else min(pos + _LINE_BYTES, size)
        chunk = data[pos:end]
        pos = end
        lineno += 1
        nul = chunk.find(b"\0")
        if nul >= 0:
            chunk = chunk[:nul]
        yield lineno, chunk.strip(_CSPACE_BYTES).decode("utf-8", "surrogateescape")


def _invalid(file: str, line: int, message: str) -> AlpmError:
    return AlpmError(
        ErrorCode.CONFIG_INVALID,
        f"config file {file}, line {line}: {message}",
        file=file,
        line=line,
    )


# --------------------------------------------------------------------------- parsing

_FLAGS = {
    "UseSyslog": "use_syslog",
    "ILoveCandy": "i_love_candy",
    "VerbosePkgLists": "verbose_pkg_lists",
    "CheckSpace": "check_space",
    "Color": "color",
    "NoProgressBar": "no_progress_bar",
    "DisableDownloadTimeout": "disable_download_timeout",
    "DisableSandboxFilesystem": "disable_sandbox_filesystem",
    "DisableSandboxSyscalls": "disable_sandbox_syscalls",
}
_LISTS = {
    "NoUpgrade": "no_upgrade",
    "NoExtract": "no_extract",
    "IgnorePkg": "ignore_pkg",
    "IgnoreGroup": "ignore_group",
    "HoldPkg": "hold_pkg",
    "CacheDir": "cache_dirs",
    "HookDir": "hook_dirs",
}
# The first value wins: pacman keeps one given on the command line, and later
# lines never replace an earlier one.
_FIRST_WINS = {
    "DBPath": "db_path",
    "RootDir": "root_dir",
    "GPGDir": "gpg_dir",
    "LogFile": "log_file",
    "DownloadUser": "download_user",
}


class _Parser:
    """One parse: the section state is shared across included files, as in pacman."""

    def __init__(self) -> None:
        self.out = ParsedConfig()
        self.section: str | None = None
        self.repo: RepoSection | None = None
        self.depth = 0

    def parse_file(self, path: str) -> None:
        self.out.files.append(path)
        for lineno, line in _read_lines(path):
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                self._section(line[1:-1])
                continue
            key, sep, rest = line.partition("=")
            key = key.strip(_CSPACE)
            value = rest.strip(_CSPACE) if sep else None
            self._directive(path, lineno, key, value)

    def _section(self, name: str) -> None:
        self.section = name
        if name == "options":
            self.repo = None
        else:
            self.repo = RepoSection(name)
            self.out.repos.append(self.repo)

    def _directive(self, file: str, line: int, key: str, value: str | None) -> None:
        if key == "Include":
            self._include(file, line, value)
        elif self.section is None:
            raise _invalid(file, line, "All directives must belong to a section.")
        elif self.repo is None:
            self._option(file, line, key, value)
        else:
            self._repo_directive(file, line, self.repo, key, value)

    def _include(self, file: str, line: int, value: str | None) -> None:
        if value is None:
            raise _invalid(file, line, "directive 'Include' needs a value")
        if self.depth >= MAX_INCLUDE_DEPTH:
            raise AlpmError(
                ErrorCode.CONFIG_INVALID,
                f"config parsing exceeded max recursion depth of {MAX_INCLUDE_DEPTH}.",
                file=file,
                line=line,
            )
        self.depth += 1
        try:
            # A pattern that matches nothing is read as a file name, and so
            # fails: pacman's GLOB_NOCHECK.
            for path in _glob(value):
                self.parse_file(path)
        finally:
            self.depth -= 1

    def _unknown(self, file: str, line: int, key: str, section: str) -> None:
        self.out.warnings.append(
            ConfigWarning(file, line, f"directive '{key}' in section '{section}' not recognized.")
        )

    def _option(self, file: str, line: int, key: str, value: str | None) -> None:
        out = self.out
        if value is None:
            if key in _FLAGS:
                setattr(out, _FLAGS[key], True)
            elif key == "DisableSandbox":
                out.disable_sandbox = True
                out.disable_sandbox_filesystem = True
                out.disable_sandbox_syscalls = True
            else:
                self._unknown(file, line, key, "options")
        elif key in _LISTS:
            getattr(out, _LISTS[key]).extend(_words(value))
        elif key in _FIRST_WINS:
            if getattr(out, _FIRST_WINS[key]) is None:
                setattr(out, _FIRST_WINS[key], value)
        elif key == "Architecture":
            out.architectures.extend(_resolve_arch(w) for w in _words(value))
        elif key == "XferCommand":
            try:
                split_xfer_command(value)
            except ValueError:
                raise _invalid(file, line, f"invalid value for 'XferCommand' : '{value}'") from None
            out.xfer_command = value
        elif key == "CleanMethod":
            for word in _words(value):
                if word == "KeepInstalled":
                    out.clean_method |= CleanMethod.KEEP_INSTALLED
                elif word == "KeepCurrent":
                    out.clean_method |= CleanMethod.KEEP_CURRENT
                else:
                    raise _invalid(file, line, f"invalid value for 'CleanMethod' : '{word}'")
        elif key == "SigLevel":
            out.siglevel = self._siglevel(file, line, SigLevelSpec(), value).over(out.siglevel)
        elif key == "LocalFileSigLevel":
            out.local_file_siglevel = self._siglevel(file, line, out.local_file_siglevel, value)
        elif key == "RemoteFileSigLevel":
            out.remote_file_siglevel = self._siglevel(file, line, out.remote_file_siglevel, value)
        elif key == "ParallelDownloads":
            out.parallel_downloads = self._parallel_downloads(file, line, value)
        else:
            self._unknown(file, line, key, "options")

    @staticmethod
    def _siglevel(file: str, line: int, spec: SigLevelSpec, value: str) -> SigLevelSpec:
        spec, bad = spec.extended(_words(value))
        if bad:
            raise _invalid(file, line, f"invalid value for 'SigLevel' : '{bad[0]}'")
        return spec

    @staticmethod
    def _parallel_downloads(file: str, line: int, value: str) -> int:
        # strtol() in base 10 over the whole (already trimmed) value (the pattern compiles
        # on first use, in re's cache: most files never set the option).
        if not re.fullmatch(r"[+-]?[0-9]+", value) or not _LONG_MIN <= int(value) <= _LONG_MAX:
            raise _invalid(file, line, f"invalid value for 'ParallelDownloads' : '{value}'")
        number = int(value)
        if number < 1:
            raise _invalid(
                file, line, f"value for 'ParallelDownloads' has to be positive : '{value}'"
            )
        if number > _INT_MAX:
            raise _invalid(file, line, f"value for 'ParallelDownloads' is too large : '{value}'")
        return number

    def _repo_directive(
        self, file: str, line: int, repo: RepoSection, key: str, value: str | None
    ) -> None:
        if key not in ("CacheServer", "Server", "SigLevel", "Usage"):
            self._unknown(file, line, key, repo.name)
            return
        if value is None:
            raise _invalid(file, line, f"directive '{key}' needs a value")
        if key == "Server":
            repo.servers.append(value)
        elif key == "CacheServer":
            repo.cache_servers.append(value)
        elif key == "SigLevel":
            repo.siglevel = self._siglevel(file, line, repo.siglevel, value)
        else:
            for word in _words(value):
                if word not in _USAGE_WORDS:
                    raise _invalid(file, line, f"'Usage' option '{word}' not recognized")
                repo.usage |= _USAGE_WORDS[word]


_USAGE_WORDS = {
    "Sync": Usage.SYNC,
    "Search": Usage.SEARCH,
    "Install": Usage.INSTALL,
    "Upgrade": Usage.UPGRADE,
    "All": Usage.ALL,
}


def parse_config(path: str | os.PathLike[str]) -> ParsedConfig:
    """Read a pacman.conf and its includes; no defaults are applied yet.

    Unknown directives become :attr:`ParsedConfig.warnings`.  Whatever pacman
    treats as fatal raises :class:`AlpmError`: ``NOT_A_FILE`` for a file (main or
    included) that cannot be read, ``CONFIG_INVALID`` for a bad value or line.
    """
    parser = _Parser()
    parser.parse_file(os.fspath(path))
    return parser.out


# --------------------------------------------------------------------------- defaults


def _expand_server(url: str, repo: str, arches: Sequence[str]) -> str:
    # $arch first, then $repo, exactly in pacman's order.
    if not arches:
        if "$arch" in url:
            raise AlpmError(
                ErrorCode.CONFIG_INVALID,
                f"mirror '{url}' contains the '$arch' variable, but no 'Architecture' is defined.",
            )
        return url.replace("$repo", repo)
    return url.replace("$arch", arches[0]).replace("$repo", repo)


def derive_config(
    parsed: ParsedConfig,
    *,
    root_override: str | None = None,
    dbpath_override: str | None = None,
    gpgdir_override: str | None = None,
    logfile_override: str | None = None,
    cachedir_overrides: Sequence[str] = (),
    hookdir_overrides: Sequence[str] = (),
    arch_overrides: Sequence[str] = (),
) -> Config:
    """Fill in the defaults as pacman's ``setdefaults`` does, after command-line values.

    Path overrides win over the file (pacman sets them before reading it and the
    file never replaces a path already set); list overrides come first, the
    file's entries after them.  With a root but no DBPath or LogFile, those two
    live under the root (``root + "/" + "var/lib/pacman/"``, even when the root
    ends in a slash); GPGDir, CacheDir and HookDir never follow the root.
    """
    root = root_override if root_override is not None else parsed.root_dir
    db_path = dbpath_override if dbpath_override is not None else parsed.db_path
    log_file = logfile_override if logfile_override is not None else parsed.log_file
    gpg_dir = gpgdir_override if gpgdir_override is not None else parsed.gpg_dir
    if root is not None:
        if db_path is None:
            db_path = f"{root}/{DEFAULT_DBPATH[1:]}"
        if log_file is None:
            log_file = f"{root}/{DEFAULT_LOGFILE[1:]}"
    else:
        root = DEFAULT_ROOTDIR
    arches = [_resolve_arch(a) for a in arch_overrides] + parsed.architectures
    cache_dirs = list(cachedir_overrides) + parsed.cache_dirs
    hook_dirs = list(hookdir_overrides) + parsed.hook_dirs

    repos = [
        Repo(
            name=section.name,
            servers=[_expand_server(u, section.name, arches) for u in section.servers],
            cache_servers=[_expand_server(u, section.name, arches) for u in section.cache_servers],
            siglevel=section.siglevel.over(parsed.siglevel),
            siglevel_set=not section.siglevel.is_empty(),
            usage=section.usage or Usage.ALL,
        )
        for section in parsed.repos
    ]
    return Config(
        root_dir=root,
        db_path=db_path if db_path is not None else DEFAULT_DBPATH,
        cache_dirs=cache_dirs or [DEFAULT_CACHEDIR],
        hook_dirs=hook_dirs or [DEFAULT_HOOKDIR],
        gpg_dir=gpg_dir if gpg_dir is not None else DEFAULT_GPGDIR,
        log_file=log_file if log_file is not None else DEFAULT_LOGFILE,
        hold_pkg=list(parsed.hold_pkg),
        ignore_pkg=list(parsed.ignore_pkg),
        ignore_group=list(parsed.ignore_group),
        no_upgrade=list(parsed.no_upgrade),
        no_extract=list(parsed.no_extract),
        architectures=arches,
        xfer_command=parsed.xfer_command,
        clean_method=parsed.clean_method or CleanMethod.KEEP_INSTALLED,
        siglevel=parsed.siglevel,
        local_file_siglevel=parsed.local_file_siglevel.over(parsed.siglevel),
        remote_file_siglevel=parsed.remote_file_siglevel.over(parsed.siglevel),
        local_file_siglevel_set=not parsed.local_file_siglevel.is_empty(),
        remote_file_siglevel_set=not parsed.remote_file_siglevel.is_empty(),
        use_syslog=parsed.use_syslog,
        color=parsed.color,
        check_space=parsed.check_space,
        verbose_pkg_lists=parsed.verbose_pkg_lists,
        parallel_downloads=parsed.parallel_downloads,
        disable_download_timeout=parsed.disable_download_timeout,
        no_progress_bar=parsed.no_progress_bar,
        i_love_candy=parsed.i_love_candy,
        download_user=parsed.download_user,
        disable_sandbox=parsed.disable_sandbox,
        disable_sandbox_filesystem=parsed.disable_sandbox_filesystem,
        disable_sandbox_syscalls=parsed.disable_sandbox_syscalls,
        repos=repos,
        warnings=list(parsed.warnings),
        files=list(parsed.files),
    )


def load_config(
    path: str | os.PathLike[str],
    *,
    root_override: str | None = None,
    dbpath_override: str | None = None,
    gpgdir_override: str | None = None,
    logfile_override: str | None = None,
    cachedir_overrides: Sequence[str] = (),
    hookdir_overrides: Sequence[str] = (),
    arch_overrides: Sequence[str] = (),
) -> Config:
    """Parse ``path`` and derive the effective configuration (see :func:`derive_config`)."""
    return derive_config(
        parse_config(path),
        root_override=root_override,
        dbpath_override=dbpath_override,
        gpgdir_override=gpgdir_override,
        logfile_override=logfile_override,
        cachedir_overrides=cachedir_overrides,
        hookdir_overrides=hookdir_overrides,
        arch_overrides=arch_overrides,
    )


# --------------------------------------------------------------------------- rendering


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def value(self, key: str, value: str | None) -> None:
        if value is not None:
            self.lines.append(f"{key} = {value}")

    def values(self, key: str, values: Sequence[str]) -> None:
        for value in values:
            self.value(key, value)

    def flag(self, key: str, value: bool) -> None:
        if value:
            self.lines.append(key)

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def _render_repo(out: _Out, repo: Repo, pacman7: bool) -> None:
    if repo.usage == Usage.ALL:
        out.value("Usage", "All")
    else:
        for word, flag in _USAGE_WORDS.items():
            if flag is not Usage.ALL and flag in repo.usage:
                out.value("Usage", word)
    if repo.siglevel_set:
        out.values("SigLevel", repo.siglevel.render())
    if pacman7:
        out.values("CacheServer", repo.cache_servers)
    out.values("Server", repo.servers)


def render_pacman_conf(cfg: Config, repo: str | None = None, *, pacman7: bool = False) -> str:
    """The text ``pacman-conf`` prints with no directive, or with ``-r REPO``.

    By default this is pacman-conf 6.0.2's output, which knows nothing of the
    pacman 7 keys; ``pacman7=True`` adds them where pacman 7's pacman-conf puts
    them.  An unknown ``repo`` raises ``AlpmError(DB_NOT_FOUND)``.
    """
    out = _Out()
    if repo is not None:
        found = cfg.repo(repo)
        if found is None:
            raise AlpmError(ErrorCode.DB_NOT_FOUND, f"repo '{repo}' not configured")
        _render_repo(out, found, pacman7)
        return out.text()
    out.lines.append("[options]")
    out.value("RootDir", cfg.root_dir)
    out.value("DBPath", cfg.db_path)
    out.values("CacheDir", cfg.cache_dirs)
    out.values("HookDir", cfg.hook_dirs)
    out.value("GPGDir", cfg.gpg_dir)
    out.value("LogFile", cfg.log_file)
    if pacman7:
        out.value("DownloadUser", cfg.download_user)
    out.values("HoldPkg", cfg.hold_pkg)
    out.values("IgnorePkg", cfg.ignore_pkg)
    out.values("IgnoreGroup", cfg.ignore_group)
    out.values("NoUpgrade", cfg.no_upgrade)
    out.values("NoExtract", cfg.no_extract)
    out.values("Architecture", cfg.architectures)
    out.value("XferCommand", cfg.xfer_command)
    out.flag("UseSyslog", cfg.use_syslog)
    out.flag("Color", cfg.color)
    out.flag("CheckSpace", cfg.check_space)
    out.flag("VerbosePkgLists", cfg.verbose_pkg_lists)
    out.flag("DisableDownloadTimeout", cfg.disable_download_timeout)
    out.flag("ILoveCandy", cfg.i_love_candy)
    out.flag("NoProgressBar", cfg.no_progress_bar)
    if pacman7:
        out.flag("DisableSandboxFilesystem", cfg.disable_sandbox_filesystem)
        out.flag("DisableSandboxSyscalls", cfg.disable_sandbox_syscalls)
    out.value("ParallelDownloads", str(cfg.parallel_downloads))
    if CleanMethod.KEEP_INSTALLED in cfg.clean_method:
        out.value("CleanMethod", "KeepInstalled")
    if CleanMethod.KEEP_CURRENT in cfg.clean_method:
        out.value("CleanMethod", "KeepCurrent")
    out.values("SigLevel", cfg.siglevel.render())
    if cfg.local_file_siglevel_set:
        out.values("LocalFileSigLevel", cfg.local_file_siglevel.render(package_only=True))
    if cfg.remote_file_siglevel_set:
        out.values("RemoteFileSigLevel", cfg.remote_file_siglevel.render(package_only=True))
    for section in cfg.repos:
        out.lines.append(f"[{section.name}]")
        _render_repo(out, section, pacman7)
    return out.text()


def render_repo_list(cfg: Config) -> str:
    """The text of ``pacman-conf --repo-list``: every section name, duplicates included."""
    return "".join(repo.name + "\n" for repo in cfg.repos)
