""".PKGINFO bytes other tools may write (latin-1, a NUL, a line over libalpm's buffer,
an empty ``arch``): ``-Qip`` and ``-U`` on twin roots answer as pacman 6.0.2 does.

pacman's exit code is asserted first: two failures are not agreement.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alpmd.testing.oracle import PACMAN
from tests.behaviours.twin import ALPM, run_tool
from tests.conformance.corpus import Entry, twins, write_archive
from tests.trans.harness import snapshot

pytestmark = pytest.mark.oracle

_HEAD = b"pkgname = p\npkgver = 1.0-1\n"
#: libalpm reads .PKGINFO through a 512 KiB line buffer: this line is one byte too long
_LONG = b"pkgdesc = " + b"x" * (512 * 1024 - len(b"pkgdesc = "))

#: case -> (.PKGINFO, pacman's -Qip and -U exit codes, what its -U output says)
CASES: dict[str, tuple[bytes, int, int, str]] = {
    "latin-1": (_HEAD + b"pkgdesc = caf\xe9\npackager = J\xf6rg\noptdepend = caf\xe9: x\n",
                0, 0, "installing p..."),
    "nul-ends-a-value": (_HEAD + b"pkgdesc = a\x00b\nurl = \x00\n", 0, 0, "installing p..."),
    "longest-line": (_HEAD + _LONG[:-1] + b"\n", 0, 0, "installing p..."),
    "line-too-long": (_HEAD + _LONG + b"\n", 1, 1, "could not parse package description file"),
    "long-line-at-end": (_HEAD + _LONG, 1, 1, "could not parse package description file"),
    "empty-arch": (_HEAD + b"arch = \n", 0, 1,
                   ":: package p-1.0-1- does not have a valid architecture"),
}


@pytest.mark.parametrize("case", CASES)
def test_pkginfo_bytes_like_pacman(tmp_path: Path, case: str) -> None:
    pkginfo, qip, code, said = CASES[case]
    pkg = write_archive([Entry(".PKGINFO", data=pkginfo), Entry("usr/", "dir", mode=0o755),
                         Entry("usr/p", data=b"p\n")],
                        "gnutar-gnu", "gz", tmp_path / "p-1.0-1-any.pkg.tar.gz", tmp_path)
    a, b = twins(tmp_path)
    for args in (["-Qip", str(pkg)], ["-U", str(pkg)]):
        ref = run_tool(PACMAN, a, args, None)
        assert ref.code == (qip if args[0] == "-Qip" else code), (args, ref)
        if args[0] == "-U":
            assert said in ref.stdout + ref.stderr, ref
        ours = run_tool(ALPM, b, args, None)
        assert (ours.code, ours.stdout, ours.stderr) == (ref.code, ref.stdout, ref.stderr), args
    want, got = snapshot(a.root), snapshot(b.root)
    for part in ("db", "fs", "log"):
        assert got[part] == want[part], part
    desc = sorted(b.dbpath.glob("local/p-*/desc"))
    if code == 0:
        # the bytes pacman wrote, C strings cut at the NUL
        mine = re.sub(rb"%INSTALLDATE%\n\d+\n", b"", desc[0].read_bytes())
        theirs = re.sub(rb"%INSTALLDATE%\n\d+\n", b"", next(a.dbpath.glob("local/p-*/desc")).read_bytes())
        assert mine == theirs and b"\x00" not in mine
    else:
        assert desc == []
