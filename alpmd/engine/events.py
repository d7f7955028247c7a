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
from dataclasses import FrozenInstanceError, dataclass, field, fields

from alpmd import TYPE_CHECKING
from alpmd.engine.package import Package
from alpmd.i18n import N_

if TYPE_CHECKING:
    from dataclasses import Field
    from typing import Any, ClassVar


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


# -- the methods every event and question shares ---------------------------------------


class _Values:
    """``__eq__`` and ``__repr__`` written once for every event and question dataclass
    (``eq=False, repr=False`` on each), with the results of the generated ones: equal when
    of the same class with equal compared fields, shown as ``Name(field=value, ...)``.
    CPython compiles a dataclass's generated methods from source when its class is made:
    one of each per class was most of what loading this module cost, on every command
    that changes something."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _values(self, hashed=False) == _values(other, hashed=False)

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return f"{self.__class__.__qualname__}({shown})"


class _FrozenValues(_Values):
    """:class:`_Values` of a frozen dataclass, hashed as its generated ``__hash__`` would."""

    def __hash__(self) -> int:
        return hash(_values(self, hashed=True))


def _values(obj: object, *, hashed: bool) -> tuple[object, ...]:
    """The values of ``obj``'s compared fields (``hashed``: of those its hash covers)."""
    assert isinstance(obj, _Values)
    return tuple(getattr(obj, f.name) for f in fields(obj)
                 if (f.hash if hashed and f.hash is not None else f.compare))


class _NoFieldsOfItsOwn:
    """First base of an event class that adds no field to its dataclass parent: the
    parent's generated methods serve it as they are (they name the class through
    ``self.__class__``), so it is not made a dataclass of its own; this keeps it frozen
    (the parent's ``__setattr__`` refuses only the parent's fields on a subclass)."""

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


# -- events -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Event(_FrozenValues):
    """Base of every event; ``done`` is False for the start of a step, True for its end."""


@dataclass(frozen=True, eq=False, repr=False)
class StepEvent(Event):
    """A step that starts and finishes (checking deps, conflicts, integrity...)."""

    done: bool = False


class CheckDeps(_NoFieldsOfItsOwn, StepEvent):
    """Checking dependencies (libalpm's ALPM_EVENT_CHECKDEPS_*)."""


class ResolveDeps(_NoFieldsOfItsOwn, StepEvent):
    """Resolving dependencies (ALPM_EVENT_RESOLVEDEPS_*)."""


class InterConflicts(_NoFieldsOfItsOwn, StepEvent):
    """Looking for conflicts between packages (ALPM_EVENT_INTERCONFLICTS_*)."""


class FileConflicts(_NoFieldsOfItsOwn, StepEvent):
    """Looking for file conflicts (ALPM_EVENT_FILECONFLICTS_*)."""


class Integrity(_NoFieldsOfItsOwn, StepEvent):
    """Checking package integrity (ALPM_EVENT_INTEGRITY_*)."""


class LoadPackages(_NoFieldsOfItsOwn, StepEvent):
    """Loading package files (ALPM_EVENT_LOAD_*)."""


class DiskSpace(_NoFieldsOfItsOwn, StepEvent):
    """Checking available disk space (ALPM_EVENT_DISKSPACE_*)."""


class KeyringCheck(_NoFieldsOfItsOwn, StepEvent):
    """Checking keys in the keyring (ALPM_EVENT_KEYRING_*)."""


class KeyDownload(_NoFieldsOfItsOwn, StepEvent):
    """Downloading required keys (ALPM_EVENT_KEY_DOWNLOAD_*)."""


class TransactionStep(_NoFieldsOfItsOwn, StepEvent):
    """The commit itself starts / is done (``ALPM_EVENT_TRANSACTION_START``)."""


@dataclass(frozen=True, eq=False, repr=False)
class Retrieve(StepEvent):
    """Downloading packages starts / ends; ``failed`` when it ended in an error."""

    failed: bool = False


