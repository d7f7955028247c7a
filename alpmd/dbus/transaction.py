"""``org.alpm.Transaction1``: one requested change as an object on the bus.

Methods return at once; the work runs in the daemon's writer queue. Progress
lives in properties (for pollers) and is also signalled. The engine's
synchronous steps (resolve, commit) run in a worker thread; questions from
that thread wait for :meth:`Answer` (or the deadline, then the default).
"""

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dbus_fast import Message, MessageType
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property, dbus_signal
from dbus_fast.signature import Variant

from alpmd.dbus import errors, limits, options
from alpmd.dbus.authority import ACTIONS
from alpmd.dbus.bus import CALLER
from alpmd.dbus.types import (
    AS,
    SS,
    TT,
    UU,
    B,
    D,
    ListOfDicts,
    LogRows,
    Opts,
    Question,
    S,
    SigDownload,
    SigFinished,
    SigItem,
    SigLog,
    SigQuestion,
    T,
    U,
    V,
    X,
)
from alpmd.engine import events as ev
from alpmd.engine.package import Package
from alpmd.i18n import English, client_catalog

if TYPE_CHECKING:
    from alpmd.dbus.daemon import Daemon
    from alpmd.engine.history import Change
    from alpmd.engine.trans import Transaction
    from alpmd.i18n import Catalog

STATES = ("setup", "queued", "waiting-auth", "waiting-lock", "resolving", "waiting-answer",
          "downloading", "checking", "committing", "hooks", "finished")
CANCELLABLE = {"setup", "queued", "waiting-auth", "waiting-lock", "waiting-answer", "downloading",
               "resolving"}
DEFAULT_QUESTION_TIMEOUT = 300.0
PROGRESS_INTERVAL = 0.25


class Cancelled(Exception):
    """The client cancelled; the transaction finishes as "cancelled"."""


