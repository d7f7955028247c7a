"""``alpm-repo``: manage a repository tree (release, move, remove packages) over the engine."""

from __future__ import annotations

import argparse
import datetime
import os
import pwd
import sys
from collections.abc import Sequence

from alpmd import __version__
from alpmd.engine.errors import AlpmError
from alpmd.engine.repo import ops
from alpmd.engine.repo.tree import find_tree, init_tree, open_tree
from alpmd.i18n import gettext as _
from alpmd.i18n import localize, ngettext, speaks_english


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alpm-repo", description=_(
        "alpm-repo: manage a repository tree (release, move, remove packages) over the engine."))
    p.add_argument("--version", action="version", version=f"alpm-repo (alpmd) {__version__}")
    p.add_argument("--tree", metavar="DIR", help=_("the repository tree (default: the one "
                   "whose alpm-repo.conf is in the current directory or a parent)"))
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    s = sub.add_parser("init", help=_("create a tree and its alpm-repo.conf"))
    s.add_argument("--repos", required=True, help=_("comma-separated repository names"))
    s.add_argument("--arches", required=True, help=_("comma-separated architectures"))
    s.add_argument("--keyring", metavar="GNUPGHOME", help=_("pacman keyring checking packages"))
    s.add_argument("--compression", default="gz", choices=["gz", "zst", "xz", "bz2", "none"])
    s.add_argument("--siglevel", help=_("package SigLevel (default: Required with a keyring)"))
    s.add_argument("--sign-key", metavar="KEY", help=_("sign the databases with this gpg key"))
    s = sub.add_parser("add", help=_("release package files"))
    s.add_argument("repo")
    s.add_argument("arch")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("-f", "--force", action="store_true", help=_("allow an older version"))
    s = sub.add_parser("remove", help=_("remove pkgbases"))
    s.add_argument("repo")
    s.add_argument("arch")
    s.add_argument("bases", nargs="+", metavar="PKGBASE")
    s = sub.add_parser("move", help=_("move pkgbases between repositories"))
    s.add_argument("src")
    s.add_argument("dst")
    s.add_argument("arch")
    s.add_argument("bases", nargs="+", metavar="PKGBASE")
    s.add_argument("-f", "--force", action="store_true", help=_("allow an older version"))
    s = sub.add_parser("update", help=_("release everything in STAGING/REPO/"))
    s.add_argument("staging", nargs="?")
    s.add_argument("-f", "--force", action="store_true", help=_("allow older versions"))
    s = sub.add_parser("ls", help=_("list packages"))
    s.add_argument("repo", nargs="?")
    s.add_argument("arch", nargs="?")
    s = sub.add_parser("history", help=_("release history"))
    s.add_argument("base", nargs="?", metavar="PKGBASE")
    s = sub.add_parser("check", help=_("databases, pool and tracking database agree"))
    s.add_argument("-v", "--verify", action="store_true", help=_("also verify pool checksums"))
    s.add_argument("--repair", action="store_true",
                   help=_("finish an interrupted change and rewrite every database"))
    s = sub.add_parser("cleanup", help=_("remove pool files no database references"))
    s.add_argument("-n", "--dry-run", action="store_true")
    s = sub.add_parser("import", help=_("adopt a database made by repo-add"))
    s.add_argument("repo")
    s.add_argument("arch")
    s.add_argument("dbfile")
    return p


def _user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def _when(t: int) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _run(ns: argparse.Namespace) -> int:
    def words(v: str) -> list[str]:
        return [w for w in v.replace(",", " ").split() if w]

    if ns.cmd == "init":
        tree = init_tree(ns.tree or os.getcwd(), words(ns.repos), words(ns.arches),
                         keyring=ns.keyring, compression=ns.compression,
                         siglevel=ns.siglevel, sign_key=ns.sign_key)
        print(_("created {path}").format(path=tree.cfg.path))
        tree.close()
        return 0
    tree = open_tree(ns.tree or find_tree(os.getcwd()))
    user = _user()
    try:
        if ns.cmd == "add":
            plan = ops.add(tree, ns.repo, ns.arch, ns.files, user=user, force=ns.force)
        elif ns.cmd == "remove":
            plan = ops.remove(tree, ns.repo, ns.arch, ns.bases, user=user)
        elif ns.cmd == "move":
            plan = ops.move(tree, ns.src, ns.dst, ns.arch, ns.bases, user=user, force=ns.force)
        elif ns.cmd == "update":
            plan = ops.update(tree, ns.staging, user=user, force=ns.force)
            for w in plan.warnings:
                print(_("warning: ") + w, file=sys.stderr)
            if plan.empty():
                print(_("nothing to release"))
        elif ns.cmd == "import":
            plan = ops.import_db(tree, ns.repo, ns.arch, ns.dbfile, user=user)
        elif ns.cmd == "ls":
            for r in ops.ls(tree, ns.repo, ns.arch):
                print(f"{r.repo} {r.arch} {r.name} {r.version}")
            return 0
        elif ns.cmd == "history":
            for h in ops.history(tree, ns.base):
                extra = f" ({h.detail})" if h.detail else ""
                print(f"{_when(h.at)} {h.user} {h.action} {h.repo} {h.arch} {h.base} "
                      f"{h.version}{extra}")
            return 0
        elif ns.cmd == "check":
            report = ops.check(tree, verify=ns.verify, repair=ns.repair)
            for n in report.notes:
                print(_("note: ") + n.in_language())
            for prob in report.problems:
                print(_("error: ") + prob.in_language())
            print(_("tree is consistent") if report.ok else ngettext(
                "{n} problem", "{n} problems", len(report.problems)).format(
                    n=len(report.problems)))
            return 0 if report.ok else 1
        else:  # cleanup
            for name in ops.cleanup(tree, dry_run=ns.dry_run):
                print((_("would remove {name}") if ns.dry_run else _("removed {name}"))
                      .format(name=name))
            return 0
        for h in plan.history:
            print(f"{h.action} {h.repo} {h.arch} {h.base} {h.version}")
        return 0
    finally:
        tree.close()


def error_text(exc: AlpmError) -> str:
    """The error's message in the user's language; a message without a translation (most
    name the packages and paths involved) follows its code's text in that language."""
    text = localize(exc.msgid)
    if text == exc.msgid and not speaks_english():
        return f"{exc.code.strerror}: {exc.message}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    try:
        return _run(ns)
    except AlpmError as exc:
        print(_("error: ") + f"{error_text(exc)} [{exc.code.value}]", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
