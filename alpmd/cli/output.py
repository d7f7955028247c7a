"""pacman's output conventions (its util.c and package.c): colours, messages,
list wrapping, sizes, dates and the ``-Qi``/``-Si`` field layout.

Scripts parse this output, so every space matters: wrapping happens only
when stdout is a terminal (or ``COLUMNS`` is set, as pacman honours it),
titles are padded to the longest title, sizes are ``%.2f`` with binary
units, dates are ``strftime("%c")`` in the local time zone.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from alpmd import TYPE_CHECKING
from alpmd.engine.package import Origin, Package
from alpmd.engine.query import find_satisfier, optional_for, required_by
from alpmd.i18n import N_
from alpmd.i18n import gettext as _

if TYPE_CHECKING:
    from typing import TextIO

    from alpmd.engine.db.local import LocalDatabase
    from alpmd.engine.handle import Handle
    from alpmd.engine.query import SearchRow


@dataclass(eq=False, repr=False)
class Colors:
    """pacman's colour strings; all empty without colour."""

    title: str = ""
    repo: str = ""
    version: str = ""
    groups: str = ""
    meta: str = ""
    warn: str = ""
    err: str = ""
    nocolor: str = ""

    @classmethod
    def on(cls) -> Colors:
        return cls("\033[0;1m", "\033[1;35m", "\033[1;32m", "\033[1;34m", "\033[1;36m",
                   "\033[1;33m", "\033[1;31m", "\033[0m")


class Out:
    """Where a command writes: stdout, stderr, colours and the terminal width."""

    def __init__(self, color: Colors | None = None, stdout: TextIO | None = None,
                 stderr: TextIO | None = None) -> None:
        self.c = color or Colors()
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._cols: int | None = None
        #: False under --print: pacman then shows errors only
        self.show_warnings = True

    def write(self, text: str) -> None:
        self.stdout.write(text)

    def error(self, msg: str) -> None:
        """``error: msg`` on stderr, as pm_printf(ALPM_LOG_ERROR) (``msg`` without newline)."""
        self.stdout.flush()
        self.stderr.write(self.c.err + _("error: ") + f"{self.c.nocolor}{msg}\n")
        self.stderr.flush()

    def warning(self, msg: str) -> None:
        if not self.show_warnings:
            return
        self.stdout.flush()
        self.stderr.write(self.c.warn + _("warning: ") + f"{self.c.nocolor}{msg}\n")
        self.stderr.flush()

    @property
    def cols(self) -> int:
        """pacman's getcols: ``COLUMNS``, else the terminal's width, else 0 (no wrapping)."""
        if self._cols is None:
            cols = -1
            env = os.environ.get("COLUMNS")
            if env:
                try:
                    cols = int(env)
                except ValueError:
                    cols = -1
            if cols < 0:
                try:
                    fd = self.stdout.fileno()
                    cols = os.get_terminal_size(fd).columns if os.isatty(fd) else 0
                except (OSError, ValueError, AttributeError):
                    cols = 0
                if cols < 0:
                    cols = 80
            self._cols = cols
        return self._cols


# -- text helpers ------------------------------------------------------------------------


def width(s: str) -> int:
    """Display columns of ``s`` (wcswidth-like: wide East Asian characters count 2)."""
    if s.isascii():  # one column per character; -Qi measures every word it wraps
        return len(s)
    import unicodedata  # a shared library: loaded for non-ASCII text only

    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def indent_text(s: str, indent: int, cols: int) -> str:
    """pacman's indentprint: wrap at spaces to ``cols`` with ``indent`` spaces after a break."""
    if cols == 0 or indent > cols:
        return s
    out: list[str] = []
    cidx = indent
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch == " ":
            i += 1
            if i < n and s[i] == " ":
                continue
            nxt = s.find(" ", i)
            if nxt < 0:
                nxt = n
            wlen = width(s[i:nxt])
            if wlen + 1 > cols - cidx:
                out.append("\n" + " " * indent)
                cidx = indent
            else:
                out.append(" ")
                cidx += 1
            continue
        out.append(ch)
        cidx += width(ch)
        i += 1
    return "".join(out)


