"""What a transaction tells its front end: flags, events, progress and questions.

One small dataclass per event kind (libalpm's ``alpm_event_*_t``), so front ends
match on types; a :class:`Question` carries its choices and pacman's default, and
the callback's return value is the answer. Nothing security-relevant has a
silent answer: with no callback, :func:`answer` returns the question's default,
which for :class:`ImportKey` is "no".
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from alpmd.engine.depend import Depend
from alpmd.engine.package import Package
from alpmd.i18n import N_


class TransFlag(enum.Flag):
    """Transaction flags (``alpm_transflag_t``)."""

    NONE = 0
    NODEPS = enum.auto()          # -dd (pacman: -d sets NODEPVERSION, -dd NODEPS too)
    NODEPVERSION = enum.auto()    # -d: skip version checks only
    NOSAVE = enum.auto()          # -n
    CASCADE = enum.auto()         # -c
    RECURSE = enum.auto()         # -s
    RECURSEALL = enum.auto()      # -ss
    DBONLY = enum.auto()
    NOHOOKS = enum.auto()
    ALLDEPS = enum.auto()         # --asdeps
    ALLEXPLICIT = enum.auto()     # --asexplicit
    DOWNLOADONLY = enum.auto()    # -w
    NOSCRIPTLET = enum.auto()
    NOCONFLICTS = enum.auto()
    NEEDED = enum.auto()
    UNNEEDED = enum.auto()        # -u (remove)
    NOLOCK = enum.auto()


class Operation(enum.Enum):
    """What happens to one package in a transaction."""

    INSTALL = "install"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    REINSTALL = "reinstall"
    REMOVE = "remove"


# -- events -------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Base of every event; ``done`` is False for the start of a step, True for its end."""


@dataclass(frozen=True)
class StepEvent(Event):
    """A step that starts and finishes (checking deps, conflicts, integrity...)."""

    done: bool = False


@dataclass(frozen=True)
class CheckDeps(StepEvent):
    """Checking dependencies (libalpm's ALPM_EVENT_CHECKDEPS_*)."""


@dataclass(frozen=True)
class ResolveDeps(StepEvent):
    """Resolving dependencies (ALPM_EVENT_RESOLVEDEPS_*)."""


@dataclass(frozen=True)
class InterConflicts(StepEvent):
    """Looking for conflicts between packages (ALPM_EVENT_INTERCONFLICTS_*)."""


@dataclass(frozen=True)
class FileConflicts(StepEvent):
    """Looking for file conflicts (ALPM_EVENT_FILECONFLICTS_*)."""


@dataclass(frozen=True)
class Integrity(StepEvent):
    """Checking package integrity (ALPM_EVENT_INTEGRITY_*)."""


@dataclass(frozen=True)
class LoadPackages(StepEvent):
    """Loading package files (ALPM_EVENT_LOAD_*)."""


@dataclass(frozen=True)
class DiskSpace(StepEvent):
    """Checking available disk space (ALPM_EVENT_DISKSPACE_*)."""


@dataclass(frozen=True)
class KeyringCheck(StepEvent):
    """Checking keys in the keyring (ALPM_EVENT_KEYRING_*)."""


@dataclass(frozen=True)
class KeyDownload(StepEvent):
    """Downloading required keys (ALPM_EVENT_KEY_DOWNLOAD_*)."""


@dataclass(frozen=True)
class TransactionStep(StepEvent):
    """The commit itself starts / is done (``ALPM_EVENT_TRANSACTION_START``)."""


@dataclass(frozen=True)
class Retrieve(StepEvent):
    """Downloading packages starts / ends; ``failed`` when it ended in an error."""

    failed: bool = False


@dataclass(frozen=True)
class PackageOperation(StepEvent):
    """One package is installed, upgraded, downgraded, reinstalled or removed."""

    operation: Operation = Operation.INSTALL
    new: Package | None = None
    old: Package | None = None


@dataclass(frozen=True)
class ScriptletInfo(Event):
    """One line a scriptlet printed."""

    line: str = ""


@dataclass(frozen=True)
class HookEvent(StepEvent):
    """Pre- or post-transaction hooks start / are done."""

    when: str = "PostTransaction"


@dataclass(frozen=True)
class HookRun(StepEvent):
    """One hook runs (``position`` of ``total``)."""

    name: str = ""
    description: str | None = None
    position: int = 0
    total: int = 0


@dataclass(frozen=True)
class PacnewCreated(Event):
    """A new config file was installed beside the user's as ``file.pacnew``."""

    from_noupgrade: bool = False
    old: Package | None = None
    new: Package | None = None
    file: str = ""


@dataclass(frozen=True)
class PacsaveCreated(Event):
    """A modified config file was kept as ``file.pacsave`` on removal."""

    old: Package | None = None
    file: str = ""


@dataclass(frozen=True)
class OptdepRemoval(Event):
    """A package being removed is an optional dependency of an installed one."""

    pkg: Package | None = None
    optdep: str = ""