@dataclass(frozen=True, eq=False, repr=False)
class PackageOperation(StepEvent):
    """One package is installed, upgraded, downgraded, reinstalled or removed."""

    operation: Operation = Operation.INSTALL
    new: Package | None = None
    old: Package | None = None


@dataclass(frozen=True, eq=False, repr=False)
class ScriptletInfo(Event):
    """One line a scriptlet printed."""

    line: str = ""


@dataclass(frozen=True, eq=False, repr=False)
class HookEvent(StepEvent):
    """Pre- or post-transaction hooks start / are done."""

    when: str = "PostTransaction"


@dataclass(frozen=True, eq=False, repr=False)
class HookRun(StepEvent):
    """One hook runs (``position`` of ``total``)."""

    name: str = ""
    description: str | None = None
    position: int = 0
    total: int = 0


@dataclass(frozen=True, eq=False, repr=False)
class PacnewCreated(Event):
    """A new config file was installed beside the user's as ``file.pacnew``."""

    from_noupgrade: bool = False
    old: Package | None = None
    new: Package | None = None
    file: str = ""


@dataclass(frozen=True, eq=False, repr=False)
class PacsaveCreated(Event):
    """A modified config file was kept as ``file.pacsave`` on removal."""

    old: Package | None = None
    file: str = ""


@dataclass(frozen=True, eq=False, repr=False)
class OptdepRemoval(Event):
    """A package being removed is an optional dependency of an installed one."""

    pkg: Package | None = None
    optdep: str = ""


@dataclass(frozen=True, eq=False, repr=False)
class DatabaseMissing(Event):
    """A sync database file does not exist (ALPM_EVENT_DATABASE_MISSING)."""

    dbname: str = ""


class DatabaseWrite(_NoFieldsOfItsOwn, StepEvent):
    """The local database is being written (beyond libalpm: a separate step)."""


@dataclass(frozen=True, eq=False, repr=False)
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


@dataclass(frozen=True, eq=False, repr=False)
class Progress(_FrozenValues):
    """``percent`` of the current item (``current`` of ``total``) named ``name``."""

    kind: ProgressKind
    name: str
    percent: int
    total: int
    current: int


ProgressCallback = Callable[[Progress], None]


# -- questions ----------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class Question(_Values):
    """Something only the user may decide; ``default`` is pacman's answer for --noconfirm."""

    default: object = None

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(eq=False, repr=False)
class InstallIgnored(Question):
    """Install ``pkg`` although it is in IgnorePkg/IgnoreGroup? (default yes, as pacman)."""

    pkg: Package | None = None
    default: object = True


@dataclass(eq=False, repr=False)
class ReplacePackage(Question):
    """Replace installed ``old`` with ``new`` from ``repo``? (default yes)."""

    old: Package | None = None
    new: Package | None = None
    repo: str = ""
    default: object = True


@dataclass(eq=False, repr=False)
class ConflictPackage(Question):
    """``new`` conflicts with installed ``old``: remove ``old``? (default no)."""

    new: Package | None = None
    old: Package | None = None
    reason: str = ""
    default: object = False


@dataclass(eq=False, repr=False)
class CorruptedPackage(Question):
    """A cached package file is corrupted: delete it? (default yes)."""

    filepath: str = ""
    reason: str = ""
    default: object = True


@dataclass(eq=False, repr=False)
class RemoveUnresolvable(Question):
    """These targets cannot be resolved: skip them and go on? (default no)."""

    packages: list[Package] = field(default_factory=list)
    default: object = False


@dataclass(eq=False, repr=False)
class SelectProvider(Question):
    """Several packages provide ``depend``: which one (index into ``providers``)? (default 0)."""

    depend: str = ""
    providers: list[Package] = field(default_factory=list)
    default: object = 0


@dataclass(eq=False, repr=False)
class SelectGroupMembers(Question):
    """Which members of ``group`` to install (indexes into ``members``; default all)."""

    group: str = ""
    members: list[Package] = field(default_factory=list)
    default: object = None

    def __post_init__(self) -> None:
        if self.default is None:
            self.default = list(range(len(self.members)))


@dataclass(eq=False, repr=False)
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
