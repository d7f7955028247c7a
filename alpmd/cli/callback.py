"""Events, progress and questions printed the way pacman's callback.c and util.c do.

The engine sends typed events; this module only formats them. Progress bars are
drawn only on a terminal (pacman turns them off when stdout is redirected) and
never with ``--noprogressbar``; without bars, each step prints one line
("checking package integrity...", "installing foo...").
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from alpmd import TYPE_CHECKING
from alpmd.cli.output import Out, humanize, optdep_installed
from alpmd.engine import events as ev
from alpmd.engine.handle import Handle
from alpmd.engine.package import Package
from alpmd.i18n import N_, is_yes
from alpmd.i18n import gettext as _

if TYPE_CHECKING:
    from typing import TextIO

#: pacman's --ask bits (alpm_question_type_t): a set bit inverts that question's default.
ASK_BITS: dict[type[ev.Question], int] = {
    ev.InstallIgnored: 1, ev.ReplacePackage: 2, ev.ConflictPackage: 4,
    ev.CorruptedPackage: 8, ev.RemoveUnresolvable: 16, ev.SelectProvider: 32,
    ev.ImportKey: 64,
}

_BAR_TITLES: dict[ev.ProgressKind, str] = {
    ev.ProgressKind.ADD: N_("installing"), ev.ProgressKind.UPGRADE: N_("upgrading"),
    ev.ProgressKind.DOWNGRADE: N_("downgrading"), ev.ProgressKind.REINSTALL: N_("reinstalling"),
    ev.ProgressKind.REMOVE: N_("removing"), ev.ProgressKind.CONFLICTS: N_("checking for file conflicts"),
    ev.ProgressKind.DISKSPACE: N_("checking available disk space"),
    ev.ProgressKind.INTEGRITY: N_("checking package integrity"),
    ev.ProgressKind.LOAD: N_("loading package files"), ev.ProgressKind.KEYRING: N_("checking keys in keyring"),
}


@dataclass(eq=False, repr=False)
class Callbacks:
    """The front end's answers: pacman's noconfirm/--ask rules and its printing."""

    out: Out
    handle: Handle | None = None
    noconfirm: bool = False
    ask: int | None = None
    noprogressbar: bool = False
    stdin: TextIO | None = None
    #: --print: no events, no progress, no questions (pacman answers them silently)
    print_mode: bool = False
    #: the file a download.DownloadStarted event names (else None); set by whoever
    #: loads the download module (it brings aiohttp, too heavy for commands that
    #: download nothing)
    download_started: Callable[[ev.Event], str | None] | None = None
    _last_bar: tuple[ev.ProgressKind, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self._isatty():
            self.noprogressbar = True

    @property
    def draws_bars(self) -> bool:
        """Whether :meth:`progress` draws anything (else it need not be called at all)."""
        return not (self.noprogressbar or self.print_mode)

    def _isatty(self) -> bool:
        try:
            return self.out.stdout.isatty()
        except (AttributeError, ValueError):
            return False

    # -- events -----------------------------------------------------------------------

    def event(self, e: ev.Event) -> None:  # noqa: C901 - one branch per event type
        out = self.out
        if self.noprogressbar and self.download_started is not None \
                and (started := self.download_started(e)) is not None:
            # pacman's download callback, which --print does not silence
            out.write(" " + _("{file} downloading...").format(file=_clean_filename(started)) + "\n")
            return
        if self.print_mode:
            return
        if isinstance(e, ev.StepEvent) and not e.done:
            line = ev.STEP_LINES.get(type(e))
            if line is None and self.noprogressbar:
                line = ev.QUIET_STEP_LINES.get(type(e))
            if line is not None:
                out.write(_(line) + "\n")
                return
        if isinstance(e, ev.TransactionStep) and not e.done:
            out.write(f"{out.c.meta}::{out.c.nocolor}{out.c.title} "
                      + _("Processing package changes...") + f"{out.c.nocolor}\n")
        elif isinstance(e, ev.PackageOperation):
            if not e.done and self.noprogressbar:
                pkg = e.new if e.new is not None else e.old
                assert pkg is not None
                out.write(f"{_(ev.OPERATION_WORDS[e.operation])} {pkg.name}...\n")
            elif e.done and e.new is not None:
                if e.operation is ev.Operation.INSTALL:
                    self._optdepends(e.new, e.new.optdepends, "Optional")
                elif e.operation in (ev.Operation.UPGRADE, ev.Operation.DOWNGRADE):
                    old = set(e.old.optdepends) if e.old is not None else set()
                    self._optdepends(e.new, [o for o in e.new.optdepends if o not in old],
                                     "New optional")
        elif isinstance(e, ev.ScriptletInfo):
            out.write(e.line if e.line.endswith("\n") else e.line + "\n")
        elif isinstance(e, ev.PacnewCreated):
            out.warning(_("{file} installed as {file}.pacnew").format(file=e.file))
        elif isinstance(e, ev.PacsaveCreated):
            out.warning(_("{file} saved as {file}.pacsave").format(file=e.file))
        elif isinstance(e, ev.OptdepRemoval):
            name = e.pkg.name if e.pkg is not None else ""
            out.warning(_("{name} optionally requires {optdep}").format(name=name, optdep=e.optdep))
        elif isinstance(e, ev.HookEvent) and not e.done:
            text = (_("Running pre-transaction hooks...") if e.when.startswith("Pre")
                    else _("Running post-transaction hooks..."))
            out.write(f"{out.c.meta}::{out.c.nocolor}{out.c.title} {text}{out.c.nocolor}\n")
        elif isinstance(e, ev.HookRun) and not e.done:
            w = len(str(e.total))
            out.write(f"({e.position:>{w}}/{e.total}) {e.description or e.name}\n")
        elif isinstance(e, ev.DatabaseMissing):
            out.warning(_("database file for '{db}' does not exist (use '-Sy' to download)")
                        .format(db=e.dbname))
        elif isinstance(e, ev.Warning_):
            out.warning(e.message)

    def _optdepends(self, pkg: Package, optdeps: Sequence[str], what: str) -> None:
        """pacman 6.0.2's display_optdepends / display_new_optdepends (no ':: ')."""
        if not optdeps:
            return
        out = self.out
        title = (_("Optional dependencies for {name}") if what == "Optional"
                 else _("New optional dependencies for {name}"))
        out.write(title.format(name=pkg.name) + "\n")
        local = self.handle.localdb if self.handle is not None else None
        for opt in optdeps:
            mark = ""
            if local is not None and optdep_installed(local, opt):
                mark = " [" + _("installed") + "]"
            out.write(f"    {opt}{mark}\n")

    # -- progress ---------------------------------------------------------------------

    def progress(self, p: ev.Progress) -> None:
        if self.noprogressbar or self.print_mode:
            return
        title = _(_BAR_TITLES.get(p.kind, p.kind.value))
        if p.kind in (ev.ProgressKind.ADD, ev.ProgressKind.UPGRADE, ev.ProgressKind.DOWNGRADE,
                      ev.ProgressKind.REINSTALL, ev.ProgressKind.REMOVE):
            title = f"{title} {p.name}"
        w = len(str(p.total))
        cols = self.out.cols or 80
        head = f"({p.current:>{w}}/{p.total}) {title}"
        barw = max(10, cols * 2 // 5 - 7)
        textw = max(1, cols - barw - 7)
        filled = barw * p.percent // 100
        bar = "#" * filled + "-" * (barw - filled)
        self.out.write(f"\r{head[:textw]:<{textw}} [{bar}] {p.percent:3d}%")
        if p.percent >= 100:
            self.out.write("\n")
        try:
            self.out.stdout.flush()
        except (AttributeError, ValueError):
            pass

    # -- questions --------------------------------------------------------------------

    def question(self, q: ev.Question) -> object:
        default = q.default
        if self.print_mode:
            # pacman's cb_question under --print: yes to IgnorePkg and replacements,
            # the first provider, every group member, no to everything else.
            return False if isinstance(q, ev.CorruptedPackage | ev.ImportKey) else default
        if self.ask is not None:
            bit = ASK_BITS.get(type(q), 0)
            if self.ask & bit and isinstance(default, bool):
                default = not default
            return default
        if isinstance(q, ev.InstallIgnored):
            name = q.pkg.name if q.pkg else ""
            return self.yesno(_("{name} is in IgnorePkg/IgnoreGroup. Install anyway?")
                              .format(name=name), bool(default))
        if isinstance(q, ev.ReplacePackage):
            old = q.old.name if q.old else ""
            new = q.new.name if q.new else ""
            return self.yesno(_("Replace {old} with {repo}/{new}?").format(old=old, repo=q.repo, new=new),
                              bool(default))
        if isinstance(q, ev.ConflictPackage):
            new = q.new.name if q.new else ""
            old = q.old.name if q.old else ""
            reason = q.shown_reason()
            if reason is None:
                text = _("{new} and {old} are in conflict. Remove {old}?").format(new=new, old=old)
            else:
                text = _("{new} and {old} are in conflict ({reason}). Remove {old}?").format(
                    new=new, old=old, reason=reason)
            return self.yesno(text, bool(default))
        if isinstance(q, ev.CorruptedPackage):
            return self.yesno(_("File {path} is corrupted ({reason}).\nDo you want to delete it?")
                              .format(path=q.filepath, reason=q.reason), bool(default))
        if isinstance(q, ev.RemoveUnresolvable):
            # pacman: a ":: " headline, the names after a 5-space title, then the question.
            many = len(q.packages) != 1
            out = self.out
            head = (_("The following packages cannot be upgraded due to unresolvable dependencies:")
                    if many else
                    _("The following package cannot be upgraded due to unresolvable dependencies:"))
            out.write(f"{out.c.meta}::{out.c.nocolor}{out.c.title} {head}{out.c.nocolor}\n")
            out.write("      " + "  ".join(p.name for p in q.packages) + "\n\n")
            return self.yesno(_("Do you want to skip the above packages for this upgrade?") if many
                              else _("Do you want to skip the above package for this upgrade?"),
                              bool(default))
        if isinstance(q, ev.ImportKey):
            return self.yesno(_("Import PGP key {fingerprint}, \"{uid}\"?").format(
                fingerprint=q.fingerprint, uid=q.uid), bool(default))
        if isinstance(q, ev.SelectProvider):
            return self._select_provider(q)
        return default

    def _select_provider(self, q: ev.SelectProvider) -> object:
        out = self.out
        out.write(f"{out.c.meta}:: {out.c.nocolor}"
                  + _("There are {n} providers available for {dep}:").format(
                      n=len(q.providers), dep=q.depend) + "\n")
        line = " ".join(f"{i}) {p.name}" for i, p in enumerate(q.providers, 1))
        out.write(f"   {line}\n\n" + _("Enter a number (default=%d): ") % 1)
        if self.noconfirm:
            out.write("\n")
            return q.default
        reply = self._readline().strip()
        if reply.isdigit() and 1 <= int(reply) <= len(q.providers):
            return int(reply) - 1
        return q.default

    def _readline(self) -> str:
        stream = self.stdin if self.stdin is not None else sys.stdin
        try:
            line = stream.readline()
        except (OSError, ValueError):
            return ""
        return str(line)

    def yesno(self, text: str, default: bool) -> bool:
        """pacman's question(): ``:: text [Y/n] ``; --noconfirm takes the default.

        Asked on stderr (on stdout under --noconfirm, where it is only shown); an
        empty line takes the default, end of input or any other word means no, and
        a piped answer is echoed so the transcript keeps its line breaks.
        """
        out = self.out
        stream = out.stdout if self.noconfirm else out.stderr
        hint = _("[Y/n]") if default else _("[y/N]")
        try:
            out.stdout.flush()
        except (AttributeError, ValueError):
            pass
        stream.write(f"{out.c.meta}::{out.c.nocolor}{out.c.title} {text} {hint}{out.c.nocolor} ")
        if self.noconfirm:
            stream.write("\n")
            return default
        try:
            stream.flush()
        except (AttributeError, ValueError):
            pass
        reply = self._readline()
        if not reply:
            return False
        reply = reply.strip()
        if not reply:
            return default
        if not self._stdin_isatty():
            stream.write(reply + "\n")
        return is_yes(reply)

    def _stdin_isatty(self) -> bool:
        stream = self.stdin if self.stdin is not None else sys.stdin
        try:
            return stream.isatty()
        except (AttributeError, ValueError):
            return False


def _clean_filename(name: str) -> str:
    """pacman's clean_filename: no package or database extension (a signature keeps .sig)."""
    cuts = [i for i in (name.find(".pkg"), name.find(".db"), name.find(".files")) if i >= 0]
    if not cuts:
        return name
    return name[:min(cuts)] + (".sig" if name.endswith(".sig") else "")


def size_lines(entries: Sequence[tuple[str, int]]) -> str:
    """pacman's size summary: labels padded to the longest one, ``%.2f`` binary units."""
    if not entries:
        return ""
    w = max(len(label) for label, _ in entries) + 1
    shown = [(label, *humanize(size, "M")) for label, size in entries]
    # the numbers are right-aligned on the longest one (a minus sign included)
    nw = max(len(f"{value:.2f}") for _, value, _ in shown)
    return "".join(f"{label:<{w}} {value:>{nw}.2f} {unit}\n" for label, value, unit in shown)