@dataclass(frozen=True)
class DatabaseMissing(Event):
    """A sync database file does not exist (ALPM_EVENT_DATABASE_MISSING)."""

    dbname: str = ""


@dataclass(frozen=True)
class DatabaseWrite(StepEvent):
    """The local database is being written (beyond libalpm: a separate step)."""


@dataclass(frozen=True)
class Warning_(Event):
    """A warning for the user that is not an error (HoldPkg, dependency cycles...)."""

    message: str = ""


EventCallback = Callable[[Event], None]

#: The line a front end shows when a step starts (pacman's texts, marked for translation:
#: the terminal and the daemon's log signal show them in their reader's language).
STEP_LINES: dict[type[Event], str] = {
    CheckDeps: N_("checking dependencies..."),
    ResolveDeps: N_("resolving dependencies..."),
    InterConflicts: N_("looking for conflicting packages..."),
}
#: Steps pacman announces by a line only when it shows no progress bar for them.
QUIET_STEP_LINES: dict[type[Event], str] = {
    FileConflicts: N_("checking for file conflicts..."),
    Integrity: N_("checking package integrity..."),
    KeyringCheck: N_("checking keyring..."),
    LoadPackages: N_("loading package files..."),
    DiskSpace: N_("checking available disk space..."),
}
#: What each :class:`Operation` does to a package, as a verb ("installing foo...").
OPERATION_WORDS: dict[Operation, str] = {
    Operation.INSTALL: N_("installing"), Operation.UPGRADE: N_("upgrading"),
    Operation.DOWNGRADE: N_("downgrading"), Operation.REINSTALL: N_("reinstalling"),
    Operation.REMOVE: N_("removing"),
}


# -- progress -----------------------------------------------------------------------


class ProgressKind(enum.Enum):
    """What a progress report is about (``alpm_progress_t``)."""

    ADD = "add"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    REINSTALL = "reinstall"
    REMOVE = "remove"
    CONFLICTS = "conflicts"
    DISKSPACE = "diskspace"
    INTEGRITY = "integrity"
    LOAD = "load"
    KEYRING = "keyring"


@dataclass(frozen=True)
class Progress:
    """``percent`` of the current item (``current`` of ``total``) named ``name``."""

    kind: ProgressKind
    name: str
    percent: int
    total: int
    current: int


ProgressCallback = Callable[[Progress], None]


# -- questions ----------------------------------------------------------------------


@dataclass
class Question:
    """Something only the user may decide; ``default`` is pacman's answer for --noconfirm."""

    default: object = None

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass
class InstallIgnored(Question):
    """Install ``pkg`` although it is in IgnorePkg/IgnoreGroup? (default yes, as pacman)."""

    pkg: Package | None = None
    default: object = True


@dataclass
class ReplacePackage(Question):
    """Replace installed ``old`` with ``new`` from ``repo``? (default yes)."""

    old: Package | None = None
    new: Package | None = None
    repo: str = ""
    default: object = True


@dataclass
class ConflictPackage(Question):
    """``new`` conflicts with installed ``old``: remove ``old``? (default no)."""

    new: Package | None = None
    old: Package | None = None
    reason: str = ""
    default: object = False

    def shown_reason(self) -> str | None:
        """What pacman's question shows of the conflict beside the two names: the
        conflict's package name (even an empty one: ``: x`` meets ``=1``), None when there
        is no reason or it names one of the two packages."""
        if not self.reason:
            return None
        name = Depend.relation(self.reason).name
        new = self.new.name if self.new else ""
        old = self.old.name if self.old else ""
        return None if name in (new, old) else name


@dataclass
class CorruptedPackage(Question):
    """A cached package file is corrupted: delete it? (default yes)."""

    filepath: str = ""
    reason: str = ""
    default: object = True


@dataclass
class RemoveUnresolvable(Question):
    """These targets cannot be resolved: skip them and go on? (default no)."""

    packages: list[Package] = field(default_factory=list)
    default: object = False


@dataclass
class SelectProvider(Question):
    """Several packages provide ``depend``: which one (index into ``providers``)? (default 0)."""

    depend: str = ""
    providers: list[Package] = field(default_factory=list)
    default: object = 0


@dataclass
class SelectGroupMembers(Question):
    """Which members of ``group`` to install (indexes into ``members``; default all)."""

    group: str = ""
    members: list[Package] = field(default_factory=list)
    default: object = None

    def __post_init__(self) -> None:
        if self.default is None:
            self.default = list(range(len(self.members)))


@dataclass
class ImportKey(Question):
    """Import the PGP key ``fingerprint`` (``uid``) to verify a signature? (default no)."""

    fingerprint: str = ""
    uid: str = ""
    created: int = 0
    default: object = False


QuestionCallback = Callable[[Question], object]


def answer(callback: QuestionCallback | None, question: Question) -> object:
    """Ask ``callback``, or take pacman's default when there is no one to ask."""
    if callback is None:
        return question.default
    return callback(question)