def humanize(size: int, target: str = "") -> tuple[float, str]:
    """pacman's humanize_size: the first unit keeping the value within ±2048, or ``target``."""
    labels = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
    val = float(size)
    i = 0
    while i < len(labels) - 1:
        if target and labels[i][0] == target:
            break
        if not target and -2048.0 <= val <= 2048.0:
            break
        val /= 1024.0
        i += 1
    if -0.005 < val < 0.0:
        val = 0.0
    return val, labels[i]


def optdep_installed(localdb: LocalDatabase, optdep: str) -> bool:
    """Whether an installed package satisfies ``optdep`` (pacman's `` [installed]``); one
    without a name (``=1``, ``: x``) names none."""
    from alpmd.engine.depend import Depend  # -Qs and -Q never parse dependencies

    dep = Depend.relation(optdep)
    return bool(dep.name) and find_satisfier(localdb, dep) is not None


def strftime_c(ts: int) -> str:
    """``strftime("%c", localtime(ts))`` as pacman prints dates."""
    return time.strftime("%c", time.localtime(ts))


# -- pacman's display functions -------------------------------------------------------------


class Display:
    """The field layout of ``-Qi``/``-Si`` and the list/line helpers around it."""

    TITLES = [N_("Architecture"), N_("Backup Files"), N_("Build Date"), N_("Compressed Size"),
              N_("Conflicts With"), N_("Depends On"), N_("Description"), N_("Download Size"),
              N_("Groups"), N_("Install Date"), N_("Install Reason"), N_("Install Script"),
              N_("Installed Size"), N_("Licenses"), N_("MD5 Sum"), N_("Name"),
              N_("Optional Deps"), N_("Optional For"), N_("Packager"), N_("Provides"),
              N_("Replaces"), N_("Repository"), N_("Required By"), N_("SHA-256 Sum"),
              N_("Signatures"), N_("URL"), N_("Validated By"), N_("Version")]

    def __init__(self, out: Out) -> None:
        self.out = out
        local = {t: _(t) for t in self.TITLES}  # pacman pads to the longest translated title
        maxw = max(width(t) for t in local.values())
        self.titles = {t: tr + " " * (maxw - width(tr)) + " :" for t, tr in local.items()}

    def t(self, name: str) -> str:
        return self.titles[name]

    def string(self, title: str, value: str | None) -> None:
        c = self.out.c
        text = f"{c.title}{title}{c.nocolor} "
        if not value:
            text += _("None")
        else:
            text += indent_text(value, width(title) + 1, self.out.cols)
        self.out.write(text + "\n")

    def list_display(self, title: str, items: list[str]) -> None:
        c = self.out.c
        ln = width(title) + 1
        parts = [f"{c.title}{title}{c.nocolor} "]
        if not items:
            parts.append(_("None") + "\n")
        else:
            maxcols = self.out.cols
            parts.append(items[0])
            col = ln + width(items[0])
            for s in items[1:]:
                sw = width(s)
                if maxcols > ln and col + sw + 2 >= maxcols:
                    col = ln
                    parts.append("\n" + " " * ln)
                elif col != ln:
                    parts.append("  ")
                    col += 2
                parts.append(s)
                col += sw
            parts.append("\n")
        self.out.write("".join(parts))

    def list_linebreak(self, title: str, items: list[str]) -> None:
        c = self.out.c
        ln = width(title) + 1
        text = f"{c.title}{title}{c.nocolor} "
        if not items:
            text += _("None") + "\n"
        else:
            cols = self.out.cols
            text += indent_text(items[0], ln, cols) + "\n"
            for s in items[1:]:
                text += " " * ln + indent_text(s, ln, cols) + "\n"
        self.out.write(text)

    def size_line(self, title: str, size: int, unit: str = "") -> str:
        val, label = humanize(size, unit)
        c = self.out.c
        self.out.write(f"{c.title}{title}{c.nocolor} {val:.2f} {label}\n")
        return label

    def pkg_full(self, handle: Handle, pkg: Package, extra: bool) -> None:
        """pacman's dump_pkg_full."""
        origin = pkg.origin
        local = origin is Origin.LOCALDB
        sync = origin is Origin.SYNCDB
        reqby: list[str] = []
        optfor: list[str] = []
        if extra or local:
            reqby = required_by(handle, pkg)
            optfor = optional_for(handle, pkg)
        t = self.t
        if sync:
            self.string(t("Repository"), pkg.db.name if pkg.db is not None else None)
        self.string(t("Name"), pkg.name)
        self.string(t("Version"), pkg.version)
        self.string(t("Description"), pkg.desc)
        self.string(t("Architecture"), pkg.arch)
        self.string(t("URL"), pkg.url)
        self.list_display(t("Licenses"), pkg.licenses)
        self.list_display(t("Groups"), pkg.groups)
        self.list_display(t("Provides"), pkg.provides)
        self.list_display(t("Depends On"), pkg.depends)
        optdeps: list[str] = []
        for od in pkg.optdepends:
            if local and optdep_installed(handle.localdb, od):
                od += " [" + _("installed") + "]"
            optdeps.append(od)
        self.list_linebreak(t("Optional Deps"), optdeps)
        if extra or local:
            self.list_display(t("Required By"), reqby)
            self.list_display(t("Optional For"), optfor)
        self.list_display(t("Conflicts With"), pkg.conflicts)
        self.list_display(t("Replaces"), pkg.replaces)
        unit = ""
        if sync:
            unit = self.size_line(t("Download Size"), pkg.csize or 0)[0]
        elif origin is Origin.FILE:
            unit = self.size_line(t("Compressed Size"), pkg.csize or 0)[0]
        self.size_line(t("Installed Size"), pkg.isize or 0, unit)
        self.string(t("Packager"), pkg.packager)
        # pacman 6.0.2 prints a date even when it is 0 (none given): the epoch.
        self.string(t("Build Date"), strftime_c(pkg.builddate or 0))
        if local:
            self.string(t("Install Date"), strftime_c(pkg.installdate or 0))
            reason = {0: N_("Explicitly installed"),
                      1: N_("Installed as a dependency for another package")}.get(
                int(pkg.reason), N_("Unknown"))
            self.string(t("Install Reason"), _(reason))
        if local or origin is Origin.FILE:
            self.string(t("Install Script"), _("Yes") if pkg.has_scriptlet else _("No"))
        if sync and extra:
            self.string(t("MD5 Sum"), pkg.md5sum)
            self.string(t("SHA-256 Sum"), pkg.sha256sum)
            self.list_display(t("Signatures"), signature_keys(pkg.base64_sig))
        else:
            self.list_display(t("Validated By"), validation_labels(pkg))
        if origin is Origin.FILE:
            self.string(t("Signatures"), _("None"))
        if local and extra:
            self.backups(handle, pkg)
        self.out.write("\n")

    def backups(self, handle: Handle, pkg: Package) -> None:
        """pacman's dump_pkg_backups: each backup file's state against its recorded md5."""
        c = self.out.c
        root = handle.options.root
        self.out.write(f"{c.title}{self.t('Backup Files')}\n{c.nocolor}")
        backups = pkg.backup
        if not backups:
            self.out.write(_("(none)") + "\n")
            return
        import hashlib

        for b in backups:
            if not b.md5:
                continue
            path = root + b.path
            if os.access(path, os.R_OK):
                try:
                    with open(path, "rb") as f:
                        digest = hashlib.md5(f.read()).hexdigest()
                except OSError:
                    self.out.error(_("could not calculate checksums for {path}").format(path=path))
                    continue
                state = "UNMODIFIED" if digest == b.md5 else "MODIFIED"
            else:
                import errno as _errno

                try:
                    os.stat(path)
                    err = _errno.EACCES
                except OSError as exc:
                    err = exc.errno or 0
                state = {_errno.EACCES: "UNREADABLE", _errno.ENOENT: "MISSING"}.get(
                    err, "UNKNOWN")
            self.out.write(f"{state}\t{root}{b.path}\n")


