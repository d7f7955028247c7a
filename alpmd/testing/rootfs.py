"""A test root that can run scriptlets and hooks: the host's ``/bin/sh`` copied into it.

Scriptlets and hook commands run chrooted into the installation root (by pacman
and by us), so comparing them needs a shell inside the throwaway root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def shell_root(root: Path) -> str | None:
    """Put the host's ``/bin/sh`` and its libraries into ``root``; the reason it failed, or None."""
    sh = os.path.realpath("/bin/sh")
    ldd = shutil.which("ldd")
    if not os.access(sh, os.X_OK) or ldd is None or shutil.which("chroot") is None:
        return "no /bin/sh, ldd or chroot on the host"
    libs = subprocess.run([ldd, sh], capture_output=True, text=True, timeout=30).stdout
    for src in [sh] + [w for line in libs.splitlines() for w in line.split() if w.startswith("/")]:
        dst = root / src.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    (root / "bin").mkdir(exist_ok=True)
    if not (root / "bin/sh").exists():
        shutil.copy2(sh, root / "bin/sh")
    try:
        subprocess.run(["chroot", str(root), "/bin/sh", "-c", "exit 0"], check=True, timeout=30,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"cannot run a shell chrooted into a test root: {exc}"
    return None
