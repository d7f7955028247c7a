"""setuptools hook: compile po/<lang>.po into the package's catalogs while building.

Everything else is declared in pyproject.toml; the .mo files are built, never committed.
"""

import os
import subprocess
from glob import glob

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithCatalogs(build_py):
    """build_py, then alpmd/locale/<lang>/LC_MESSAGES/alpmd.mo from po/<lang>.po (GNU msgfmt)."""

    def run(self) -> None:
        super().run()
        for po in sorted(glob("po/*.po")):
            lang = os.path.splitext(os.path.basename(po))[0]
            target = os.path.join(self.build_lib, "alpmd", "locale", lang, "LC_MESSAGES",
                                  "alpmd.mo")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            subprocess.run(["msgfmt", "--check", "-o", target, po], check=True)


setup(cmdclass={"build_py": BuildPyWithCatalogs})