def validation_labels(pkg: Package) -> list[str]:
    """The ``Validated By`` words for a package's %VALIDATION% (``Unknown`` when unset)."""
    if pkg.origin is Origin.FILE:
        return [_("None")]
    if pkg.origin is Origin.SYNCDB:
        # libalpm derives a sync package's validation from the checksums it carries.
        words = [_(label) for value, label in ((pkg.md5sum, "MD5 Sum"),
                                               (pkg.sha256sum, "SHA-256 Sum"),
                                               (pkg.base64_sig, N_("Signature"))) if value]
        return words or [_("None")]
    vals = pkg.validation
    if not vals:
        return [_("Unknown")]
    if "none" in vals:
        return [_("None")]
    words = []
    for key, label in (("md5", "MD5 Sum"), ("sha256", "SHA-256 Sum"), ("pgp", "Signature")):
        if key in vals:
            words.append(_(label))
    return words or [_("Unknown")]


def groups_suffix(out: Out, pkg: Package) -> str:
    """pacman's print_groups: `` (g1 g2)``."""
    return _groups_text(out, pkg.groups)


def _groups_text(out: Out, groups: list[str]) -> str:
    if not groups:
        return ""
    return f" {out.c.groups}({' '.join(groups)}){out.c.nocolor}"


def installed_suffix(out: Out, handle: Handle, pkg: Package) -> str:
    """pacman's print_installed: `` [installed]`` or `` [installed: ver]``."""
    lpkg = handle.localdb.get(pkg.name)
    if lpkg is None:
        return ""
    if lpkg.version == pkg.version:
        return f" {out.c.meta}[" + _("installed") + f"]{out.c.nocolor}"
    return f" {out.c.meta}[" + _("installed") + f": {lpkg.version}]{out.c.nocolor}"