class TransactionObject(ServiceInterface):
    """State and progress of one transaction; the daemon drives it."""

    def __init__(self, daemon: "Daemon", n: int, kind: str, targets: list[str],
                 opts: dict[str, Any], uid: int, sender: str) -> None:
        super().__init__("org.alpm.Transaction1")
        self.daemon = daemon
        self.n = n
        self.path = f"/org/alpm/transaction/{n}"
        self.kind = kind
        self.targets = targets
        self.opts = opts
        self.uid = uid
        self.sender = sender
        #: private copies of the client's package files (install-files)
        self.files: list[str] = []
        self.file_bytes = 0
        #: polkit actions already granted for this transaction
        self.authorized: set[str] = set()
        self.owner_gone = False
        self.state = "setup"
        self.percentage = 0.0
        self.items = [0, 0]
        self.bytes = [0, 0]
        self.speed = 0.0
        self.remaining = -1
        self.current_item = ""
        self.question: list[Any] = [0, "", "", [], {}]
        self.plan: list[dict[str, Variant]] = []
        self.result = ""
        self.error = ["", ""]
        #: wall-clock start, the installed versions before the commit and what it moved
        #: (for the history)
        self.started_wall = 0.0
        self.before: dict[str, str] | None = None
        self.changes: list[Change] = []
        self.error_details: dict[str, Variant] = {}
        self.warnings: list[str] = []
        self.pacnew: list[str] = []
        self.hints: dict[str, Any] = {"interactive": False, "locale": "",
                                      "question-timeout": DEFAULT_QUESTION_TIMEOUT}
        self.log: list[list[Any]] = []
        self._seq = 0
        self.cancel_event = asyncio.Event()
        self.cancelled = False
        self.done = asyncio.Event()
        self._question_id = 0
        self._answer: asyncio.Future[Any] | None = None
        self._last_progress = 0.0
        self._dirty: set[str] = set()
        self._last_signal: dict[str, float] = {}
        self.engine_trans: Transaction | None = None
        self.finished_at: float | None = None

    # -- properties -------------------------------------------------------------------

    @dbus_property(access=PropertyAccess.READ)
    def Kind(self) -> S:
        return self.kind

    @dbus_property(access=PropertyAccess.READ)
    def Targets(self) -> AS:
        return list(self.targets) if self._may_see() else []

    @dbus_property(access=PropertyAccess.READ)
    def Options(self) -> Opts:
        if not self._may_see():
            return {}
        return {k: _variant(v) for k, v in self.opts.items()}

    @dbus_property(access=PropertyAccess.READ)
    def Uid(self) -> U:
        return self.uid if self.uid >= 0 else 0xFFFFFFFF

    @dbus_property(access=PropertyAccess.READ)
    def Sender(self) -> S:
        return self.sender if self._may_see() else ""

    @dbus_property(access=PropertyAccess.READ)
    def State(self) -> S:
        return self.state

    @dbus_property(access=PropertyAccess.READ)
    def Percentage(self) -> D:
        return self.percentage

    @dbus_property(access=PropertyAccess.READ)
    def Items(self) -> UU:
        return list(self.items)

    @dbus_property(access=PropertyAccess.READ)
    def Bytes(self) -> TT:
        return list(self.bytes)

    @dbus_property(access=PropertyAccess.READ)
    def Speed(self) -> D:
        return self.speed

    @dbus_property(access=PropertyAccess.READ)
    def RemainingTime(self) -> X:
        return self.remaining

    @dbus_property(access=PropertyAccess.READ)
    def CurrentItem(self) -> S:
        return self.current_item

    @dbus_property(access=PropertyAccess.READ)
    def CanCancel(self) -> B:
        return self.state in CANCELLABLE

    @dbus_property(access=PropertyAccess.READ)
    def Question(self) -> Question:
        return list(self.question) if self._may_see() else [0, "", "", [], {}]

    @dbus_property(access=PropertyAccess.READ)
    def Plan(self) -> ListOfDicts:
        return list(self.plan) if self._may_see() else []

    @dbus_property(access=PropertyAccess.READ)
    def Result(self) -> S:
        return self.result

    @dbus_property(access=PropertyAccess.READ)
    def Error(self) -> SS:
        return list(self.error)

    @dbus_property(access=PropertyAccess.READ)
    def ErrorDetails(self) -> Opts:
        return dict(self.error_details)

    @dbus_property(access=PropertyAccess.READ)
    def Warnings(self) -> AS:
        return list(self.warnings)

    @dbus_property(access=PropertyAccess.READ)
    def Pacnew(self) -> AS:
        return list(self.pacnew)

    # -- signals ----------------------------------------------------------------------

    @dbus_signal()
    def Log(self, seq: T, level: S, source: S, text: S) -> SigLog:
        return [seq, level, source, text]

    @dbus_signal()
    def ItemProgress(self, item: S, percent: U, done: U, total: U) -> SigItem:
        return [item, percent, done, total]

    @dbus_signal()
    def DownloadProgress(self, file: S, done: T, total: T, rate: D) -> SigDownload:
        return [file, done, total, rate]

    @dbus_signal()
    def QuestionAsked(self, qid: U, kind: S, text: S, choices: AS, details: Opts) -> SigQuestion:
        return [qid, kind, text, choices, details]

    @dbus_signal()
    def Finished(self, result: S, error: S, message: S) -> SigFinished:
        return [result, error, message]

    # -- methods ----------------------------------------------------------------------

    def _owner_only(self) -> None:
        if CALLER.get() and CALLER.get() != self.sender:
            raise errors.code_text(errors.NOT_AUTHORIZED, "not-authorized",
                                   "only the client that created a transaction may drive it")

    def _may_see(self) -> bool:
        """The details (targets, options, plan, log, bus name) are for the client that made
        the transaction, its user, and root; others see its state and result only."""
        caller = CALLER.get()
        if not caller or caller == self.sender:
            return True
        uid = self.daemon.authority.uids.get(caller)
        return uid is not None and (uid == 0 or (uid == self.uid and uid >= 0))

    @property
    def locale(self) -> str:
        """The client's language (SetHints ``locale``) for its errors, log lines and questions."""
        return str(self.hints.get("locale") or "")

    @property
    def full_upgrade(self) -> bool:
        return self.kind == "sysupgrade" or (self.kind == "install"
                                             and not self.opts.get("no-sysupgrade"))

    def needed_actions(self) -> list[str]:
        """The polkit actions the kind and options need (the plan may add more)."""
        actions = [ACTIONS[self.kind]]
        if self.opts.get("allow-downgrade"):
            actions.append("org.alpm.downgrade")
        if self.kind == "install" and self.opts.get("no-sysupgrade"):
            actions.append("org.alpm.no-sysupgrade")
        return actions

    def auth_details(self) -> dict[str, str]:
        return {"org.alpm.kind": self.kind, "org.alpm.targets": " ".join(self.targets[:100])}

    def owner_left(self) -> None:
        """The client that asks the questions is gone: an open question takes its default
        now (a transaction of a client that left is never left waiting)."""
        self.owner_gone = True
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(Cancelled())

    @dbus_method()
    def SetHints(self, hints: Opts) -> None:
        """interactive (b), locale (s), question-timeout (seconds, d or u), answers (a{sv})."""
        self._owner_only()
        if self.state != "setup":
            raise errors.wrong_state("hints can only be set before Run")
        self.hints["interactive"] = options.get(hints, "interactive", bool, False)
        self.hints["locale"] = options.locale(hints)
        tmo = hints.get("question-timeout")
        if tmo is not None:
            value = tmo.value if isinstance(tmo, Variant) else tmo
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not value >= 0:
                raise errors.invalid("question-timeout must be a non-negative number")
            # capped: a question nobody answers must not hold the writer queue for long
            self.hints["question-timeout"] = min(float(value),
                                                 self.daemon.limits.question_timeout)
        answers = hints.get("answers")
        if answers is not None:
            value = answers.value if isinstance(answers, Variant) else answers
            if not isinstance(value, dict) or len(value) > 64:
                raise errors.invalid("answers must be a{sv} (at most 64 entries)")
            # (kept as long as the transaction: 64 values of any size let one user hold
            # gigabytes in the daemon through its transaction objects)
            cap = self.daemon.limits.answers_bytes
            if limits.wire_size(value) > cap:
                raise errors.invalid(f"answers must take at most {cap} bytes")
            self.hints["answers"] = options.plain(value)

    @dbus_method()
    async def Simulate(self) -> ListOfDicts:
        """The plan (never asks polkit and never changes anything)."""
        self._owner_only()
        if self.state not in ("setup", "finished"):
            raise errors.wrong_state(f"cannot simulate while {self.state}")
        plan = await self.daemon.runner.simulate(self)
        self.plan = plan
        self.changed("Plan")
        return plan

    @dbus_method()
    async def Run(self) -> None:
        """Authorise and queue; returns at once (progress is in the properties)."""
        self._owner_only()
        if self.state != "setup":
            raise errors.wrong_state(f"cannot run a transaction that is {self.state}")
        await self.daemon.start(self)

    @dbus_method()
    async def Cancel(self) -> None:
        caller = CALLER.get()
        if caller and caller != self.sender:
            await self.daemon.authority.check(caller, "org.alpm.cancel-foreign",
                                              self.auth_details(),
                                              interactive=bool(self.hints.get("interactive")))
        if self.state == "finished":
            raise errors.wrong_state("the transaction has finished")
        if self.state not in CANCELLABLE:
            raise errors.wrong_state(f"cannot cancel while {self.state}")
        self.cancelled = True
        self.cancel_event.set()
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(Cancelled())
        if self.engine_trans is not None:
            with contextlib.suppress(Exception):
                self.engine_trans.interrupt()
        if self.state in ("setup", "queued", "waiting-auth"):
            self.daemon.cancel_queued(self)
            self.finish("cancelled", errors.CANCELLED, "cancelled by the client")

    @dbus_method()
    def Answer(self, qid: U, value: V) -> None:
        self._owner_only()
        if self.state != "waiting-answer" or self._answer is None or qid != self._question_id:
            raise errors.wrong_state(f"no open question {qid}")
        if not self._answer.done():
            self._answer.set_result(value.value if isinstance(value, Variant) else value)

    @dbus_method()
    async def GetLog(self) -> LogRows:
        """The log so far. Its building is charged to the caller's share of the event loop
        (refused, like any call, when the caller owes more): a log of 10,000 lines takes
        40 ms, and one client's pipelined GetLog calls, a task each after the share's
        accounting, stalled everybody for free."""
        caller = CALLER.get()
        share = self.daemon.share
        if caller and caller != self.sender and not (
                self._may_see() or await self.daemon.authority.may_view_foreign(caller)):
            raise errors.code_text(errors.NOT_AUTHORIZED, "not-authorized",
                                   "the log of another user's transaction is for administrators")
        with share.metered(caller):
            return limits.bounded_reply([list(r) for r in self.log],
                                        self.daemon.limits.reply_bytes, "the log")

    # -- driving (called by the daemon) -------------------------------------------------

    def changed(self, *names: str) -> None:
        """PropertiesChanged: the public properties to everybody, the private ones (plan,
        question) only to the client that owns the transaction."""
        public = [n for n in names if n not in PRIVATE]
        if public:
            with contextlib.suppress(Exception):
                self.emit_properties_changed({n: _VALUES[n](self) for n in public})
        private = {n: Variant(PRIVATE[n], _VALUES[n](self)) for n in names if n in PRIVATE}
        if private:
            self._to_owner("org.freedesktop.DBus.Properties", "PropertiesChanged", "sa{sv}as",
                           ["org.alpm.Transaction1", private, []])

    def _to_owner(self, interface: str, member: str, signature: str, body: list[Any]) -> None:
        """A signal addressed to the owning client alone (the bus delivers it to nobody
        else, whatever their match rules)."""
        if not self.sender:
            return
        msg = Message(message_type=MessageType.SIGNAL, destination=self.sender,
                      path=self.path, interface=interface, member=member,
                      signature=signature, body=body)
        with contextlib.suppress(Exception):
            self.daemon.bus.send(msg)

    def set_state(self, state: str) -> None:
        assert state in STATES
        if state != self.state:
            self.state = state
            self.changed("State", "CanCancel")

    def add_log(self, level: str, source: str, text: str) -> None:
        self._seq += 1
        entry = [self._seq, level, source, text]
        self.log.append(entry)
        if len(self.log) > 10_000:
            del self.log[:1000]
        self._to_owner("org.alpm.Transaction1", "Log", "tsss", [self._seq, level, source, text])

    def set_percentage(self, value: float, *, force: bool = False) -> None:
        """Overall percentage only ever goes up; property updates are rate-limited."""
        value = max(0.0, min(100.0, value))
        if value > self.percentage:
            self.percentage = value
            self._dirty.add("Percentage")
        self.flush(force=force)

    def flush(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._dirty and (force or now - self._last_progress >= PROGRESS_INTERVAL):
            self._last_progress = now
            names, self._dirty = self._dirty, set()
            self.changed(*sorted(names))

    def due(self, key: str, interval: float = PROGRESS_INTERVAL) -> bool:
        """Rate limit for a signal: True at most once per ``interval`` per ``key``."""
        now = time.monotonic()
        if now - self._last_signal.get(key, 0.0) >= interval:
            self._last_signal[key] = now
            return True
        return False

    def mark(self, *names: str) -> None:
        self._dirty.update(names)

    def finish(self, result: str, error: str = "", message: str = "") -> None:
        if self.state == "finished":
            return
        self.result = result
        self.error = [error, message]
        if result == "success":
            self.percentage = 100.0
        self.question = [0, "", "", [], {}]
        self.state = "finished"
        self.finished_at = time.monotonic()
        self.changed("Result", "Error", "ErrorDetails", "Percentage", "State", "CanCancel",
                     "Warnings", "Pacnew", "Question")
        self.Finished(result, error, message)
        self.done.set()
        self.daemon.finished(self)

    # -- questions from the worker thread -------------------------------------------------

    def ask_threadsafe(self, loop: asyncio.AbstractEventLoop) -> Callable[[ev.Question], object]:
        def ask(question: ev.Question) -> object:
            fut = asyncio.run_coroutine_threadsafe(self.ask(question), loop)
            try:
                return fut.result()
            except concurrent.futures.CancelledError:
                return question.default
        return ask

    async def ask(self, question: ev.Question) -> object:
        kind = question.kind
        cat = client_catalog(self.locale)
        _ = cat.gettext
        preset = self.hints.get("answers", {})
        if kind in preset:
            try:
                return _coerce(question, preset[kind])
            except (TypeError, ValueError):
                self.add_log("warning", "daemon", _(
                    "pre-seeded answer {answer} to {kind} is not a valid choice; default {default}"
                ).format(answer=repr(preset[kind]), kind=kind, default=repr(question.default)))
                return question.default
        if self.cancelled or self.owner_gone:
            if self.owner_gone:
                self.add_log("warning", "daemon", _("{kind}: the client has left; default {default}")
                             .format(kind=kind, default=repr(question.default)))
            return question.default
        timeout = min(float(self.hints.get("question-timeout", DEFAULT_QUESTION_TIMEOUT)),
                      self.daemon.limits.question_timeout)
        self._question_id += 1
        text, choices, details = describe(question, cat)
        self.question = [self._question_id, kind, text, choices, details]
        previous = self.state
        self._answer = asyncio.get_running_loop().create_future()
        self.set_state("waiting-answer")
        self.changed("Question")
        self._to_owner("org.alpm.Transaction1", "QuestionAsked", "ussasa{sv}",
                       [self._question_id, kind, text, choices, details])
        self.add_log("info", "daemon", _("question {id}: {text}").format(id=self._question_id,
                                                                          text=text))
        try:
            value = await asyncio.wait_for(self._answer, timeout)
            result = _coerce(question, value)
        except TimeoutError:
            result = question.default
            self.add_log("warning", "daemon", _("question {id} not answered; default {default}")
                         .format(id=self._question_id, default=repr(result)))
        except Cancelled:
            result = question.default
        except (TypeError, ValueError):
            result = question.default
        self._answer = None
        self.question = [0, "", "", [], {}]
        self.changed("Question")
        if self.state == "waiting-answer":
            self.set_state(previous)
        return result


#: properties whose changes go to the owner only (their signature)
PRIVATE = {"Plan": "aa{sv}", "Question": "(ussasa{sv})"}
#: the current value of each property that changes, by its D-Bus name (for PropertiesChanged)
_VALUES: dict[str, Callable[[TransactionObject], Any]] = {
    "State": lambda t: t.state, "CanCancel": lambda t: t.state in CANCELLABLE,
    "Percentage": lambda t: t.percentage, "Items": lambda t: t.items,
    "Bytes": lambda t: t.bytes, "Speed": lambda t: t.speed,
    "RemainingTime": lambda t: t.remaining, "CurrentItem": lambda t: t.current_item,
    "Question": lambda t: t.question, "Plan": lambda t: t.plan, "Result": lambda t: t.result,
    "Error": lambda t: t.error, "ErrorDetails": lambda t: t.error_details,
    "Warnings": lambda t: t.warnings, "Pacnew": lambda t: t.pacnew}


def _variant(value: Any) -> Variant:
    if isinstance(value, Variant):
        return value
    if isinstance(value, bool):
        return Variant("b", value)
    if isinstance(value, int):
        return Variant("x", value)
    if isinstance(value, float):
        return Variant("d", value)
    if isinstance(value, list):
        return Variant("as", [str(v) for v in value])
    return Variant("s", str(value))


def _name(pkg: Package | None) -> str:
    return f"{pkg.name}-{pkg.version}" if pkg is not None else ""


def describe(q: ev.Question, cat: "Catalog | None" = None
             ) -> tuple[str, list[str], dict[str, Variant]]:
    """Text, choices and details of an engine question, in the client's language
    (``cat``; English without one). The command line's messages where it asks the same."""
    cat = cat or English()
    _ = cat.gettext
    d: dict[str, Variant] = {"default": _variant(q.default if q.default is not None else "")}
    choices = ["yes", "no"]
    if isinstance(q, ev.InstallIgnored):
        text = _("{name} is in IgnorePkg/IgnoreGroup. Install anyway?").format(name=_name(q.pkg))
    elif isinstance(q, ev.ReplacePackage):
        text = _("Replace {old} with {repo}/{new}?").format(old=_name(q.old), repo=q.repo,
                                                            new=_name(q.new))
    elif isinstance(q, ev.ConflictPackage):
        new, old = _name(q.new), _name(q.old)
        reason = q.shown_reason()
        if reason is None:
            text = _("{new} and {old} are in conflict. Remove {old}?").format(new=new, old=old)
        else:
            text = _("{new} and {old} are in conflict ({reason}). Remove {old}?").format(
                new=new, old=old, reason=reason)
    elif isinstance(q, ev.CorruptedPackage):
        text = _("File {path} is corrupted ({reason}).\nDo you want to delete it?").format(
            path=q.filepath, reason=q.reason)
    elif isinstance(q, ev.RemoveUnresolvable):
        names = " ".join(_name(p) for p in q.packages)
        text = cat.ngettext(
            "{names} cannot be upgraded due to unresolvable dependencies. Skip it for this "
            "upgrade?",
            "{names} cannot be upgraded due to unresolvable dependencies. Skip them for this "
            "upgrade?", len(q.packages)).format(names=names)
    elif isinstance(q, ev.SelectProvider):
        choices = [_name(p) for p in q.providers]
        text = _("There are {n} providers available for {dep}:").format(n=len(choices),
                                                                        dep=q.depend)
    elif isinstance(q, ev.SelectGroupMembers):
        choices = [_name(p) for p in q.members]
        text = _("There are {n} members in group {group}:").format(n=len(choices),
                                                                   group=q.group)
    elif isinstance(q, ev.ImportKey):
        text = _("Import PGP key {fingerprint}, \"{uid}\"?").format(fingerprint=q.fingerprint,
                                                                     uid=q.uid)
        d["fingerprint"] = Variant("s", q.fingerprint)
        d["uid"] = Variant("s", q.uid)
    else:
        text = q.kind
    return text, choices, d


def _index(value: Any) -> int:
    """An answer as an index (ValueError when it is none: ``int(inf)`` is an OverflowError,
    and an answer of ``d`` infinity made the transaction fail with a traceback)."""
    try:
        return int(value)
    except OverflowError:
        raise ValueError(f"not an index: {value!r}") from None


def _coerce(q: ev.Question, value: Any) -> object:
    """The client's answer in the engine's type; wrong types fall back to the default."""
    if isinstance(q, ev.SelectProvider):
        idx = _index(value)
        if not 0 <= idx < len(q.providers):
            raise ValueError("provider index out of range")
        return idx
    if isinstance(q, ev.SelectGroupMembers):
        picks = [_index(v) for v in value]
        if any(not 0 <= i < len(q.members) for i in picks):
            raise ValueError("member index out of range")
        return picks
    if isinstance(value, str):
        return value.lower() in ("y", "yes", "true", "1")
    return bool(value)