def search_results(out: Out, handle: Handle, dbname: str, pkgs: list[Package], *,
                   quiet: bool, show_status: bool) -> None:
    """pacman's dump_pkg_search output for one database."""
    if quiet:
        out.write("".join(pkg.name + "\n" for pkg in pkgs))
        return
    out.write("".join(_search_entry(out, dbname, pkg.name, pkg.version, pkg.desc, pkg.groups,
                                    installed_suffix(out, handle, pkg) if show_status else "")
                      for pkg in pkgs))


def local_search_results(out: Out, rows: list[SearchRow], *, quiet: bool) -> None:
    """``-Qs``'s output from the rows the search read (no packages made)."""
    if quiet:
        out.write("".join(row[0] + "\n" for row in rows))
        return
    out.write("".join(_search_entry(out, "local", name, version, desc, groups, "")
                      for name, version, desc, groups in rows))


def _search_entry(out: Out, dbname: str, name: str, version: str, desc: str | None,
                  groups: list[str], status: str) -> str:
    c = out.c
    return (f"{c.repo}{dbname}/{c.title}{name} {c.version}{version}{c.nocolor}"
            f"{_groups_text(out, groups)}{status}\n    "
            + (indent_text(desc, 4, out.cols) if desc else "") + "\n")


def signature_keys(base64_sig: str | None) -> list[str]:
    """Issuer key IDs of an OpenPGP signature (alpm_extract_keyid), or ``["None"]``."""
    if not base64_sig:
        return [_("None")]
    import base64
    import binascii

    try:
        data = base64.b64decode(base64_sig)
    except (binascii.Error, ValueError):
        return []
    keys: list[str] = []
    pos = 0
    while pos < len(data):
        tag = data[pos]
        pos += 1
        if not tag & 0x80:
            break
        if tag & 0x40:  # new format
            ptype = tag & 0x3F
            first = data[pos]
            if first < 192:
                plen, pos = first, pos + 1
            elif first < 224:
                plen, pos = ((first - 192) << 8) + data[pos + 1] + 192, pos + 2
            else:
                plen, pos = int.from_bytes(data[pos + 1:pos + 5], "big"), pos + 5
        else:
            ptype = (tag >> 2) & 0x0F
            ltype = tag & 3
            nbytes = {0: 1, 1: 2, 2: 4}.get(ltype, 0)
            plen = int.from_bytes(data[pos:pos + nbytes], "big") if nbytes else len(data) - pos
            pos += nbytes
        body = data[pos:pos + plen]
        pos += plen
        if ptype != 2 or not body or body[0] != 4:
            continue
        off = 4
        for _area in range(2):
            alen = int.from_bytes(body[off:off + 2], "big")
            area = body[off + 2:off + 2 + alen]
            off += 2 + alen
            i = 0
            while i < len(area):
                first = area[i]
                if first < 192:
                    slen, i = first, i + 1
                elif first < 255:
                    slen, i = ((first - 192) << 8) + area[i + 1] + 192, i + 2
                else:
                    slen, i = int.from_bytes(area[i + 1:i + 5], "big"), i + 5
                sub = area[i:i + slen]
                i += slen
                if sub and sub[0] & 0x7F == 16 and len(sub) >= 9:
                    keys.append(sub[1:9].hex().upper())
    return keys
